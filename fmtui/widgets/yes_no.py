"""A yes/no question over the dashboard: `y` answers yes, `n` or `escape` no (the question is plain text)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static


class YesNoScreen(ModalScreen[bool]):
    """Ask before doing something that cannot be undone; dismissed with True (y) or False (n, escape)."""

    DEFAULT_CSS = """
    YesNoScreen { align: center middle; }
    YesNoScreen #yes-no { width: auto; max-width: 90%; height: auto; padding: 1 2; border: round $warning;
                          background: $surface; }
    YesNoScreen #yes-no-question { width: auto; max-width: 100%; text-style: bold; }
    YesNoScreen #yes-no-keys { width: auto; color: $text-muted; margin-top: 1; }
    """

    BINDINGS = [
        Binding("y", "answer(True)", "yes"),
        Binding("n", "answer(False)", "no"),
        Binding("escape", "answer(False)", "no", show=False),
    ]

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question, self.detail = question, detail

    def compose(self) -> ComposeResult:
        with Vertical(id="yes-no"):
            yield Static(self.question, id="yes-no-question", markup=False)  # run names are data, not markup
            if self.detail:
                yield Static(self.detail, id="yes-no-detail", markup=False)
            yield Static("y yes · n no", id="yes-no-keys", markup=False)
        yield Footer(compact=True)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

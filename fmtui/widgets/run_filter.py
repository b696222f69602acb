"""The Runs pane's filter: a one-line query (fmtui.runquery) read as it is typed, its error shown under it."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Static

from fmtui.runquery import Query, QueryError

PLACEHOLDER = "norm:zscore lr>=1e-3 health:ok -model:cnn  (| or; a word: in the folder's name)"


class FilterInput(Input):
    """The query's field: enter and escape give the list its keys back (the query stays as typed)."""

    BINDINGS = [Binding("enter", "done", "done", show=False), Binding("escape", "done", "back to the list")]

    class Done(Message):
        """The user left the field."""

    def action_done(self) -> None:
        self.post_message(self.Done())


class FilterBar(Widget):
    """A query field and, under it, why the query cannot be read (the column and the reason, with a caret) and
    which query the list still shows.

    Shown while it is edited or a query is set. Every change that reads as a query is posted as `Changed`
    (the list follows as one types); one that does not keeps the last good query in force."""

    DEFAULT_CSS = """
    FilterBar { height: auto; display: none; }
    FilterBar.-shown { display: block; }
    FilterBar #filter-line { height: 1; }
    FilterBar #filter-label { width: auto; padding: 0 1; text-style: bold; }
    FilterBar FilterInput { height: 1; border: none; padding: 0 1; }
    FilterBar #filter-error { height: auto; color: $error; padding: 0 1; display: none; }
    FilterBar.-error #filter-error { display: block; }
    """

    class Changed(Message):
        """A query that reads (empty: no filter)."""

        def __init__(self, query: Query) -> None:
            super().__init__()
            self.filter = query

    class Done(Message):
        """The user is done editing (enter or escape)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.active = Query()
        """The query in force: the last text that could be read."""
        self.error = ""

    def compose(self) -> ComposeResult:
        with Horizontal(id="filter-line"):
            yield Static("filter", id="filter-label")
            # the cursor goes to the end, not a selection of it all: f again refines the query, typing adds to it
            yield FilterInput(placeholder=PLACEHOLDER, compact=True, select_on_focus=False, id="filter-input")
        yield Static("", id="filter-error", markup=False)

    @property
    def input(self) -> FilterInput:
        return self.query_one(FilterInput)

    def edit(self) -> None:
        """Show the field and give it the focus, its cursor at the end."""
        self.add_class("-shown")
        self.input.focus()
        self.input.cursor_position = len(self.input.value)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.set_text(event.value)

    def set_text(self, text: str) -> None:
        """Read text as a query: in force when it reads, else the error is shown and the last good one stays."""
        try:
            query = Query(text)
        except QueryError as e:
            self.error = str(e)
            caret = Text(" " * (len(" filter ") - 1 + e.position) + "^ ", end="")  # under the column, past the label
            kept = f"the list shows {self.active.text}" if self.active else "the list shows every run"
            self.query_one("#filter-error", Static).update(caret.append(f"{e} ({kept})"))
            self.add_class("-error")
            return
        self.error = ""
        self.remove_class("-error")
        self.active = query
        self.post_message(self.Changed(query))

    def on_filter_input_done(self, event: FilterInput.Done) -> None:
        event.stop()
        self.set_class(bool(self.active) or bool(self.error), "-shown")
        self.post_message(self.Done())

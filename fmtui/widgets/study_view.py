"""The study view: a `fmtui tune` study as its folder tells it, followed live (S on a trial in the Runs pane).

Its trials with their state (running, pruned at epoch k, complete, failed), their validation and test accuracy
and parameters; the best so far; and the progress over trials, charted (each complete trial's validation
accuracy, the pruned ones where they stopped, the best so far as a line). The folder is read in a worker thread
(fmtui.tune.folder: no Optuna, no torch; only changed files are read again), so the dashboard never waits for it.
Everything shown from the folder is data, never markup.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import DataTable, Static

from fmtui.config import OPTIONS, cli_name
from fmtui.ticks import linear_axis
from fmtui.tune.folder import StudyFolder, StudySnapshot, TrialRow
from fmtui.widgets.charts import ThrottledPlot, accuracy_axis, set_axes

POLL_INTERVAL = 1.0
"""Seconds between two looks at the study's folder while the view is open."""
STATE_STYLES = {"complete": "green", "pruned": "yellow", "failed": "red", "running": "cyan"}


def value_text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def param_name(param: str) -> str:
    """A parameter as users type its option: weight-decay (hidden layers of several: hidden1, hidden2)."""
    return cli_name(param) if param in OPTIONS else param


def params_of(trials: list[TrialRow]) -> list[str]:
    """The parameter names of the trials, in the order they first appear."""
    names: list[str] = []
    for t in trials:
        names += [n for n in t.params if n not in names]
    return names


def header(snapshot: StudySnapshot) -> str:
    """`study x · 12 of 32 trials: 8 complete, 3 pruned, 1 failed, 0 running · best: trial 7, val 88.21% ...`."""
    if snapshot.error:
        return f"study {snapshot.name}: {snapshot.error}"
    planned = f" of {snapshot.planned}" if snapshot.planned else ""
    counts = ", ".join(f"{snapshot.count(s)} {s}" for s in ("complete", "pruned", "failed", "running"))
    line = f"study {snapshot.name} · {len(snapshot.trials)}{planned} trials: {counts}"
    best = snapshot.best
    if best is None:
        return f"{line} · no trial has completed yet"
    params = " ".join(f"{param_name(k)} {value_text(v)}" for k, v in best.params.items())
    test = f", test {best.test:.2f}%" if best.test is not None else ""
    return f"{line} · best: trial {best.number}, val {best.value:.2f}%{test} · {params}"


def row_cells(trial: TrialRow, params: list[str], best: TrialRow | None) -> list[Text]:
    state = trial.state + (", best" if best is not None and trial.number == best.number else "")
    values = [
        str(trial.number),
        state,
        trial.detail,
        f"{trial.value:.2f}%" if trial.value is not None else "-",
        f"{trial.test:.2f}%" if trial.test is not None else "-",
        *(value_text(trial.params.get(p, "-")) for p in params),
    ]
    style = STATE_STYLES.get(trial.state, "")
    return [Text(v, no_wrap=True, end="", style=style if i == 1 else "") for i, v in enumerate(values)]


class StudyChart(ThrottledPlot):
    """Validation accuracy over trials: complete trials, pruned ones (where they stopped), the best so far."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("val accuracy by trial", id=id)
        self.snapshot: StudySnapshot | None = None

    def show(self, snapshot: StudySnapshot) -> None:
        self.snapshot = snapshot
        self.mark_dirty()

    def draw(self, plt) -> None:
        s = self.snapshot
        points = (
            {state: [t for t in s.trials if t.state == state and t.value is not None] for state in STATE_STYLES}
            if s
            else {}
        )
        values = [t.value for ts in points.values() for t in ts]
        if not values:
            plt.title(f"{self.chart_title}: no trial has finished an epoch yet")
            return
        most_x, most_y = self.most_ticks
        for state, marker in (("complete", "dot"), ("pruned", "x"), ("failed", "x"), ("running", "+")):
            ts = points[state]
            if ts:
                plt.scatter([t.number for t in ts], [t.value for t in ts], color=STATE_STYLES[state], marker=marker)
        best = s.best_so_far()
        if best:
            plt.plot([n for n, _ in best], [v for _, v in best], color="white")
        last = max(t.number for t in s.trials)
        set_axes(plt, linear_axis(0, max(last, 1), most_x, integer=True), accuracy_axis(values, most_y, False), 0.5)
        self.name_axes(plt, "trial", "val accuracy %", self.chart_title, "line: best so far")


class StudyView(Widget):
    """A study's trials, followed live: a header with the counts and the best so far, the table, the chart."""

    DEFAULT_CSS = """
    StudyView { height: 1fr; }
    StudyView #study-header { height: auto; background: $boost; padding: 0 1; }
    StudyView #study-table { height: 1fr; min-height: 5; }
    StudyView #study-chart { height: 1fr; min-height: 8; }
    """

    class Scanned(Message):
        """The study folder as the scanning thread found it."""

        def __init__(self, snapshot: StudySnapshot) -> None:
            super().__init__()
            self.snapshot = snapshot

    def __init__(self, study_dir: Path, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.folder = StudyFolder(study_dir)
        self.snapshot: StudySnapshot | None = None
        self._shown: tuple = ()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"study {self.folder.path.name}: reading its folder...", id="study-header", markup=False)
            yield DataTable(id="study-table", cursor_type="row", zebra_stripes=True)
            yield StudyChart(id="study-chart")

    def on_mount(self) -> None:
        self.scan()
        self.set_interval(POLL_INTERVAL, self.scan)

    @work(thread=True, exclusive=True, group="study-scan", exit_on_error=False)
    def scan(self) -> None:
        """Read the folder in a thread (only what changed is read again); the result comes back as a message."""
        self.post_message(self.Scanned(self.folder.scan()))

    def on_study_view_scanned(self, message: StudyView.Scanned) -> None:
        message.stop()
        self.show(message.snapshot)

    def show(self, snapshot: StudySnapshot) -> None:
        """Show a snapshot; nothing is redrawn when what it shows did not change."""
        shown = (header(snapshot), [(t.number, t.state, t.detail, t.value, t.test) for t in snapshot.trials])
        if self.snapshot is not None and shown == self._shown:
            return
        self.snapshot, self._shown = snapshot, shown
        self.query_one("#study-header", Static).update(shown[0])
        table = self.query_one(DataTable)
        params = params_of(snapshot.trials)
        row = table.cursor_row
        table.clear(columns=True)
        labels = ["trial", "state", "", "val acc", "test acc", *map(param_name, params)]
        table.add_columns(*(Text(label) for label in labels))  # names from the folder: data, never markup
        for trial in snapshot.trials:
            table.add_row(*row_cells(trial, params, snapshot.best), key=str(trial.number))
        if snapshot.trials:
            table.move_cursor(row=min(max(row, 0), len(snapshot.trials) - 1))
        self.query_one(StudyChart).show(snapshot)


class StudyScreen(ModalScreen[None]):
    """The study view over the dashboard; escape closes it."""

    DEFAULT_CSS = """
    StudyScreen { align: center middle; }
    StudyScreen > StudyView { width: 96%; height: 92%; border: thick $accent; background: $surface; }
    """
    BINDINGS = [Binding("escape", "close", "close")]

    def __init__(self, study_dir: Path) -> None:
        super().__init__()
        self.study_dir = Path(study_dir)

    def compose(self) -> ComposeResult:
        yield StudyView(self.study_dir)

    def action_close(self) -> None:
        self.dismiss()

"""The hyperparameter view (`h` in the Runs pane): runs' options against their results, sortable by any column,
and a scatter of one result against one option, a mark per run in its colour.

Like TensorBoard's HParams: the options shown are those the runs differ in (all of model, norm and lr when they
differ in none), then final and best test (and validation) accuracy, health, epochs and time. The values come
from fmtui.runquery's `fact`, the filter's own reading of a run: an option that does not apply to a run's model
(hidden sizes of a softmax regression) is `-`, never its unused default. left/right choose a column (the
scatter plots the chosen option on x, the chosen result on y; lr and weight decay on a log axis), enter sorts
by it (again: the other way round).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Static

from fmtui.config import OPTIONS, RunConfig, format_value
from fmtui.events import HEALTH_STATES
from fmtui.report import fmt_duration
from fmtui.runfolder.read import RunRecord
from fmtui.runquery import fact
from fmtui.text import plural, safe_text
from fmtui.ticks import Axis, linear_axis, log_axis
from fmtui.widgets.charts import ThrottledPlot, accuracy_axis, set_axes, value_axis
from fmtui.widgets.footer import KeysFooter
from fmtui.widgets.looks import HEALTH_STYLES, MARKER_CHARS, look, mark
from fmtui.widgets.runs_table import NAME_MIN, PAD, SCROLLBAR, fit_names

LOG_X = ("lr", "weight_decay")
"""Options drawn on a log axis (when all their values are above 0)."""
SHOWN_ALWAYS = ("model", "norm", "lr")
PASSED_ON = ("1", "2", "3", "4", "5", "s", "x")
"""Keys of the dashboard that close the view first (they act on panes it would hide)."""
"""The options shown when the runs differ in none."""


@dataclass(frozen=True)
class Column:
    key: str
    """A fmtui.runquery field."""
    header: str
    kind: str
    """'option', 'metric' (a number the scatter can plot on y), 'health' or 'name'."""


NAME_COLUMN = Column("name", "run", "name")


METRIC_COLUMNS = (
    Column("test_acc", "test acc", "metric"),
    Column("best_test_acc", "best test", "metric"),
    Column("val_acc", "val acc", "metric"),
    Column("best_val_acc", "best val", "metric"),
    Column("health", "health", "health"),
    Column("epochs_done", "ep", "metric"),
    Column("time", "time", "metric"),
)
ACCURACIES = ("test_acc", "best_test_acc", "val_acc", "best_val_acc")


def columns(runs: list[RunRecord]) -> list[Column]:
    """The options the runs differ in (in the form's order), then the results (validation ones only when a run
    has a validation split)."""
    configs: list[RunConfig] = [r.config for r in runs]
    varying = [f for f in OPTIONS if len({format_value(getattr(c, f)) for c in configs}) > 1]
    options = [Column(f, OPTIONS[f].cli.replace("-", " "), "option") for f in varying or SHOWN_ALWAYS]
    has_val = any(fact(r, "val_acc") is not None for r in runs)
    results = [c for c in METRIC_COLUMNS if has_val or not c.key.startswith(("val", "best_val"))]
    if "epochs" in varying and all(r.epochs_done == r.config.epochs for r in runs):
        results = [c for c in results if c.key != "epochs_done"]  # the epochs column says it: every run did them all
    return options + results


def cell(run: RunRecord, column: Column) -> Text:
    value = fact(run, column.key)
    if value is None:
        return Text("-", justify="right" if column.kind == "metric" else "left")
    if column.key in ACCURACIES:
        return Text(f"{value:.2f}%", justify="right")
    if column.key == "time":
        return Text(fmt_duration(value), justify="right")
    if column.kind == "health":
        return Text(value, style=HEALTH_STYLES.get(run.health.severity, ""))
    return Text(format_value(value), justify="right" if isinstance(value, (int, float)) else "left")


def sort_key(column: Column, value: Any) -> tuple:
    """How values of a column order: numbers as numbers, choices in their declared order (norm: none, unit,
    symmetric...), health from ok to diverged; what a run does not have comes last either way (see sorted_runs)."""
    if column.kind == "health":
        return (HEALTH_STATES.index(value) if value in HEALTH_STATES else len(HEALTH_STATES),)
    choices = OPTIONS[column.key].choices if column.key in OPTIONS else ()
    if value in choices:
        return (choices.index(value),)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (float(value),)
    return (format_value(value),)


def sorted_runs(runs: list[RunRecord], column: Column, descending: bool) -> list[RunRecord]:
    """The runs ordered by a column (ties keep their order); runs without a value last, in both directions."""
    have = [r for r in runs if fact(r, column.key) is not None]
    lacking = [r for r in runs if fact(r, column.key) is None]
    return sorted(have, key=lambda r: sort_key(column, fact(r, column.key)), reverse=descending) + lacking


class HParamsScatter(ThrottledPlot):
    """One result (y) against one option (x), a mark per run in the run's colour: numbers on a linear axis (lr
    and weight decay on a log one), names (norm, model) as evenly spaced categories."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.runs: list[RunRecord] = []
        self.looks: list[int] = []
        """Each run's look (fmtui.widgets.looks.look): the colour and mark of its curves."""
        self.x = "lr"
        self.y = "test_acc"
        self.x_log = False
        """Whether the last drawing used a log x axis."""

    def show(self, runs: list[RunRecord], looks: list[int], x: str, y: str) -> None:
        self.runs, self.looks, self.x, self.y = runs, looks, x, y
        self.mark_dirty()

    def points(self) -> tuple[list[tuple[int, float, float]], list[str]]:
        """(look, x, y) per run that has both, and the category names when x is no number ([] when it is)."""
        pairs = [(i, fact(r, self.x), fact(r, self.y)) for i, r in zip(self.looks, self.runs)]
        pairs = [(i, x, y) for i, x, y in pairs if x is not None and _finite(y)]
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for _, x, _ in pairs):
            return [(i, float(x), float(y)) for i, x, y in pairs], []
        shown = [format_value(x) for _, x, _ in pairs]
        choices = OPTIONS[self.x].choices if self.x in OPTIONS else ()
        names = sorted(set(shown), key=lambda v: (choices.index(v) if v in choices else len(choices), v))
        return [(i, names.index(s) + 1.0, float(y)) for (i, _, y), s in zip(pairs, shown)], names

    def draw(self, plt) -> None:
        points, names = self.points()
        y_name, x_name = _header(self.y), _header(self.x)
        title = f"{y_name} vs {x_name}"
        if not points:
            plt.title(f"{title}: no run has both")
            return
        xs, ys = [x for _, x, _ in points], [y for _, _, y in points]
        most_x, most_y = self.most_ticks
        self.x_log = self.x in LOG_X and not names and min(xs) > 0
        if names:
            x = Axis(1.0, float(len(names)), [float(k) for k in range(1, len(names) + 1)], names)
        elif self.x_log:
            x = log_axis(min(xs), max(xs), most_x)
        else:  # epochs, batch size, hidden units: whole ticks
            x = linear_axis(min(xs), max(xs), most_x, integer=all(v.is_integer() for v in xs))
        if self.y in ACCURACIES:
            y = accuracy_axis(ys, most_y, False)
        elif all(v.is_integer() for v in ys):  # epochs done
            y = linear_axis(min(ys), max(ys), most_y, integer=True)
        else:
            y = value_axis(ys, most_y, False)
        step = (x.hi - x.lo or 1.0) * 2 / max(self.size.width - 10, 10)  # two columns
        row = (y.hi - y.lo or 1.0) / max(self.size.height - 6, 4)  # a text row of the plot, about
        spread = dodged([x.position(p) for p in xs], step, [round((v - y.lo) / row) for v in ys])
        for (i, _, py), px in zip(points, spread):
            colour, _, marker = look(i)
            plt.scatter([px], [py], color=colour, marker=MARKER_CHARS.get(marker, marker))  # braille: one dot
        reach = max(abs(a - x.position(b)) for a, b in zip(spread, xs))
        set_axes(plt, x, y, x_pad=(0.5 if names else (x.hi - x.lo) * 0.04) + reach)
        notes = [
            "log x" if self.x_log else "",
            "lr and weight decay: log x" if self.x in LOG_X and not self.x_log else "",
        ]
        self.name_axes(plt, x_name, y_name, title, *notes)


def dodged(xs: list[float], step: float, rows: list[int] | None = None) -> list[float]:
    """xs with the runs that share an x (and a text row: `rows`, when given) spread `step` apart around it (the
    lecture's runs at lr 0.01 with the same accuracy would hide each other): each mark stays readable, in the
    column of its value; marks in other rows stay on their value."""
    out = list(xs)
    groups: dict[tuple[float, int], list[int]] = {}
    for k, x in enumerate(xs):
        groups.setdefault((round(x, 9), rows[k] if rows is not None else 0), []).append(k)
    for members in groups.values():
        for j, k in enumerate(members):
            out[k] = xs[k] + (j - (len(members) - 1) / 2) * step
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _header(key: str) -> str:
    found = [c.header for c in METRIC_COLUMNS if c.key == key]
    return found[0] if found else OPTIONS[key].cli.replace("-", " ") if key in OPTIONS else key


class HParamsTable(DataTable):
    """The runs by their options and results; enter sorts by the column under the cursor."""

    BINDINGS = [Binding("enter", "select_cursor", "sort")]


class HParamsScreen(Screen):
    """The selected runs' options and results in a table over a scatter; escape (or q) goes back to Runs."""

    DEFAULT_CSS = """
    HParamsScreen #hp-status { height: 1; background: $boost; padding: 0 1; }
    HParamsScreen #hp-table { height: 1fr; min-height: 6; }
    HParamsScreen #hp-scatter { height: 1fr; min-height: 10; }
    """
    BINDINGS = [Binding("escape,q", "close", "back")]

    def __init__(self, runs: list[RunRecord], keys: list[str] | None = None) -> None:
        super().__init__()
        self.runs = list(runs)
        self.keys = list(keys) if keys is not None else [r.name for r in runs]
        """Each run's name as the Runs pane lists it (sweep/run)."""
        self.columns = columns(self.runs)
        self.sort = next(c for c in self.columns if c.key == "test_acc")
        self.descending = True
        self.order: list[int] = list(range(len(self.runs)))
        """The runs' places (their looks) in the order the table lists them."""
        options = [c.key for c in self.columns if c.kind == "option"]
        numeric = [k for k in options if isinstance(fact(self.runs[0], k), (int, float))] if self.runs else []
        self.x = "lr" if "lr" in options else (numeric or options or ["lr"])[0]
        self.y = "test_acc"
        self.cells = [[cell(run, c) for c in self.columns] for run in self.runs]
        """Each run's cells, by run and column (sorting reorders the rows, never recomputes them)."""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("", id="hp-status", markup=False)
            yield HParamsTable(id="hp-table", cursor_type="column", zebra_stripes=True)
            yield HParamsScatter(id="hp-scatter")
        yield KeysFooter(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        self.fill()
        table.move_cursor(column=2 + [c.key for c in self.columns].index(self.x))
        table.focus()

    def on_resize(self) -> None:
        self.fill()

    def name_width(self) -> int:
        """The run column gets what the others leave (at least NAME_MIN cells): the table never scrolls sideways."""
        widths = [
            max([cell_len(c.header), *(row[k].cell_len for row in self.cells)]) for k, c in enumerate(self.columns)
        ]
        room = self.size.width - SCROLLBAR - sum(w + PAD for w in widths) - (2 + PAD) - PAD
        longest = max((cell_len(self.runs[i].name) for i in range(len(self.runs))), default=0)
        return max(min(longest, room), NAME_MIN)

    def fill(self) -> None:
        """The table in the current order, the run's folder name cut to fit; the scatter of the current x and y."""
        table = self.query_one(DataTable)
        cursor = table.cursor_coordinate
        width = self.name_width()
        if not table.columns or table.columns["run"].width != width:
            table.clear(columns=True)
            table.add_column(" ", key="mark", width=2)
            table.add_column("run", key="run", width=width)
            for column in self.columns:
                table.add_column(column.header, key=column.key)
        else:
            table.clear()
        ranked = sorted_runs(self.runs, self.sort, self.descending)
        self.order = [self.runs.index(r) for r in ranked]
        names = fit_names([safe_text(run.name) for run in self.runs], width)  # cut alike
        for i in self.order:
            table.add_row(mark(i), Text(names[i], no_wrap=True, end=""), *self.cells[i], key=self.keys[i])
        table.move_cursor(row=cursor.row, column=cursor.column, animate=False)
        self.query_one(HParamsScatter).show(self.runs, list(range(len(self.runs))), self.x, self.y)
        self._show_status()

    def _show_status(self) -> None:
        line = f"{plural(len(self.runs), 'run')} by {self.sort.header} {'↓' if self.descending else '↑'}"
        line += " · ←→ a column to plot · enter sorts · esc back"
        self.query_one("#hp-status", Static).update(line)

    def column_at(self, index: int) -> Column | None:
        """The column at a table index (the mark is none; the run's name is one that sorts but is not plotted)."""
        if index == 1:
            return NAME_COLUMN
        return self.columns[index - 2] if 2 <= index < 2 + len(self.columns) else None

    def on_data_table_column_highlighted(self, event: DataTable.ColumnHighlighted) -> None:
        """An option column goes on the scatter's x, a result on its y."""
        event.stop()
        column = self.column_at(event.cursor_column)
        if column is None or column.kind in ("health", "name"):
            return
        if column.kind == "option":
            self.x = column.key
        else:
            self.y = column.key
        self.query_one(HParamsScatter).show(self.runs, list(range(len(self.runs))), self.x, self.y)

    def on_data_table_column_selected(self, event: DataTable.ColumnSelected) -> None:
        event.stop()
        self.sort_by(event.cursor_column)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(event.column_index)

    def sort_by(self, index: int) -> None:
        """Sort by the column at index; by the same one again: the other way round. Results sort highest first."""
        column = self.column_at(index)
        if column is None:
            return
        self.descending = not self.descending if column == self.sort else column.kind == "metric"
        self.sort = column
        self.fill()

    def action_close(self) -> None:
        self.dismiss()

    def on_key(self, event: events.Key) -> None:
        """The dashboard's own keys (a pane's number, s, x) leave the view and then do what they do there, rather
        than act unseen under it."""
        if event.key in PASSED_ON:
            event.stop()
            self.dismiss()
            self.app.call_after_refresh(self.app.simulate_key, event.key)

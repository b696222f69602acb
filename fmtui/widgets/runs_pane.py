"""The Runs pane: the runs folder, followed live; several runs selected at once, their curves overlaid.

Reading run folders needs no torch (fmtui.runs), so the list fills instantly. The pane only posts
messages for what needs the app: opening a run's Errors view, watching a run in the Train pane, resuming
one, and launching the lecture's experiment.
"""

from __future__ import annotations

import math
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Static

from fmtui.config import format_value
from fmtui.registry import model_label
from fmtui.report import run_status
from fmtui.runs import BrokenRun, Run, RunRecord, RunsFolder, export_runs
from fmtui.text import safe_text
from fmtui.ticks import linear_axis
from fmtui.widgets.charts import ThrottledPlot, accuracy_axis, set_axes, value_axis

# distinct, 256-colour-safe colours (plotext name, the same colour for rich); markers differ too so
# curves stay apart with NO_COLOR
PALETTE = [
    ("cyan", "cyan"),
    ("orange", "color(208)"),
    ("green", "green"),
    ("magenta", "magenta"),
    ("yellow", "yellow"),
    ("blue", "blue"),
    ("red", "red"),
    ("white", "white"),
]
MARKERS = ["braille", "dot", "+", "x", "o", "*", "~", "#", "@", "%", "$", "&", "=", "^", "?", "!"]
MARKER_CHARS = {"braille": "⣿", "dot": "•"}
LEGEND_LINES = 3
"""At most this many legend lines under the charts; runs beyond them are named by their mark in the list."""
LABELLED = ("model", "hidden", "norm", "lr")
"""Fields every legend label names (run_label); others are added where the selected runs differ in them."""
METRICS = ("test", "train", "val")
REASON_WIDTH = 60
"""A broken row shows this much of its reason; the status line above the list shows all of it."""
STATUS_STYLES = {"broken": "red", "interrupted": "yellow"}
HEALTH_STYLES = {"error": "red", "warning": "yellow"}
"""The status cell of a run whose health is not ok (fmtui.health): red when it cannot be learning."""
POLL_INTERVAL = 1.0
"""Seconds between two looks at the runs folder while the pane is on screen (see RunsFolder: cheap)."""


def run_label(record: RunRecord) -> str:
    """A short name for legends: model, normalization, learning rate."""
    c = record.config
    return f"{model_label(c)} {c.norm} lr{format_value(c.lr)}"


def started(record: Run) -> str:
    """'11-26 16:53:59' from a run folder named <YYYYmmdd-HHMMSS>-..., else the start of its name."""
    name = safe_text(record.name)  # a folder name is data: no escape sequence reaches the terminal
    if len(name) >= 15 and name[:8].isdigit() and name[8] == "-" and name[9:15].isdigit():
        return f"{name[4:6]}-{name[6:8]} {name[9:11]}:{name[11:13]}:{name[13:15]}"
    return name[:14]


def look(i: int) -> tuple[str, str, str]:
    """The i-th selected run's (plotext colour, rich colour, plotext marker): the marker cycles through 16 and
    the colour moves on by one more every 16 runs, so no two of the first 128 runs are drawn alike (and the
    first 16 differ by marker alone, for NO_COLOR)."""
    plot_colour, rich_colour = PALETTE[(i + i // len(MARKERS)) % len(PALETTE)]
    return plot_colour, rich_colour, MARKERS[i % len(MARKERS)]


def mark(i: int) -> Text:
    """The i-th selected run's marker in its colour: in the legend and in the list's first column."""
    _, colour, marker = look(i)
    return Text(MARKER_CHARS.get(marker, marker), style=colour, end="")


def legend_labels(runs: list[RunRecord]) -> list[str]:
    """One label per run, told apart: run_label, then the fields in which the runs differ (epochs, seed...),
    the status of the runs that did not complete where statuses differ, and the start time where two would
    still read alike."""
    from fmtui.sweep import varying_fields

    extra = [f for f in varying_fields([r.config for r in runs]) if f not in LABELLED]
    statuses = len({r.status for r in runs}) > 1
    labels = []
    for r in runs:
        parts = [run_label(r)] + [f"{f} {format_value(getattr(r.config, f))}" for f in extra]
        labels.append(" ".join(parts + [r.status] * (statuses and r.status != "completed")))
    for i, label in enumerate(labels):
        if labels.count(label) > 1:
            labels[i] = f"{label} {started(runs[i])}"
    return labels


def legend_lines(runs: list[RunRecord], width: int, most: int = LEGEND_LINES) -> list[Text]:
    """The legend in at most `most` lines of `width` cells, entries never broken inside; runs that do not fit
    are counted on the last line (their marks are in the list)."""
    entries = []
    for i, label in enumerate(legend_labels(runs)):
        entry = Text.assemble(mark(i), mark(i), " ", label if len(label) + 3 <= width else label[: width - 4] + "…")
        entries.append(entry)
    lines: list[Text] = []
    for n, entry in enumerate(entries):
        if lines and lines[-1].cell_len + 3 + entry.cell_len <= width:
            lines[-1].append("   ").append_text(entry)
        elif len(lines) < most:
            lines.append(entry.copy())
        else:
            more = Text(f"+{len(entries) - n} more: marked in the list")
            while lines[-1].cell_len and lines[-1].cell_len + 3 + more.cell_len > width:
                lines[-1] = lines[-1][: lines[-1].plain.rfind("   ")] if "   " in lines[-1].plain else Text()
                n -= 1
                more = Text(f"+{len(entries) - n} more: marked in the list")
            lines[-1].append("   " if lines[-1].cell_len else "").append_text(more)
            break
    return lines


class RunsLegend(Widget):
    """The charts' legend under them, laid out anew at every width (see legend_lines)."""

    DEFAULT_CSS = "RunsLegend { height: auto; padding: 0 1; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.runs: list[RunRecord] = []

    def show(self, runs: list[RunRecord]) -> None:
        self.runs = runs
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(legend_lines(self.runs, width))

    def render(self) -> Text:
        return Text("\n", end="").join(legend_lines(self.runs, self.content_size.width))


def final_accuracy(record: RunRecord) -> str:
    acc = record.final_accuracy
    return "-" if acc is None else f"{acc:.2f}%"


def epochs_cell(record: RunRecord) -> str:
    """Complete epochs, with the planned number while they differ: `5`, `3/5`."""
    done, planned = record.epochs_done, record.config.epochs
    return str(done) if done == planned else f"{done}/{planned}"


def cells(record: Run) -> list[Text]:
    """A run's row as Text (never markup: folder names and file contents are data)."""
    if isinstance(record, BrokenRun):
        reason = record.reason if len(record.reason) <= REASON_WIDTH else record.reason[: REASON_WIDTH - 1] + "…"
        values = ["", started(record), "-", "-", "-", "-", "-", "-", f"broken: {reason}"]
    else:
        c = record.config
        values = ["", started(record), c.dataset, model_label(c), c.norm, format_value(c.lr), epochs_cell(record)]
        values += [final_accuracy(record), run_status(record)]
    style = STATUS_STYLES.get(record.status, "")
    if not style and isinstance(record, RunRecord):
        style = HEALTH_STYLES.get(record.health.severity, "")
    return [
        Text(safe_text(v), no_wrap=True, end="", style=style if i == len(values) - 1 else "")
        for i, v in enumerate(values)
    ]


class RunsChart(ThrottledPlot):
    """One metric of several runs over epochs, one coloured, labelled curve per run."""

    def __init__(self, title: str, key: str, *, id: str | None = None) -> None:
        super().__init__(title, id=id)
        self.key = key
        self.runs: list[RunRecord] = []
        self.split = "test"

    def show(self, runs: list[RunRecord], split: str) -> None:
        self.runs, self.split = runs, split
        self.chart_title = f"{split} {self.key}"
        self.mark_dirty()

    def draw(self, plt) -> None:
        curves = []
        for i, record in enumerate(self.runs):
            pts = [(r["epoch"], r.get(f"{self.split}_{self.key}")) for r in record.metrics]
            pts = [(x, y) for x, y in pts if _plottable(x) and _plottable(y)]  # never text: plotext would parse dates
            if pts:
                curves.append((i, [x for x, _ in pts], [y for _, y in pts]))
        values = [y for _, _, ys in curves for y in ys]
        if not values:
            none = f": none in these runs{' (no validation split)' if self.split == 'val' else ''}"
            plt.title(self.chart_title + (none if self.runs else ""))
            return
        most_x, most_y = self.most_ticks
        # raw-pixel runs reach losses in the thousands, others stay below 3: a log axis from two decades on
        y = value_axis(values, most_y, None) if self.key == "loss" else accuracy_axis(values, most_y, False)
        for i, xs, ys in curves:
            if y.log:
                xs, ys = [x for x, v in zip(xs, ys) if v > 0], [math.log10(v) for v in ys if v > 0]
            colour, _, marker = look(i)
            plt.plot(xs, ys, color=colour, marker=marker)
        last = max(max(xs) for _, xs, _ in curves)
        set_axes(plt, linear_axis(1, max(last, 2), most_x, integer=True, extend=False), y, x_pad=0.1)
        self.name_axes(plt, "epoch", self.key, self.chart_title, "log scale" * y.log)


def _plottable(value: object) -> bool:
    """A finite number (the reader checked the rows; this keeps a chart safe whatever it is given)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e300


class RunsPane(Widget):
    """Past and running runs, followed live: space selects, their curves overlay; enter opens a run (a running
    one is watched in the Train pane, another one shows its errors); w watches, R resumes.

    While the pane is on screen it looks at the runs folder every POLL_INTERVAL seconds (fmtui.runs.RunsFolder:
    a listing and a few stats; only changed files are read again): new runs appear, running ones advance,
    dead ones turn `interrupted`, keeping the selection and the cursor. Broken folders are rows that say why.
    """

    DEFAULT_CSS = """
    RunsPane { height: 1fr; }
    RunsPane #runs-table { height: 1fr; min-height: 5; }
    RunsPane #runs-charts { height: 2fr; min-height: 10; }
    RunsPane RunsChart { width: 1fr; }
    RunsPane #runs-status { height: 1; background: $boost; padding: 0 1; }
    """

    BINDINGS = [
        Binding("space", "toggle", "pick"),
        Binding("a", "select_all", "all", show=False),  # the footer has room for 80 columns; ? lists it
        Binding("v", "cycle_split", "curves"),
        Binding("enter", "open", "open"),
        Binding("w", "watch", "watch", show=False),  # enter watches a running run; ? lists w
        Binding("R", "resume", "resume"),
        Binding("e", "export", "export", show=False),
        Binding("r", "refresh", "refresh", show=False),
        Binding("L", "lecture", "lecture"),
        Binding("S", "study", "study", show=False),  # on a trial of `fmtui tune`: its study (fmtui.widgets.study_view)
    ]

    class Open(Message):
        """Show the Errors view of this run from its saved predictions."""

        def __init__(self, record: RunRecord) -> None:
            super().__init__()
            self.record = record

    class Watch(Message):
        """Show this run in the Train pane as it goes on (written by another process), or as it went."""

        def __init__(self, record: RunRecord) -> None:
            super().__init__()
            self.record = record

    class Resume(Message):
        """Go on training this run in its folder (interrupted or stopped; a completed one: more epochs)."""

        def __init__(self, record: RunRecord) -> None:
            super().__init__()
            self.record = record

    class LaunchExperiment(Message):
        """Run the lecture's normalization x learning-rate experiment."""

    def __init__(self, runs_dir: Path, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.runs_dir = Path(runs_dir)
        self.folder = RunsFolder(self.runs_dir)
        self.records: list[Run] = []
        self.selected: set[str] = set()
        """Keys (run_key) of the runs whose curves are shown."""
        self.split = "test"
        self.note = ""
        self._keys: dict[str, str] = {}
        self._marked: dict[str, int] = {}
        """The rows whose mark is on: their place among the selected runs (which sets the mark's look)."""
        self._charted: tuple[str, list[RunRecord]] = ("", [])
        """What the charts show (split, runs): they are redrawn only when it changes."""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("", id="runs-status", markup=False)
            yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="runs-charts"):
                yield RunsChart("test loss", "loss", id="runs-loss")
                yield RunsChart("test accuracy", "accuracy", id="runs-acc")
            yield RunsLegend(id="runs-legend")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(" ", "started", "dataset", "model", "norm", "lr", "ep", "test acc", "status")
        self._update()
        self.set_interval(POLL_INTERVAL, self._poll)

    def on_show(self) -> None:
        """The first look at the runs folder is when the pane is first shown (not at the dashboard's start,
        which it would delay); after the pane was hidden, it catches up at once."""
        self.refresh_runs()

    def _poll(self) -> None:
        if self.is_on_screen:  # a hidden pane costs a training run in the same app nothing
            self.refresh_runs()

    def run_key(self, record_or_path: Run | Path) -> str:
        """A run's folder relative to the runs folder: unique, also for runs inside sweep folders."""
        text = str(getattr(record_or_path, "path", record_or_path))  # str of a Path is cached: cheap per tick
        key = self._keys.get(text)
        if key is None:
            try:
                key = str(Path(text).relative_to(self.runs_dir))
            except ValueError:
                key = text
            self._keys[text] = key
        return key

    def show_note(self, text: str) -> None:
        """A line about work in progress (the lecture experiment), shown above the list."""
        self.note = text
        self._update()

    def refresh_runs(self, select: list[Path] | None = None) -> None:
        """Look at the runs folder again (new runs appear, running ones advance, selection and cursor kept);
        optionally select some runs. Nothing is redrawn when nothing changed."""
        changed = self._sync_table(self.folder.scan())
        keys = {self.run_key(r) for r in self.records if isinstance(r, RunRecord)}
        selected = {s for s in self.selected if s in keys} | {self.run_key(p) for p in select or []}
        if changed or selected != self.selected:
            self.selected = selected
            self._update()

    def _sync_table(self, records: list[Run]) -> bool:
        """Show records in the table: changed rows are updated in place; new or vanished runs rebuild it,
        the cursor staying on its run. Returns whether anything changed."""
        old, self.records = self.records, records
        if len(old) == len(records) and all(a is b for a, b in zip(old, records)):
            return False
        table = self.query_one(DataTable)
        keys = [self.run_key(r) for r in records]
        if [self.run_key(r) for r in old] == keys:
            columns = [c.key for c in table.ordered_columns]
            for key, before, after in zip(keys, old, records):
                if before is not after:
                    for column, value in zip(columns[1:], cells(after)[1:]):
                        table.update_cell(key, column, value, update_width=True)
            return True
        row = table.cursor_row
        cursor_key = self.run_key(old[row]) if 0 <= row < len(old) else None
        table.clear()
        for key, record in zip(keys, records):
            table.add_row(*cells(record), key=key)
        self._marked = {}  # new rows carry no mark: _update sets them
        if records:
            table.move_cursor(row=keys.index(cursor_key) if cursor_key in keys else min(max(row, 0), len(keys) - 1))
        return True

    @property
    def selected_records(self) -> list[RunRecord]:
        return [r for r in self.records if isinstance(r, RunRecord) and self.run_key(r) in self.selected]

    def _cursor_record(self) -> Run | None:
        table = self.query_one(DataTable)
        if not self.records or table.cursor_row < 0:
            return None
        return self.records[min(table.cursor_row, len(self.records) - 1)]

    def _update(self) -> None:
        table = self.query_one(DataTable)
        marker = table.ordered_columns[0].key
        runs = self.selected_records
        marks = {self.run_key(r): i for i, r in enumerate(runs)}  # a run's mark in the list = its curve's
        for key in self._marked.keys() | marks.keys():  # only the marks that change
            if key in table.rows and self._marked.get(key) != marks.get(key):
                table.update_cell(key, marker, mark(marks[key]) if key in marks else " ")
        self._marked = marks
        split, charted = self._charted
        if split != self.split or len(runs) != len(charted) or any(a is not b for a, b in zip(runs, charted)):
            self._charted = (self.split, runs)
            for chart in self.query(RunsChart):
                chart.show(runs, self.split)
        self.query_one(RunsLegend).show(runs)
        self._show_status()

    def _show_status(self) -> None:
        """The status line: the broken or interrupted run under the cursor says why; else the selection."""
        record = self._cursor_record()
        if isinstance(record, BrokenRun):
            line = f"{self.run_key(record)}: broken: {record.reason}"
        elif record is not None and record.status == "interrupted":
            line = f"{self.run_key(record)}: {record.message}"
        elif isinstance(record, RunRecord) and not record.health.ok:
            line = f"{self.run_key(record)}: {record.health.state}: {record.health.hint}"
        else:
            runs = self.selected_records
            hint = "space selects runs to compare" if not runs else f"{len(runs)} selected, {self.split} curves"
            broken = sum(isinstance(r, BrokenRun) for r in self.records)
            count = f"{len(self.records)} runs" + (f" ({broken} broken)" if broken else "")
            line = self.folder.error or f"{hint} · {count} in {self.runs_dir}"
            line = f"{self.note} · {line}" if self.note else line
        self.query_one("#runs-status", Static).update(safe_text(line))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_status()

    def _tell(self, text: str, severity: str = "warning", title: str = "") -> None:
        self.notify(safe_text(text), title=title, severity=severity, markup=False)  # names and reasons are data

    def action_toggle(self) -> None:
        record = self._cursor_record()
        if isinstance(record, BrokenRun):
            self._tell(f"{record.name} is broken ({record.reason}): nothing to plot")
        elif record is not None:
            self.selected ^= {self.run_key(record)}
            self._update()

    def action_select_all(self) -> None:
        keys = {self.run_key(r) for r in self.records if isinstance(r, RunRecord)}
        self.selected = set() if self.selected >= keys else keys
        self._update()

    def action_cycle_split(self) -> None:
        """test -> train -> val curves, skipping what none of the selected runs has (val: no validation split),
        and saying so."""
        runs = self.selected_records
        has = [m for m in METRICS if not runs or any(r.get(f"{m}_loss") is not None for x in runs for r in x.metrics)]
        start = METRICS.index(self.split)
        following = [METRICS[(start + k) % len(METRICS)] for k in range(1, len(METRICS) + 1)]
        split = next(m for m in following if m in has or m == self.split)
        skipped = following[: following.index(split)]
        if skipped:
            self._tell(f"no {' or '.join(skipped)} curves: the selected runs have none (val: no validation split)")
        self.split = split
        self._update()

    def action_open(self) -> None:
        """A running run is watched (its errors come with each epoch); another one shows its Errors view."""
        record = self._cursor_record()
        if record is None:
            return
        if isinstance(record, BrokenRun):
            self._tell(f"{record.name} is broken: {record.reason}")
            return
        if record.status == "running":
            self.post_message(self.Watch(record))
            return
        if not (record.path / "predictions.pt").is_file():
            why = {
                "running": "it has not finished its first epoch yet",
                "interrupted": "it was interrupted before its first epoch ended",
            }.get(record.status, "it ended before its first epoch")
            self._tell(f"{record.name} saved no predictions ({why})")
            return
        self.post_message(self.Open(record))

    def action_watch(self) -> None:
        """Show the run in the Train pane: live while another process trains it, else as it went."""
        record = self._cursor_record()
        if isinstance(record, BrokenRun):
            self._tell(f"{record.name} is broken: {record.reason}")
        elif record is not None:
            self.post_message(self.Watch(record))

    def action_resume(self) -> None:
        record = self._cursor_record()
        if isinstance(record, BrokenRun):
            self._tell(f"{record.name} is broken: {record.reason}")
        elif record is not None and record.status == "running":
            self._tell(f"{record.name} is still training: enter watches it (x there asks it to stop)")
        elif record is not None:
            self.post_message(self.Resume(record))

    def action_export(self) -> None:
        cursor = self._cursor_record()
        runs = self.selected_records or ([cursor] if isinstance(cursor, RunRecord) else [])
        if not runs:
            self._tell("no runs to export")
            return
        dest = self.runs_dir / "exports"
        try:
            csv_path, json_path = export_runs(runs, dest)
        except OSError as e:  # a full or read-only disk, a file where the folder should be
            self._tell(f"cannot export into {dest}: {e.strerror or e}", severity="error", title="export failed")
            return
        self._tell(f"{len(runs)} runs exported to {csv_path} and {json_path.name}", "information", "export")

    def action_refresh(self) -> None:
        """Read every run folder again (the hidden `r`: polling sees changes by themselves)."""
        self.folder = RunsFolder(self.runs_dir)
        self.refresh_runs()

    def action_study(self) -> None:
        """The study of the trial under the cursor: its trials, their states, the best so far."""
        from fmtui.tune.folder import study_of
        from fmtui.widgets.study_view import StudyScreen

        record = self._cursor_record()
        study = study_of(record.path) if record is not None else None
        if study is None:
            self._tell("S shows the study of a trial (fmtui tune); the run under the cursor is no trial")
        else:
            self.app.push_screen(StudyScreen(study))

    def action_lecture(self) -> None:
        self.post_message(self.LaunchExperiment())

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

"""The Runs pane: the runs folder, followed live; several runs selected at once, their curves overlaid.

Reading run folders needs no torch (fmtui.runfolder), so the list fills instantly. Newest runs first by when they
started (pinned ones above them), narrowed by a query (`f`, fmtui.runquery), laid out to fit the width
(fmtui.widgets.runs_table). The charts read: a cursor on an epoch gives every overlaid run's values there
(left/right), the loss axis flips between log and linear (l), z and Z zoom to the last epochs. `h` opens the
hyperparameter view of the selected runs. The pane only posts messages for what needs the app: opening a
run's Errors view, watching a run in the Train pane, resuming one, and launching the lecture's experiment.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Static

from fmtui.config import format_value
from fmtui.errors import RunError
from fmtui.pins import load_pins, save_pins
from fmtui.registry import model_label
from fmtui.report import run_status
from fmtui.runfolder.export import export_runs
from fmtui.runfolder.read import BrokenRun, Run, RunRecord, RunsFolder
from fmtui.runfolder.schema import STAMPED, SYSTEM
from fmtui.runquery import Query, start_time
from fmtui.sysmetrics import read_tail
from fmtui.text import plural, safe_text
from fmtui.ticks import linear_axis
from fmtui.widgets.charts import (
    ThrottledPlot,
    accuracy_axis,
    nearest_row,
    set_axes,
    value_axis,
    zoom_steps,
    zoomed,
)
from fmtui.widgets.hparams_view import HParamsScreen
from fmtui.widgets.looks import HEALTH_STYLES, look, mark
from fmtui.widgets.run_filter import FilterBar
from fmtui.widgets.runs_table import COLUMNS, RunsTable, fit_names, layout
from fmtui.widgets.system_view import peak_memory

LEGEND_LINES = 3
"""At most this many legend lines under the charts; runs beyond them are named by their mark in the list."""
LABELLED = ("model", "hidden", "norm", "lr")
"""Fields every legend label names (run_label); others are added where the selected runs differ in them."""
METRICS = ("test", "train", "val")
REASON_WIDTH = 60
"""A broken row shows this much of its reason; the status line above the list shows all of it."""
STATUS_STYLES = {"broken": "red", "interrupted": "yellow"}
PIN = "↑"
"""The mark of a pinned run (kept at the top of the list), beside its curve's mark."""
POLL_INTERVAL = 1.0
"""Seconds between two looks at the runs folder while the pane is on screen (see RunsFolder: cheap)."""


def run_label(record: RunRecord) -> str:
    """A short name for legends: model, normalization, learning rate."""
    c = record.config
    return f"{model_label(c)} {c.norm} lr{format_value(c.lr)}"


def started(record: Run, seconds: bool = False) -> str:
    """When the run started, by its writer's clock: '11-26 16:53' ('11-26 16:53:59' with seconds), from
    summary.json's started_at, else the date-time its folder name begins with, else when its config.json was
    written (fmtui.runquery.start_time); '-' when nothing tells. Never the folder's name: `--out` names it anything."""
    text = record.summary.get("started_at") if isinstance(record, RunRecord) else None
    end = 19 if seconds else 16
    if isinstance(text, str) and len(text) >= end and text[4] == "-" and text[10] in "T ":
        return safe_text(f"{text[5:10]} {text[11:end]}")  # summary.json is data: no escape reaches the terminal
    stamped = STAMPED.match(record.name)
    if stamped:
        day, hms = stamped.groups()
        return f"{day[4:6]}-{day[6:8]} {hms[:2]}:{hms[2:4]}" + f":{hms[4:]}" * seconds
    t = start_time(record)
    return time.strftime("%m-%d %H:%M:%S" if seconds else "%m-%d %H:%M", time.localtime(t)) if t else "-"


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
            labels[i] = f"{label} {started(runs[i], seconds=True)}"
    return labels


def legend_lines(
    runs: list[RunRecord], width: int, most: int = LEGEND_LINES, values: list[str] | None = None, named: bool = True
) -> list[Text]:
    """The legend in at most `most` lines of `width` cells, entries never broken inside; runs that do not fit
    are counted on the last line (their marks are in the list). `values`: each run's reading at the charts'
    cursor, after its label (or alone, after its mark, when not `named`)."""
    entries = []
    labels = legend_labels(runs) if named or not values else [""] * len(runs)
    for i, label in enumerate(labels):
        label = (f"{label}: {values[i]}" if label else values[i]) if values else label
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
        self.values: list[str] | None = None
        """Each run's values at the charts' cursor (None: no cursor)."""

    def show(self, runs: list[RunRecord], values: list[str] | None = None) -> None:
        if (runs, values) != (self.runs, self.values):
            self.runs, self.values = runs, values
            self.refresh(layout=True)

    def lines(self, width: int) -> list[Text]:
        """The labels with each run's values at the cursor, or, when that takes more than LEGEND_LINES lines,
        the values after the runs' marks alone (the list names each mark's run)."""
        if not self.values:
            return legend_lines(self.runs, width)
        named = legend_lines(self.runs, width, len(self.runs), self.values)
        return named if len(named) <= LEGEND_LINES else legend_lines(self.runs, width, LEGEND_LINES, self.values, False)

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self.lines(width))

    def render(self) -> Text:
        return Text("\n", end="").join(self.lines(self.content_size.width))


def final_accuracy(record: RunRecord) -> str:
    acc = record.final_accuracy
    return "-" if acc is None else f"{acc:.2f}%"


def epochs_cell(record: RunRecord) -> str:
    """Complete epochs, with the planned number while they differ: `5`, `3/5`."""
    done, planned = record.epochs_done, record.config.epochs
    return str(done) if done == planned else f"{done}/{planned}"


def cells(record: Run, pinned: bool = False, peak: str = "-") -> dict[str, Text]:
    """A run's row by column (fmtui.widgets.runs_table.COLUMNS) as Text, never markup: folder names and file
    contents are data. The mark column holds the curve's mark (set by the pane) and ↑ for a pinned run; `peak`
    its peak memory (fmtui.widgets.system_view.peak_memory)."""
    if isinstance(record, BrokenRun):
        reason = record.reason if len(record.reason) <= REASON_WIDTH else record.reason[: REASON_WIDTH - 1] + "…"
        values = dict.fromkeys(COLUMNS, "-") | {"started": started(record), "status": f"broken: {reason}"}
    else:
        c = record.config
        values = {"started": started(record), "dataset": c.dataset, "model": model_label(c), "norm": c.norm}
        values |= {"lr": format_value(c.lr), "ep": epochs_cell(record), "acc": final_accuracy(record)}
        values["status"] = run_status(record)
    values |= {"mark": PIN if pinned else " ", "name": record.name, "peak": peak}
    style = STATUS_STYLES.get(record.status, "")
    if not style and isinstance(record, RunRecord):
        style = HEALTH_STYLES.get(record.health.severity, "")
    return {  # every cell escaped: a folder's name and files are data, no escape sequence reaches the terminal
        k: Text(safe_text(values[k]), no_wrap=True, end="", style=style if k == "status" else "") for k in COLUMNS
    }


class RunsChart(ThrottledPlot):
    """One metric of several runs over epochs, one coloured, labelled curve per run; a cursor line on an epoch,
    the last `window` epochs only (zoom), and for a loss a chosen scale."""

    def __init__(self, title: str, key: str, *, id: str | None = None) -> None:
        super().__init__(title, id=id)
        self.key = key
        self.runs: list[RunRecord] = []
        self.split = "test"
        self.cursor: int | None = None
        """The epoch the cursor line marks (None: no cursor)."""
        self.window: int | None = None
        """Show only the last this many epochs (None: all)."""
        self.log_scale: bool | None = None
        """A loss axis' scale: None = automatic (log from two decades on), True/False = chosen."""
        self.drawn_log = False
        self.drawn_x: tuple[float, float] = (0, 0)
        """The epochs the last drawing spans."""

    def show(self, runs: list[RunRecord], split: str, cursor: int | None = None, window: int | None = None) -> None:
        self.runs, self.split, self.cursor, self.window = runs, split, cursor, window
        self.chart_title = f"{split} {self.key}"
        self.mark_dirty()

    def draw(self, plt) -> None:
        curves = []
        last = last_epoch(self.runs)
        first = zoomed(last, self.window)
        for i, record in enumerate(self.runs):
            pts = [(r.get("epoch"), r.get(f"{self.split}_{self.key}")) for r in record.metrics]
            pts = [(x, y) for x, y in pts if _plottable(x) and _plottable(y)]  # never text: plotext would parse dates
            pts = [(x, y) for x, y in pts if x >= first]
            if pts:
                curves.append((i, [x for x, _ in pts], [y for _, y in pts]))
        values = [y for _, _, ys in curves for y in ys]
        if not values:
            none = f": none in these runs{' (no validation split)' if self.split == 'val' else ''}"
            plt.title(self.chart_title + (none if self.runs else ""))
            return
        most_x, most_y = self.most_ticks
        # raw-pixel runs reach losses in the thousands, others stay below 3: a log axis from two decades on
        if self.key == "loss":
            y = value_axis(values, most_y, self.log_scale)
        else:
            y = accuracy_axis(values, most_y, False)
        self.drawn_log = y.log
        for i, xs, ys in curves:
            if y.log:
                xs, ys = [x for x, v in zip(xs, ys) if v > 0], [math.log10(v) for v in ys if v > 0]
            colour, _, marker = look(i)
            plt.plot(xs, ys, color=colour, marker=marker)
        lo = min(min(xs) for _, xs, _ in curves)
        x = linear_axis(lo, max(last, lo + 1), most_x, integer=True, extend=False)
        set_axes(plt, x, y, x_pad=0.1)
        self.drawn_x = (x.lo, x.hi)
        if self.cursor is not None and x.lo <= self.cursor <= x.hi:
            plt.vline(self.cursor, color="gray")
        notes = ["log scale" * y.log, f"epoch {self.cursor}" if self.cursor is not None else ""]
        notes.append(f"last {self.window} epochs" if self.window else "")
        self.name_axes(plt, "epoch", self.key, self.chart_title, *notes)


def last_epoch(runs: list[RunRecord]) -> int:
    """The last epoch any of the runs has done (0: none)."""
    epochs = [r["epoch"] for run in runs for r in run.metrics[-1:] if _plottable(r.get("epoch"))]
    return int(max(epochs, default=0))


def reading(record: RunRecord, split: str, epoch: int) -> str:
    """A run's loss and accuracy at the epoch nearest `epoch` (`loss 0.46 · 83.90%`, then `at 5` when its
    nearest epoch is another one): what the legend says while the charts' cursor is on."""
    row = nearest_row(record.metrics, epoch)
    if row is None:
        return "no epochs"
    loss, acc = row.get(f"{split}_loss"), row.get(f"{split}_accuracy")
    text = f"loss {_number(loss)} · {'-' if not _plottable(acc) else f'{acc:.2f}%'}"
    return text if row["epoch"] == epoch else f"{text} at {row['epoch']}"


def _number(value: object) -> str:
    return f"{value:.4g}" if _plottable(value) else "-"


def _plottable(value: object) -> bool:
    """A finite number (the reader checked the rows; this keeps a chart safe whatever it is given)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e300


class RunsPane(Widget):
    """Past and running runs, followed live: space selects, their curves overlay; enter opens a run (a running
    one is watched in the Train pane, another one shows its errors); w watches, R resumes; f filters, p pins.

    While the pane is on screen it looks at the runs folder every POLL_INTERVAL seconds (fmtui.runfolder.read.RunsFolder:
    a listing and a few stats; only changed files are read again): new runs appear, running ones advance,
    dead ones turn `interrupted`, keeping the selection and the cursor. Broken folders are rows that say why.
    The list shows the runs that match the filter, pinned ones first, then the newest by start time.
    """

    DEFAULT_CSS = """
    RunsPane { height: 1fr; }
    RunsPane #runs-table { height: 1fr; min-height: 6; }
    RunsPane #runs-charts { height: 2fr; min-height: 10; }
    RunsPane.-none-selected #runs-charts, RunsPane.-none-selected #runs-legend { display: none; }
    RunsPane RunsChart { width: 1fr; }
    RunsPane #runs-status { height: 1; background: $boost; padding: 0 1; }
    """

    BINDINGS = [
        Binding("space", "toggle", "pick"),
        Binding("a", "select_all", "all", show=False),  # the footer has room for 80 columns; ? lists it
        Binding("f", "filter", "filter"),
        Binding("e", "export", "export"),
        Binding("h", "hparams", "hparams"),
        Binding("p", "pin", "pin to the top", show=False),
        Binding("v", "cycle_split", "curves: test/train/val", show=False),
        Binding("l", "log_scale", "loss axis: log/linear", show=False),
        Binding("z", "zoom(True)", "zoom: fewer last epochs", show=False),
        Binding("Z", "zoom(False)", "zoom out", show=False),
        Binding("enter", "open", "open"),
        Binding("w", "watch", "watch", show=False),  # enter watches a running run; ? lists w
        Binding("R", "resume", "resume", show=False),  # the status line offers it on a run it applies to
        Binding("r", "refresh", "refresh", show=False),
        Binding("L", "lecture", "lecture experiment", show=False),  # and in the command palette
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
        self.scanned: list[Run] = []
        """Every run of the last look at the folder."""
        self.records: list[Run] = []
        """The runs listed: those that match the filter, pinned first, then newest first."""
        self.selected: set[str] = set()
        """Keys (run_key) of the runs whose curves are shown."""
        self.filter = Query()
        self.pins: list[str] = []
        """Keys of the pinned runs (fmtui.pins: remembered per user and runs folder)."""
        self.split = "test"
        self.cursor: int | None = None
        """The epoch the charts' cursor is on (None: off)."""
        self.window: int | None = None
        """The charts show the last this many epochs (None: all)."""
        self.note = ""
        self._keys: dict[str, str] = {}
        self._starts: dict[str, tuple[Run, float]] = {}
        """Each run's start time, kept while its record is the same object (a look may stat its config.json)."""
        self._widths: dict[str, int] = {}
        """The columns shown and their widths (fmtui.widgets.runs_table.layout)."""
        self._marked: dict[str, tuple[int | None, bool]] = {}
        """Each row's mark: its place among the selected runs (which sets the mark's look), and whether pinned."""
        self._charted: tuple = ()
        """What the charts show (split, runs, cursor, window): they are redrawn only when it changes."""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("", id="runs-status", markup=False)
            yield FilterBar(id="runs-filter")
            yield RunsTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="runs-charts"):
                yield RunsChart("test loss", "loss", id="runs-loss")
                yield RunsChart("test accuracy", "accuracy", id="runs-acc")
            yield RunsLegend(id="runs-legend")

    def on_mount(self) -> None:
        self.pins = load_pins(self.runs_dir)
        self._update()
        self.set_interval(POLL_INTERVAL, self._poll)

    def on_show(self) -> None:
        """The first look at the runs folder is when the pane is first shown (not at the dashboard's start,
        which it would delay); after the pane was hidden, it catches up at once."""
        self.refresh_runs()

    def on_resize(self) -> None:
        self._sync_table(self.records, relayout=True)

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
        self.scanned = self.folder.scan()
        changed = self._sync_table(self._arrange(self.scanned))
        keys = {self.run_key(r) for r in self.scanned if isinstance(r, RunRecord)}
        selected = {s for s in self.selected if s in keys} | {self.run_key(p) for p in select or []}
        if changed or selected != self.selected:
            self.selected = selected
            self._update()

    def start_time(self, record: Run) -> float:
        key = self.run_key(record)
        cached = self._starts.get(key)
        if cached is None or cached[0] is not record:
            cached = self._starts[key] = (record, start_time(record))
        return cached[1]

    def _arrange(self, runs: list[Run]) -> list[Run]:
        """The runs to list: those that match the filter; pinned first (in the order pinned), then newest first
        by start time (the folder's name between runs started in the same second)."""
        keys = {id(r): self.run_key(r) for r in runs}
        shown = [r for r in runs if self.filter.matches(r, keys[id(r)])] if self.filter else list(runs)
        shown.sort(key=lambda r: keys[id(r)], reverse=True)
        shown.sort(key=self.start_time, reverse=True)
        pins = {k: i for i, k in enumerate(self.pins)}
        shown.sort(key=lambda r: pins.get(keys[id(r)], len(pins)))
        return shown

    def _sync_table(self, records: list[Run], relayout: bool = False) -> bool:
        """Show records in the table: changed rows are updated in place; new, vanished or reordered runs, or a
        new layout of the columns, rebuild it, the cursor staying on its run. Returns whether anything changed."""
        old, self.records = self.records, records
        same = len(old) == len(records) and all(a is b for a, b in zip(old, records))
        if same and not relayout:
            return False
        table = self.query_one(RunsTable)
        keys = [self.run_key(r) for r in records]
        pinned = set(self.pins)
        rows = [cells(r, k in pinned, self._peak(r)) for r, k in zip(records, keys)]
        datasets = {r.config.dataset for r in records if isinstance(r, RunRecord)}
        # the list spans the pane: its width, not the list's (a resize reaches the pane before the list is laid out)
        widths = layout(self.content_size.width, rows, len(datasets) > 1)
        names = fit_names([row_cells["name"].plain for row_cells in rows], widths.get("name", 0))
        for row_cells, name in zip(rows, names):  # cut where names tell runs apart (the status line has them whole)
            row_cells["name"] = Text(name, no_wrap=True, end="")
        if widths == self._widths and [self.run_key(r) for r in old] == keys:
            for key, before, after, row in zip(keys, old, records, rows):
                if before is not after:
                    for column in widths.keys() - {"mark"}:
                        table.update_cell(key, column, row[column])
            return not same
        row = table.cursor_row
        cursor_key = self.run_key(old[row]) if 0 <= row < len(old) else None
        if widths != self._widths:
            table.clear(columns=True)
            for column, width in widths.items():
                table.add_column(COLUMNS[column], width=width, key=column)
            self._widths = widths
        else:
            table.clear()
        for key, cells_ in zip(keys, rows):
            table.add_row(*(cells_[c] for c in widths), key=key)
        self._marked = {key: (None, key in pinned) for key in keys}  # as cells() drew them: _update sets marks
        if records:
            table.move_cursor(row=keys.index(cursor_key) if cursor_key in keys else min(max(row, 0), len(keys) - 1))
        return True

    def _peak(self, record: Run) -> str:
        """A run's peak memory from its system.jsonl, read through the folder's cache (new lines only, when it grew)."""
        if not isinstance(record, RunRecord):
            return "-"
        try:
            tail = self.folder.files.load_grown(record.path / SYSTEM, read_tail)
        except RunError:  # a link or a huge file in its place: no figure, the run is listed all the same
            return "-"
        return peak_memory(tail.peaks if tail else None, str(record.resolved.get("device", "")))

    @property
    def selected_records(self) -> list[RunRecord]:
        return [r for r in self.records if isinstance(r, RunRecord) and self.run_key(r) in self.selected]

    def _cursor_record(self) -> Run | None:
        table = self.query_one(RunsTable)
        if not self.records or table.cursor_row < 0:
            return None
        return self.records[min(table.cursor_row, len(self.records) - 1)]

    def _update(self) -> None:
        table = self.query_one(RunsTable)
        runs = self.selected_records
        self.set_class(not runs, "-none-selected")  # no curves to draw: the list takes the charts' room
        marks = {self.run_key(r): i for i, r in enumerate(runs)}  # a run's mark in the list = its curve's
        pinned = set(self.pins)
        for key in list(self._marked):
            now = (marks.get(key), key in pinned)
            if key in table.rows and self._marked[key] != now and "mark" in self._widths:
                cell = (mark(now[0]) if now[0] is not None else Text(" ", end="")).append(PIN if now[1] else " ")
                table.update_cell(key, "mark", cell)
                self._marked[key] = now
        last = last_epoch(runs)
        if self.cursor is not None:
            self.cursor = min(max(self.cursor, zoomed(last, self.window)), max(last, 1))
        charted = (self.split, runs, self.cursor, self.window)
        if not self._charted or self._changed_chart(charted):
            self._charted = charted
            for chart in self.query(RunsChart):
                chart.show(runs, self.split, self.cursor, self.window)
        values = [reading(r, self.split, self.cursor) for r in runs] if self.cursor is not None else None
        self.query_one(RunsLegend).show(runs, values)
        self._show_status()

    def _changed_chart(self, charted: tuple) -> bool:
        split, runs, cursor, window = self._charted
        if (split, cursor, window) != (charted[0], charted[2], charted[3]) or len(runs) != len(charted[1]):
            return True
        return any(a is not b for a, b in zip(runs, charted[1]))

    def _show_status(self) -> None:
        """The status line: the broken or interrupted run under the cursor says why; else the selection."""
        record = self._cursor_record()
        if isinstance(record, BrokenRun):
            line = f"{self.run_key(record)}: broken: {record.reason}"
        elif record is not None and record.status == "interrupted":
            line = f"{self.run_key(record)}: {record.message}; R resumes it"
        elif isinstance(record, RunRecord) and not record.health.ok:
            line = f"{self.run_key(record)}: {record.health.state}: {record.health.hint}"
        else:
            runs = self.selected_records
            hint = "space selects runs to compare" if not runs else f"{len(runs)} selected, {self.split} curves"
            broken = sum(isinstance(r, BrokenRun) for r in self.scanned)
            shown = f"{len(self.records)} of " if self.filter else ""
            count = f"{shown}{plural(len(self.scanned), 'run')}" + (f" ({broken} broken)" if broken else "")
            line = self.folder.error or f"{hint} · {count} in {self.runs_dir}"
            line = f"filter {self.filter.text} · {line}" if self.filter else line
            line = f"{self.note} · {line}" if self.note else line
        self.query_one("#runs-status", Static).update(safe_text(line))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_status()

    def _tell(self, text: str, severity: str = "warning", title: str = "") -> None:
        self.notify(safe_text(text), title=title, severity=severity, markup=False)  # names and reasons are data

    # --- selection, filter and pins ------------------------------------------------------------------------

    def action_toggle(self) -> None:
        record = self._cursor_record()
        if isinstance(record, BrokenRun):
            self._tell(f"{record.name} is broken ({record.reason}): nothing to plot")
        elif record is not None:
            self.selected ^= {self.run_key(record)}
            self._update()

    def action_select_all(self) -> None:
        """Select every listed run (those the filter shows), or none when all of them are selected."""
        keys = {self.run_key(r) for r in self.records if isinstance(r, RunRecord)}
        self.selected = self.selected - keys if keys and self.selected >= keys else self.selected | keys
        self._update()

    def action_filter(self) -> None:
        """Open the filter's field (fmtui.runquery: `norm:zscore lr>=1e-3 health:ok`); enter or escape leave it."""
        self.query_one(FilterBar).edit()

    def set_filter(self, text: str) -> None:
        """Filter the list by a query (as typed in the field; QueryError when it cannot be read)."""
        self.filter = Query(text)
        bar = self.query_one(FilterBar)
        bar.input.value = text
        bar.set_class(bool(self.filter), "-shown")
        self._refilter()

    def on_filter_bar_changed(self, message: FilterBar.Changed) -> None:
        message.stop()
        self.filter = message.filter
        self._refilter()

    def on_filter_bar_done(self, message: FilterBar.Done) -> None:
        message.stop()
        self.query_one(RunsTable).focus()

    def _refilter(self) -> None:
        self._sync_table(self._arrange(self.scanned))
        self._update()

    def action_pin(self) -> None:
        """Pin the run under the cursor to the top of the list, or unpin it; remembered per user (fmtui.pins)."""
        record = self._cursor_record()
        if record is None:
            return
        key = self.run_key(record)
        known = {self.run_key(r) for r in self.scanned}  # pins of runs that are gone are forgotten here
        self.pins = [p for p in self.pins if p != key and p in known] + ([] if key in self.pins else [key])
        try:
            save_pins(self.runs_dir, self.pins)
        except OSError as e:
            self._tell(f"pins kept for this session only: cannot write them ({e.strerror or e})")
        self._sync_table(self._arrange(self.scanned), relayout=True)
        self._update()

    # --- the charts -------------------------------------------------------------------------------------------

    def on_runs_table_chart_cursor(self, message: RunsTable.ChartCursor) -> None:
        """left/right move the cursor an epoch (the first press puts it on the last epoch), escape hides it."""
        message.stop()
        runs = self.selected_records
        if message.step == 0:
            self.cursor = None
        elif not any(r.metrics for r in runs):
            self._tell("select runs with space: the cursor reads their curves")
            return
        else:
            last = last_epoch(runs)
            step = self.cursor + message.step if self.cursor is not None else last
            self.cursor = min(max(step, zoomed(last, self.window)), last)
        self._update()

    def action_log_scale(self) -> None:
        """Flip the loss chart between a log and a linear axis (it starts automatic: log from two decades on)."""
        chart = self.query_one("#runs-loss", RunsChart)
        chart.log_scale = not chart.drawn_log
        chart.drawn_log = chart.log_scale
        chart.mark_dirty()

    def action_zoom(self, inward: bool) -> None:
        """z: the last half as many epochs (at least 2); Z: twice as many, up to all of them."""
        last = last_epoch(self.selected_records)
        window = zoom_steps(last, self.window, inward) if last > 2 else None
        if window == self.window:
            self.app.bell()
            return
        self.window = window
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

    def action_hparams(self) -> None:
        """The hyperparameter view of the selected runs (else of every run listed)."""
        runs = self.selected_records or [r for r in self.records if isinstance(r, RunRecord)]
        if not runs:
            self._tell("no runs to compare")
            return
        self.app.push_screen(HParamsScreen(runs, [self.run_key(r) for r in runs]))

    # --- one run ------------------------------------------------------------------------------------------------

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
        self._tell(f"{plural(len(runs), 'run')} exported to {csv_path} and {json_path.name}", "information", "export")

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

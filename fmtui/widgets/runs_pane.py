"""The Runs pane: past runs from the runs folder, several selected at once, their curves overlaid.

Reading run folders needs no torch (fmtui.runs), so the list fills instantly. The pane only posts
messages for what needs the app: opening a run's Errors view and launching the lecture's experiment.
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
from fmtui.runs import RunRecord, export_runs, list_runs
from fmtui.widgets.charts import ThrottledPlot

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
MARKERS = ["braille", "dot", "+", "x", "o", "*", "~", "#"]
MARKER_CHARS = {"braille": "⣿", "dot": "•"}
METRICS = ("test", "train", "val")


def run_label(record: RunRecord) -> str:
    """A short name for legends: model, normalization, learning rate."""
    c = record.config
    model = c.model if c.model != "mlp" else f"mlp{','.join(map(str, c.hidden))}"
    return f"{model} {c.norm} lr{format_value(c.lr)}"


def started(record: RunRecord) -> str:
    """'11-26 16:53:59' from a run folder named <YYYYmmdd-HHMMSS>-..., else the start of its name."""
    name = record.name
    if len(name) >= 15 and name[:8].isdigit() and name[8] == "-" and name[9:15].isdigit():
        return f"{name[4:6]}-{name[6:8]} {name[9:11]}:{name[11:13]}:{name[13:15]}"
    return name[:14]


def legend(runs: list[RunRecord]) -> Text:
    """The charts' legend as one wrapping line (inside the plots it would hide the top curves)."""
    text = Text()
    for i, record in enumerate(runs):
        marker = MARKERS[i % len(MARKERS)]
        text.append(MARKER_CHARS.get(marker, marker) * 2, style=PALETTE[i % len(PALETTE)][1])
        text.append(f" {run_label(record)}   ")
    return text


def final_accuracy(record: RunRecord) -> str:
    acc = record.metrics[-1]["test_accuracy"] if record.metrics else None
    return "-" if acc is None else f"{acc:.2f}%"


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
        plt.xlabel("epoch")
        values = []
        for i, record in enumerate(self.runs):
            pts = [(r["epoch"], r.get(f"{self.split}_{self.key}")) for r in record.metrics]
            pts = [(x, y) for x, y in pts if y is not None and math.isfinite(y)]
            if pts:
                values += [y for _, y in pts]
                plt.plot(
                    [x for x, _ in pts],
                    [y for _, y in pts],
                    color=PALETTE[i % len(PALETTE)][0],
                    marker=MARKERS[i % len(MARKERS)],
                )
        log = self.key == "loss" and values and min(values) > 0 and max(values) / min(values) > 100
        plt.yscale("log" if log else "linear")  # raw-pixel runs reach losses in the thousands; others stay below 3
        plt.title(self.chart_title + (" (log scale)" if log else ""))


class RunsPane(Widget):
    """Past runs: space selects, their loss and accuracy curves overlay; enter opens a run's errors."""

    DEFAULT_CSS = """
    RunsPane { height: 1fr; }
    RunsPane #runs-table { height: 1fr; min-height: 5; }
    RunsPane #runs-charts { height: 2fr; min-height: 10; }
    RunsPane RunsChart { width: 1fr; }
    RunsPane #runs-status { height: 1; background: $boost; padding: 0 1; }
    RunsPane #runs-legend { height: auto; max-height: 3; padding: 0 1; }
    """

    BINDINGS = [
        Binding("space", "toggle", "select"),
        Binding("a", "select_all", "all"),
        Binding("v", "cycle_split", "curves"),
        Binding("enter", "open", "errors"),
        Binding("e", "export", "export"),
        Binding("r", "refresh", "refresh", show=False),
        Binding("L", "lecture", "lecture"),
    ]

    class Open(Message):
        """Show the Errors view of this run from its saved predictions."""

        def __init__(self, record: RunRecord) -> None:
            super().__init__()
            self.record = record

    class LaunchExperiment(Message):
        """Run the lecture's normalization x learning-rate experiment."""

    def __init__(self, runs_dir: Path, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.runs_dir = Path(runs_dir)
        self.records: list[RunRecord] = []
        self.selected: set[str] = set()
        """Keys (run_key) of the runs whose curves are shown."""
        self.split = "test"
        self.note = ""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("", id="runs-status")
            yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="runs-charts"):
                yield RunsChart("test loss", "loss", id="runs-loss")
                yield RunsChart("test accuracy", "accuracy", id="runs-acc")
            yield Static("", id="runs-legend")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(" ", "started", "dataset", "model", "norm", "lr", "ep", "test acc", "status")
        self.refresh_runs()

    def run_key(self, record_or_path: RunRecord | Path) -> str:
        """A run's folder relative to the runs folder: unique, also for runs inside sweep folders."""
        path = Path(getattr(record_or_path, "path", record_or_path))
        try:
            return str(path.relative_to(self.runs_dir))
        except ValueError:
            return str(path)

    def show_note(self, text: str) -> None:
        """A line about work in progress (the lecture experiment), shown above the list."""
        self.note = text
        self._update()

    def refresh_runs(self, select: list[Path] | None = None) -> None:
        """Re-read the runs folder (new runs appear, selection kept); optionally select some runs."""
        self.records = list_runs(self.runs_dir)
        keys = {self.run_key(r) for r in self.records}
        self.selected = {s for s in self.selected if s in keys} | {self.run_key(p) for p in select or []}
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for r in self.records:
            c = r.config
            model = c.model if c.model != "mlp" else f"mlp {','.join(map(str, c.hidden))}"
            key = self.run_key(r)
            table.add_row(
                "●" if key in self.selected else " ",
                started(r),
                c.dataset,
                model,
                c.norm,
                format_value(c.lr),
                str(len(r.metrics)),
                final_accuracy(r),
                r.status,
                key=key,
            )
        if self.records:
            table.move_cursor(row=min(max(row, 0), len(self.records) - 1))
        self._update()

    @property
    def selected_records(self) -> list[RunRecord]:
        return [r for r in self.records if self.run_key(r) in self.selected]

    def _cursor_record(self) -> RunRecord | None:
        table = self.query_one(DataTable)
        if not self.records or table.cursor_row < 0:
            return None
        return self.records[min(table.cursor_row, len(self.records) - 1)]

    def _update(self) -> None:
        table = self.query_one(DataTable)
        for r in self.records:
            key = self.run_key(r)
            table.update_cell(key, table.ordered_columns[0].key, "●" if key in self.selected else " ")
        runs = self.selected_records
        for chart in self.query(RunsChart):
            chart.show(runs, self.split)
        self.query_one("#runs-legend", Static).update(legend(runs))
        hint = "space selects runs to compare" if not runs else f"{len(runs)} selected, {self.split} curves"
        status = f"{hint} · {len(self.records)} runs in {self.runs_dir}"
        self.query_one("#runs-status", Static).update(f"{self.note} · {status}" if self.note else status)

    def action_toggle(self) -> None:
        record = self._cursor_record()
        if record is not None:
            self.selected ^= {self.run_key(record)}
            self._update()

    def action_select_all(self) -> None:
        keys = {self.run_key(r) for r in self.records}
        self.selected = set() if self.selected >= keys else keys
        self._update()

    def action_cycle_split(self) -> None:
        self.split = METRICS[(METRICS.index(self.split) + 1) % len(METRICS)]
        self._update()

    def action_open(self) -> None:
        record = self._cursor_record()
        if record is None:
            return
        if not (record.path / "predictions.pt").is_file():
            self.notify(f"{record.name} saved no predictions (it ended before its first epoch)", severity="warning")
            return
        self.post_message(self.Open(record))

    def action_export(self) -> None:
        runs = self.selected_records or ([self._cursor_record()] if self._cursor_record() else [])
        if not runs:
            self.notify("no runs to export", severity="warning")
            return
        csv_path, json_path = export_runs(runs, self.runs_dir / "exports")
        self.notify(f"{len(runs)} runs exported to {csv_path} and {json_path.name}", title="export")

    def action_refresh(self) -> None:
        self.refresh_runs()

    def action_lecture(self) -> None:
        self.post_message(self.LaunchExperiment())

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

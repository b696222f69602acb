"""The Runs pane's list: columns laid out to fit the width (status and accuracy always shown, the run's folder
name cut first, then the columns of least use left out; the peak memory of runs with system metrics where there
is room), Home/End to the first and last run, left/right for the
charts' cursor."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from fmtui.runfolder.schema import STAMPED

COLUMNS = {
    "mark": " ",
    "started": "started",
    "dataset": "dataset",
    "model": "model",
    "norm": "norm",
    "lr": "lr",
    "ep": "ep",
    "acc": "test acc",
    "peak": "peak mem",
    "name": "run",
    "status": "status",
}
"""Column key -> header, in the order shown."""
CAPS = {"model": 14, "status": 11, "dataset": 13, "started": 11, "lr": 7, "ep": 11, "norm": 9, "peak": 10}
"""Widest a column gets (longer cells are cut; the status line above the list says all of a broken run)."""
ALWAYS = ("mark", "acc", "status")
"""Shown at any width."""
BY_PRIORITY = ("norm", "lr", "ep", "model", "name", "peak", "started", "dataset")
"""The other columns, in the order they are given room (dataset before started when the runs differ in it, else
only where the folder names fit whole beside it); the folder's name takes what the others leave, at least
NAME_MIN cells."""
OPTIONAL = ("peak",)
"""Shown only when a run has a value in it (runs of older versions have no system metrics: "-")."""
NAME_MIN = 8
PAD = 2
"""DataTable's cell padding, both sides together."""
SCROLLBAR = 2
"""Cells a vertical scrollbar takes (kept free, so that the list never scrolls sideways)."""


def fit_names(names: list[str], width: int) -> list[str]:
    """Folder names in a column `width` cells wide (fit_name), cut alike: where one must be cut, every name
    fmtui gave drops its date, so that they line up by the time their runs started."""
    cut = any(cell_len(name) > width for name in names)
    dates = {stamped.group(1) for name in names if (stamped := STAMPED.match(name))}
    return [fit_name(name, width, cut=cut, dated=len(dates) > 1) for name in names]


def fit_name(name: str, width: int, *, cut: bool = False, dated: bool = False) -> str:
    """A run's folder name in `width` cells. Cut (or `cut`: as its neighbours are), a name fmtui gave keeps
    what tells runs apart: the time it started and its end (learning rate, the -N of runs started in the same
    second), `023000…lr0.01-2`; the date, dataset and model go first (the other columns, and the status line,
    say them); `dated`: among runs of several days, the month and day stay, `1208-023000…lr0.01`. Any other
    name is cut at its end."""
    if cell_len(name) <= width and not cut:
        return name
    stamped = STAMPED.match(name) if name.isascii() else None  # (cut by characters: one cell each)
    if stamped and width >= 7 + 5 * dated:
        (date, time_of_day), rest = stamped.groups(), name[stamped.end() + 1 :]
        time_of_day = f"{date[4:]}-{time_of_day}" if dated else time_of_day
        room = width - len(time_of_day) - 1
        if room < 4:  # too little for a tail that says anything
            return f"{time_of_day}…"
        if len(rest) <= room:  # only the date had to go
            return f"{time_of_day}…{rest}"
        tail = rest[-room:]
        dash = tail.find("-")
        if dash >= 0 and len(tail) - dash - 1 >= max(room // 2, 3):
            tail = tail[dash + 1 :]  # from the start of a part, not inside one
        return f"{time_of_day}…{tail}"
    if cell_len(name) <= width:
        return name
    text = Text(name, end="")
    text.truncate(width, overflow="ellipsis")
    return text.plain


def layout(width: int, rows: list[dict[str, Text]], datasets_differ: bool = False) -> dict[str, int]:
    """Column key -> width in cells, for a list `width` cells wide: every column as wide as its widest cell
    (within CAPS), status and accuracy always, the others while they fit (BY_PRIORITY); the run's folder name
    gets the room left, cut where it runs out. 80 columns show all but when the run started and its dataset."""

    def need(key: str) -> int:
        widest = max([cell_len(COLUMNS[key]), *(r[key].cell_len for r in rows)])
        return min(widest, CAPS.get(key, widest))

    room = width - SCROLLBAR
    widths = {k: need(k) for k in ALWAYS}
    used = sum(w + PAD for w in widths.values())
    order = list(BY_PRIORITY)
    if datasets_differ:
        order.remove("dataset")
        order.insert(order.index("started"), "dataset")
    for key in order:
        if key in OPTIONAL and all(r[key].plain == "-" for r in rows):
            continue
        want = min(need(key), NAME_MIN) if key == "name" else need(key)
        if key == "dataset" and not datasets_differ and "name" in widths:
            want += need("name") - widths["name"]  # one dataset for all: only where the names fit whole besides
        if used + want + PAD <= room:
            widths[key] = need(key) if key == "dataset" else want
            used += widths[key] + PAD
    if "name" in widths:
        widths["name"] = min(need("name"), widths["name"] + room - used)
    return {k: widths[k] for k in COLUMNS if k in widths}


class RunsTable(DataTable):
    """The list of runs: Home and End go to the first and last run (DataTable's scroll sideways, which this list,
    laid out to fit, never needs); left and right move the charts' cursor, escape hides it."""

    BINDINGS = [
        Binding("home", "first", "first run", show=False),
        Binding("end", "last", "last run", show=False),
        Binding("left", "chart_cursor(-1)", "chart cursor: earlier epoch", show=False),
        Binding("right", "chart_cursor(1)", "chart cursor: later epoch", show=False),
        Binding("escape", "chart_cursor(0)", "hide the chart cursor", show=False),
    ]

    class ChartCursor(Message):
        """Move the charts' cursor by `step` epochs (0: hide it)."""

        def __init__(self, step: int) -> None:
            super().__init__()
            self.step = step

    def action_first(self) -> None:
        if self.row_count:
            self.move_cursor(row=0)

    def action_last(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)

    def action_chart_cursor(self, step: int) -> None:
        self.post_message(self.ChartCursor(step))

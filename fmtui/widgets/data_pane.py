"""The Data pane: browse a dataset split as thumbnails and one large image, with counts and pixel statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.validation import Integer
from textual.widget import Widget
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from fmtui.config import NORM_HELP, RunConfig
from fmtui.widgets.image import ImageView, image_lines, image_mode, short_names

BARS = " ▁▂▃▄▅▆▇█"

Stats = tuple[float, float, float, float]


@dataclass
class Loaded:
    """What the loading worker hands back: the dataset and its pixel statistics per split."""

    dataset: Any
    raw: dict[str, Stats]
    """(mean, std, min, max) of the raw 0..255 pixels, per split."""
    normalized: dict[str, Stats]
    """The same after the configured normalization (statistics of the training split)."""
    norm: str


class ThumbGrid(Widget):
    """The page of thumbnails that holds the selection; draws as many as fit in its size."""

    DEFAULT_CSS = "ThumbGrid { width: 1fr; height: 1fr; }"
    DOWNSCALE = 2

    class Clicked(Message):
        """A thumbnail was clicked; `position` is its place in the browsed (filtered) order."""

        def __init__(self, position: int) -> None:
            super().__init__()
            self.position = position

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.images = self.labels = self.indices = None
        self.names: list[str] = []
        self.position = 0
        self._thumbs: dict[tuple[int, str], list[Text]] = {}

    def show(self, images, labels, indices, position: int, names: list[str]) -> None:
        """Browse `indices` (dataset indices in display order) of images; select `position`; names = classes."""
        if images is not self.images:
            self._thumbs.clear()
        self.images, self.labels, self.indices, self.position, self.names = images, labels, indices, position, names
        self.refresh()

    def cell_size(self) -> tuple[int, int]:
        """(width, height) of one thumbnail with its caption line, in cells."""
        h, w = self.images.shape[-2:]
        return w // self.DOWNSCALE, -(-(h // self.DOWNSCALE) // 2) + 1

    def grid_shape(self) -> tuple[int, int]:
        """(columns, rows) of thumbnails that fit; at least one of each."""
        if self.images is None:
            return 1, 1
        tw, th = self.cell_size()
        return max(1, (self.size.width + 1) // (tw + 1)), max(1, self.size.height // th)

    def page_start(self) -> int:
        cols, rows = self.grid_shape()
        return self.position // (cols * rows) * (cols * rows)

    def _thumb(self, index: int, mode: str) -> list[Text]:
        """Cached per sample: redrawing a page after a keypress must not re-render every thumbnail."""
        key = (index, mode)
        if key not in self._thumbs:
            if len(self._thumbs) > 1024:
                self._thumbs.clear()
            self._thumbs[key] = image_lines(self.images[index], mode, self.DOWNSCALE)
        return self._thumbs[key]

    def _caption(self, position: int, width: int) -> Text:
        index = int(self.indices[position])
        label = f"{index} {self.names[int(self.labels[index])]}"[:width].ljust(width)
        return Text(label, style="reverse bold" if position == self.position else "dim")

    def render(self) -> Text:
        if self.images is None or len(self.indices) == 0:
            return Text("no samples" if self.images is not None else "")
        cols, rows = self.grid_shape()
        (tw, th), start, mode = self.cell_size(), self.page_start(), image_mode(self.app)
        lines: list[Text] = []
        for row in range(rows):
            positions = range(start + row * cols, min(start + (row + 1) * cols, len(self.indices)))
            if not positions:
                break
            thumbs = [self._thumb(int(self.indices[p]), mode) for p in positions]
            lines += [Text(" ").join(t[y] for t in thumbs) for y in range(th - 1)]
            lines.append(Text(" ").join(self._caption(p, tw) for p in positions))
        return Text("\n", no_wrap=True, overflow="crop").join(lines)

    def on_click(self, event: events.Click) -> None:
        if self.images is None:
            return
        (tw, th), (cols, _) = self.cell_size(), self.grid_shape()
        col, row = event.x // (tw + 1), event.y // th
        position = self.page_start() + row * cols + col
        if col < cols and position < len(self.indices):
            self.post_message(self.Clicked(position))


class ClassCounts(Widget):
    """Samples per class as compact "k name count bar" cells, as many per line as the width allows."""

    DEFAULT_CSS = "ClassCounts { height: auto; }"
    CELL = 18

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.names: list[str] = []
        self.counts: list[int] = []
        self.heading = ""
        self.highlight: int | None = None

    def show(self, title: str, names: list[str], counts: list[int], highlight: int | None) -> None:
        self.heading, self.names, self.counts, self.highlight = title, names, counts, highlight
        self.refresh(layout=True)

    def _per_line(self, width: int) -> int:
        return max(1, width // self.CELL)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return 1 + -(-len(self.counts) // self._per_line(width)) if self.counts else 0

    def render(self) -> Text:
        per_line, top = self._per_line(self.size.width), max(self.counts or [1]) or 1
        text = Text(self.heading, style="bold")
        for k, (name, count) in enumerate(zip(self.names, self.counts)):
            text.append("\n" if k % per_line == 0 else "  ")
            bar = BARS[round(count / top * (len(BARS) - 1))]
            text.append(f"{k} {name:<5}{count:>6} {bar}", style="reverse" if k == self.highlight else "")
        return text


class JumpInput(Input):
    """The go-to-index box; escape closes it without moving."""

    BINDINGS = [Binding("escape", "close", "cancel")]

    def action_close(self) -> None:
        self.display = False
        if self.parent is not None:
            self.parent.focus()


class DataPane(Widget, can_focus=True):
    """Thumbnails, one large image, class counts and pixel statistics of the configured dataset.

    The app hands down every valid configuration (`show_config`); the pane loads what it needs only
    while on screen, as its statistics cost seconds of CPU that a run started at once should not share.
    Loading and statistics run in a thread worker, so the pane says "loading…" at once and shows a
    DataError as a message.
    """

    DEFAULT_CSS = """
    DataPane { height: 1fr; }
    DataPane #data-message { padding: 1 2; }
    DataPane.-error #data-message { color: $error; }
    DataPane #data-main, DataPane #data-bar { display: none; }
    DataPane.-ready #data-main, DataPane.-ready #data-bar { display: block; }
    DataPane.-ready #data-message { display: none; }
    DataPane #data-bar { height: 1; background: $boost; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    DataPane #data-left { width: 38%; min-width: 35; max-width: 62; padding: 0 0 0 1; }
    DataPane #data-big { height: 1fr; min-height: 7; }
    DataPane #data-caption { height: auto; text-style: bold; }
    DataPane #data-stats { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    DataPane #data-right { padding: 0 0 0 1; }
    DataPane #data-counts, DataPane #data-counts-left { height: auto; margin-top: 1; }
    DataPane #data-counts-left { display: none; }
    DataPane.-tall #data-counts-left { display: block; }
    DataPane.-tall #data-counts { display: none; }
    DataPane.-tall #data-big { height: auto; max-height: 1fr; }
    DataPane #data-jump { dock: bottom; display: none; border-title-color: $text; }
    DataPane #data-jump.-invalid { border-title-color: $text-error; border-title-style: bold; }
    """
    TALL = 34
    """From this height on, the class counts go under the large image, leaving the thumbnails the whole height
    (below it, the large image needs the room and the counts sit under the thumbnails)."""

    BINDINGS = [
        Binding("left", "move(-1)", "move", key_display="←→↑↓"),
        Binding("right", "move(1)", "next", show=False),
        Binding("up", "move_rows(-1)", "up", show=False),
        Binding("down", "move_rows(1)", "down", show=False),
        Binding("pageup", "move_pages(-1)", "page up", show=False),
        Binding("pagedown", "move_pages(1)", "page down", show=False),
        Binding("home", "move_to(0)", "first", show=False),
        Binding("end", "move_to(-1)", "last", show=False),
        Binding("g", "jump", "go to"),
        Binding("c", "cycle_class(1)", "class"),
        Binding("C", "cycle_class(-1)", "previous class", show=False),
        Binding("t", "toggle_split", "split"),
    ]

    split: reactive[str] = reactive("train", init=False)
    """The browsed split: train or test."""
    class_filter: reactive[int | None] = reactive(None, init=False)
    """Show only samples of this class (None = all)."""
    position: reactive[int] = reactive(0, init=False)
    """Place of the selected sample in the browsed (filtered) order."""

    class Computed(Message):
        """From the worker: a Loaded, or an error message; `generation` drops stale answers."""

        def __init__(self, generation: int, loaded: Loaded | None, error: str | None) -> None:
            super().__init__()
            self.generation, self.loaded, self.error = generation, loaded, error

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cfg: RunConfig | None = None
        """The configuration handed down last; what is shown follows it once the pane is on screen."""
        self._shown: tuple | None = None
        """(dataset, data_dir, norm) of what is loaded or loading."""
        self.data: Loaded | None = None
        self.indices = None
        self._generation = 0
        self._message = "no dataset yet"

    def compose(self) -> ComposeResult:
        yield Static(self._message, id="data-message")
        yield Static(id="data-bar")
        with Horizontal(id="data-main"):
            with Vertical(id="data-left"):
                yield Static(id="data-caption")
                yield ImageView(fit=True, id="data-big")
                yield Static(id="data-stats")
                yield ClassCounts(id="data-counts-left")
            with Vertical(id="data-right"):
                yield ThumbGrid(id="data-thumbs")
                yield ClassCounts(id="data-counts")
        yield JumpInput(
            placeholder="index, enter to go, esc to cancel",
            id="data-jump",
            validators=[Integer(minimum=0)],
            validate_on=["changed", "submitted"],
        )

    # --- loading ------------------------------------------------------------------------------

    def show_config(self, cfg: RunConfig) -> None:
        """Show cfg's dataset and normalization: now if the pane is on screen, else when it next is."""
        self.cfg = cfg
        if self.is_on_screen:
            self._follow_config()

    def on_show(self) -> None:
        self._follow_config()

    def _follow_config(self) -> None:
        """Load cfg's dataset (or reuse it when only the normalization changed), unless loaded or loading."""
        cfg = self.cfg
        if cfg is None or (cfg.dataset, cfg.data_dir, cfg.norm) == self._shown:
            return
        same_data = self._shown is not None and (cfg.dataset, cfg.data_dir) == self._shown[:2]
        self._shown, self._generation = (cfg.dataset, cfg.data_dir, cfg.norm), self._generation + 1
        reuse = self.data if same_data and self.data is not None else None
        if reuse is None:
            self.data = None
            self._set_message(f"loading {cfg.dataset}…")
        self._load(cfg, self._generation, reuse)

    @work(thread=True, exclusive=True, exit_on_error=False, group="data-pane")
    def _load(self, cfg: RunConfig, generation: int, reuse: Loaded | None) -> None:
        """Thread: load files and compute statistics; torch is imported here, never at module import."""
        try:
            loaded = _compute(cfg, reuse)
        except Exception as e:  # a DataError is the expected case; anything else must not kill the app either
            from fmtui.config import ConfigError
            from fmtui.data import DataError
            from fmtui.datafiles import locate

            known = isinstance(e, (DataError, ConfigError))
            missing = locate(cfg.dataset, cfg.data_dir).help() if isinstance(e, DataError) else ""
            message = missing or (str(e) if known else f"{type(e).__name__}: {e}")  # missing files: what to do
            self.post_message(self.Computed(generation, None, message))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(self.Computed(generation, loaded, None))

    def on_data_pane_computed(self, message: Computed) -> None:
        message.stop()
        if message.generation != self._generation:
            return
        if message.error is not None:
            self._set_message(message.error, error=True)
            return
        keep = self.data is not None and message.loaded.dataset is self.data.dataset
        self.data = message.loaded
        if not keep:
            self.set_reactive(DataPane.split, "train")
            self.set_reactive(DataPane.class_filter, None)
            self.set_reactive(DataPane.position, 0)
        self.set_class(False, "-error").set_class(True, "-ready")
        self._rebrowse(keep_index=keep)

    def _set_message(self, text: str, error: bool = False) -> None:
        self._message = text
        self.set_class(False, "-ready").set_class(error, "-error")
        if self.is_mounted:
            self.query_one("#data-message", Static).update(Text(text))

    # --- browsing state -----------------------------------------------------------------------

    @property
    def dataset(self):
        return None if self.data is None else self.data.dataset

    def _split_tensors(self):
        ds = self.data.dataset
        return (ds.x_train, ds.y_train) if self.split == "train" else (ds.x_test, ds.y_test)

    @property
    def selected_index(self) -> int | None:
        """Dataset index (in the current split) of the selected sample, or None when nothing is shown."""
        if self.indices is None or len(self.indices) == 0:
            return None
        return int(self.indices[self.position])

    def _rebrowse(self, keep_index: bool = False) -> None:
        """Recompute the browsed order after a split/filter change; keep the selected sample if it is in it."""
        previous = self.selected_index if keep_index else None
        _, y = self._split_tensors()
        self.indices = range(len(y)) if self.class_filter is None else (y == self.class_filter).nonzero().flatten()
        passes = previous is not None and (self.class_filter is None or int(y[previous]) == self.class_filter)
        self.set_reactive(DataPane.position, _position_of(self.indices, previous) if passes else 0)
        self._update_all()

    def watch_position(self) -> None:
        self._update_selection()

    def watch_split(self) -> None:
        self._rebrowse()

    def watch_class_filter(self) -> None:
        self._rebrowse(keep_index=True)

    # --- drawing ------------------------------------------------------------------------------

    def _update_all(self) -> None:
        stats = self.query_one("#data-stats", Static)
        stats.update(self._stats_text())
        stats.tooltip = f"{self.data.norm}: {NORM_HELP.get(self.data.norm, '')}"
        ds = self.data.dataset
        for counts in self.query(ClassCounts):
            counts.show(
                f"class counts ({self.split})", short_names(ds.classes), ds.class_counts(self.split), self.class_filter
            )
        self._update_selection()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.height >= self.TALL, "-tall")

    def _update_selection(self) -> None:
        if self.data is None:
            return
        x, y = self._split_tensors()
        self.query_one(ThumbGrid).show(x, y, self.indices, self.position, self.data.dataset.classes)
        index = self.selected_index
        big = self.query_one("#data-big", ImageView)
        big.set_image(None if index is None else x[index])
        self.query_one("#data-caption", Static).update(self._caption_text(index, y))
        self.query_one("#data-bar", Static).update(self._bar_text())

    def _caption_text(self, index: int | None, y) -> Text:
        if index is None:
            return Text("no samples of this class in this split")
        label = int(y[index])
        return Text(f"#{index}  label {label}  {self.data.dataset.classes[label]}")

    def _bar_text(self) -> Text:
        """Samples are named by their 0-based index everywhere (#0, g, the Errors list); with a class filter the
        bar also says how far into the class the selection is, in words rather than a second number format."""
        ds, n = self.data.dataset, len(self.indices)
        cls = "all" if self.class_filter is None else f"{self.class_filter} {ds.classes[self.class_filter]}"
        total = len(self._split_tensors()[1])
        where = f"#{self.selected_index} of #0-#{total - 1}" if n else "no samples"
        if n and self.class_filter is not None:
            where += f" ({self.position + 1}. of {n:,} in this class)"
        return Text(f"{ds.title} · {self.split} split · class: {cls} · {where}")  # one line, … where cut: the CSS

    def _stats_text(self) -> Text:
        raw, norm = self.data.raw[self.split], self.data.normalized[self.split]
        text = Text(f"{'pixels':<10}{'mean':>6}{'std':>6}{'min':>6}{'max':>6}\n", style="bold")
        text.append(_stats_row("raw", raw) + "\n")
        text.append(_stats_row(self.data.norm, norm) + "\n", style="bold")
        text.append(NORM_HELP.get(self.data.norm, ""), style="dim")
        return text

    # --- actions ------------------------------------------------------------------------------

    def _count(self) -> int:
        return 0 if self.indices is None else len(self.indices)

    def action_move(self, delta: int) -> None:
        if self._count():
            self.position = max(0, min(self._count() - 1, self.position + delta))

    def action_move_rows(self, delta: int) -> None:
        self.action_move(delta * self.query_one(ThumbGrid).grid_shape()[0])

    def action_move_pages(self, delta: int) -> None:
        cols, rows = self.query_one(ThumbGrid).grid_shape()
        self.action_move(delta * cols * rows)

    def action_move_to(self, position: int) -> None:
        if self._count():
            self.position = position % self._count()

    def action_toggle_split(self) -> None:
        if self.data is not None:
            self.split = "test" if self.split == "train" else "train"

    def action_cycle_class(self, step: int) -> None:
        """all -> 0 -> 1 ... -> last -> all (step -1 goes the other way)."""
        if self.data is None:
            return
        n = len(self.data.dataset.classes)
        order = [None, *range(n)]
        self.class_filter = order[(order.index(self.class_filter) + step) % len(order)]

    def action_jump(self) -> None:
        if self.data is None:
            return
        box = self.query_one(JumpInput)
        n = len(self._split_tensors()[1])
        box.validators = [Integer(minimum=0, maximum=n - 1, failure_description=f"not an index from 0 to {n - 1}")]
        box.placeholder = f"{self.split} index 0..{n - 1}, enter to go, esc to cancel"
        box.border_title = f"go to a {self.split} index, 0..{n - 1}"
        box.value, box.display = "", True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        """Say why a value is refused (a red border alone does not), in the box's title."""
        event.stop()
        result, n = event.validation_result, len(self._split_tensors()[1]) if self.data is not None else 0
        bad = result is not None and not result.is_valid and bool(event.value)
        shown = (
            f"✗ {event.value!r} is {result.failure_descriptions[0]}"
            if bad
            else f"go to a {self.split} index, 0..{n - 1}"
        )
        event.input.border_title = Text(shown)
        event.input.set_class(bad, "-invalid")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.validation_result is not None and not event.validation_result.is_valid:
            self.app.bell()
            return
        self.go_to(int(event.value))
        event.input.display = False
        self.focus()

    def go_to(self, index: int) -> None:
        """Select dataset index `index` of the current split, dropping a class filter it does not pass."""
        _, y = self._split_tensors()
        if self.class_filter is not None and int(y[index]) != self.class_filter:
            self.set_reactive(DataPane.class_filter, None)
            self.indices = range(len(y))
            self._update_all()
        self.position = _position_of(self.indices, index)

    def on_thumb_grid_clicked(self, message: ThumbGrid.Clicked) -> None:
        message.stop()
        self.focus()
        self.position = message.position


def _position_of(indices, index: int) -> int:
    """Where dataset index `index` sits in the browsed order (a range or a sorted index tensor)."""
    if isinstance(indices, range):
        return index
    return int((indices == index).nonzero().flatten()[0])


def _num(v: float) -> str:
    """Six columns, always a space before the number: 255, 72.9, -0.43."""
    digits = 0 if abs(v) >= 100 or float(v).is_integer() else 1 if abs(v) >= 10 else 2
    return f"{v:>6.{digits}f}"


def _stats_row(label: str, stats: Stats) -> str:
    return f"{label:<10}" + "".join(_num(v) for v in stats)


def _compute(cfg: RunConfig, reuse: Loaded | None) -> Loaded:
    """Load the dataset (unless reused) and the per-split pixel statistics before/after normalization."""
    from fmtui.data import load_dataset, norm_stats, pixel_stats

    ds = reuse.dataset if reuse is not None else load_dataset(cfg.dataset, cfg.data_dir)
    splits = {"train": ds.x_train, "test": ds.x_test}
    raw = reuse.raw if reuse is not None else {s: pixel_stats(x) for s, x in splits.items()}
    stats = norm_stats(cfg.norm, ds.x_train)
    return Loaded(ds, raw, {s: pixel_stats(x, stats) for s, x in splits.items()}, cfg.norm)

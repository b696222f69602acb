"""Live training charts: PlotextPlot subclasses that own their series and redraw a few times a second.

PlotextPlot rebuilds the whole plot on every render (about 50 ms for 2x100 points at 120x40), so
new points only mark a chart dirty; `replot` runs on a timer at most `MIN_INTERVAL` apart, and every
series is averaged down to the chart's width before plotting. Series are bounded (BoundedSeries): past a
maximum, old points are averaged together, so hours of training keep memory and redraw time flat. Each
render plots the series afresh (see `ThrottledPlot.render`).

Axes come from fmtui.ticks: round 1-2-5 ticks with compact labels; a series spanning two decades or more
is drawn on a log axis (log10 of the values, labelled with the values), unless the user chose a scale.
Charts over epochs can show only the last epochs (`zoomed`, `zoom_steps`) and read values at a cursor
(`nearest_row`): the Runs pane's overlay uses both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from textual_plotext import PlotextPlot

from fmtui.ticks import Axis, linear_axis, log_axis, spans_decades

# Colours from the 256-colour palette (readable at 256 colours); markers tell series apart without colour.
SERIES_STYLE = {
    "train": ("cyan", "braille"),
    "val": ("magenta", "dot"),
    "test": ("orange", "hd"),
}
ACCURACY_SPAN = 10.0
"""The accuracy axis spans at least this many points: noise of a tenth of a point around chance level must
look flat, not like a learning curve."""
LABELLED_HEIGHT = 12
"""From this height on, the axes carry their names (a row of their own); below, the title says them."""


def downsample(xs: list[float], ys: list[float], n: int) -> tuple[list[float], list[float]]:
    """Average consecutive points into at most n buckets (keeps the curve's shape, drops its noise)."""
    if n <= 0 or len(xs) <= n:
        return list(xs), list(ys)
    out_x, out_y = [], []
    for i in range(n):
        lo, hi = i * len(xs) // n, (i + 1) * len(xs) // n
        out_x.append(sum(xs[lo:hi]) / (hi - lo))
        out_y.append(sum(ys[lo:hi]) / (hi - lo))
    return out_x, out_y


class BoundedSeries:
    """Points added one at a time, at most `most` kept: hours of training stay flat in memory.

    When `most` points are kept, neighbours are averaged in pairs and from then on every `stride` new
    points are averaged into one, so each kept point stands for the same number of points added (x is
    their mean too); the newest, not yet complete, group is shown as one more point.
    """

    def __init__(self, most: int) -> None:
        self.most = max(most - most % 2, 2)  # even: halving pairs every point with an equal one
        self.stride = 1
        self.xs: list[float] = []
        self.ys: list[float] = []
        self._group: list[tuple[float, float]] = []

    def __len__(self) -> int:
        return len(self.xs) + bool(self._group)

    def add(self, x: float, y: float) -> None:
        self._group.append((x, y))
        if len(self._group) < self.stride:
            return
        self.xs.append(sum(p[0] for p in self._group) / len(self._group))
        self.ys.append(sum(p[1] for p in self._group) / len(self._group))
        self._group = []
        if len(self.xs) >= self.most:
            self.xs, self.ys = downsample(self.xs, self.ys, len(self.xs) // 2)
            self.stride *= 2

    def points(self) -> tuple[list[float], list[float]]:
        """Every kept point, then the mean of the newest incomplete group."""
        if not self._group:
            return list(self.xs), list(self.ys)
        n = len(self._group)
        return self.xs + [sum(p[0] for p in self._group) / n], self.ys + [sum(p[1] for p in self._group) / n]


def finite(xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    """Drop points whose value is NaN or infinite (a diverged run), which plotext cannot draw."""
    pairs = [(x, y) for x, y in zip(xs, ys) if math.isfinite(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def value_axis(values: list[float], most: int, log: bool | None) -> Axis:
    """The y axis of a loss: log when asked (log=True), or, when log is None, when the values span two decades."""
    positive = [v for v in values if v > 0]
    if (log or (log is None and spans_decades(values))) and positive:
        return log_axis(min(positive), max(positive), most)
    return linear_axis(min(values), max(values), most)


def loss_axis(values: list[float], most: int, log: bool | None, chance: float | None, decide_on=None) -> Axis:
    """A loss axis; a loss above chance level (ln of the number of classes: a model that guesses) reaches down to
    it, so an exploding run is drawn against it, on a log axis when that spans two decades. `decide_on`: the
    values whose span decides an automatic scale (default: values)."""
    above = chance is not None and max(values) > chance
    values = values + [chance] if above else values
    if log is None:
        log = spans_decades((decide_on or values) + ([chance] if above else []))
    return value_axis(values, most, log)


def draw_chance(plt, chance: float | None, label: str, x: float, y: Axis) -> str:
    """Chance level as a line labelled at x (its right end) where it is on the axis; else the label, for the
    title ("" if unknown)."""
    if chance is None:
        return ""
    at = y.position(chance) if chance > 0 or not y.log else None
    if at is not None and y.lo <= at <= y.hi:
        plt.hline(at, color="gray")
        plt.text(label, x, at, color="gray", alignment="right")  # at the right: curves start at the left
        return ""
    return label


LEGEND_GLYPHS = {"braille": "⠒⠒", "hd": "▀▀", "dot": "••"}
"""A series' sample in a legend, drawn as its curve is (plotext's own legend sits in the top-left corner, over
the curves whatever they do)."""


@dataclass(frozen=True)
class LegendPlace:
    """Where a legend goes on a canvas: a corner, its entries one a row or side by side in one row."""

    top: bool = True
    left: bool = True
    across: bool = False


X_PAD = 0.1
"""Epochs of room at either end of an epoch chart's x axis, so that the first and last points are off the frame."""
LEGEND_GAP = 2
"""Cells between entries side by side."""


def legend_place(
    curves: Sequence[tuple[Sequence[float], Sequence[float]]],
    x: tuple[float, float],
    y: tuple[float, float],
    canvas: tuple[int, int],
    entries: Sequence[int],
) -> LegendPlace | None:
    """The place for a legend of entries `entries` cells wide where it covers the fewest cells the curves pass
    through: a corner, one entry a row, or side by side where the canvas is too short for that (at 80x24 a
    chart has three rows); the top-left corner, one a row, where that is as good as any. Curves are in axis
    units (x and y: the canvas's limits; a log axis's curves in log10). Accuracies rise and losses fall: any
    fixed corner hides the start of one or the other. None: the legend fits the canvas neither way."""
    cols, rows = canvas
    (x0, x1), (y0, y1) = x, y
    sx, sy = cols / ((x1 - x0) or 1.0), rows / ((y1 - y0) or 1.0)
    cells: set[tuple[int, int]] = set()
    for xs, ys in curves:
        points = [((a - x0) * sx, (b - y0) * sy) for a, b in zip(xs, ys) if math.isfinite(b)]
        for (ax, ay), (bx, by) in zip(points, points[1:] or points):
            steps = max(1, math.ceil(2 * (abs(bx - ax) + abs(by - ay))))
            for t in range(steps + 1):  # a value on the top or right limit is in the last row or column
                c, r = math.floor(ax + (bx - ax) * t / steps), math.floor(ay + (by - ay) * t / steps)
                cells.add((min(max(c, 0), cols - 1), min(max(r, 0), rows - 1)))
    across = sum(entries) + LEGEND_GAP * (len(entries) - 1)

    def covered(place: LegendPlace) -> int:
        width, height = (across, 1) if place.across else (max(entries), len(entries))
        columns = range(0, width + 1) if place.left else range(cols - width - 1, cols)
        lines = range(rows - height, rows) if place.top else range(0, height)  # rows are dear: no margin
        return sum((c, r) in cells for c in columns for r in lines)

    corners = [(True, True), (True, False), (False, False), (False, True)]
    fits = [False] * (len(entries) <= rows and max(entries) <= cols) + [True] * (across <= cols)
    places = [LegendPlace(top, left, side_by_side) for side_by_side in fits for top, left in corners]
    return min(places, key=covered) if places else None


def draw_legend(
    plt,
    entries: list[tuple[str, str, str]],
    x: tuple[float, float],
    y: tuple[float, float],
    canvas: tuple[int, int],
    place: LegendPlace,
) -> None:
    """Entries (sample, colour, name) at a place (legend_place's) on a canvas (columns, rows) whose limits are
    x and y."""
    (x0, x1), (y0, y1) = x, y
    cols, rows = canvas
    row, col = (y1 - y0) / max(rows, 1), (x1 - x0) / max(cols, 1)
    texts = [(f"{sample} {name}", colour) for sample, colour, name in entries]
    if place.across:
        at = y1 - 0.5 * row if place.top else y0 + 0.5 * row
        width = sum(len(t) for t, _ in texts) + LEGEND_GAP * (len(texts) - 1)
        start = 0 if place.left else cols - width
        for text, colour in texts:
            plt.text(text, x0 + (start + 0.5) * col, at, color=colour, alignment="left")
            start += len(text) + LEGEND_GAP
        return
    for k, (text, colour) in enumerate(texts):
        at = y1 - (k + 0.5) * row if place.top else y0 + (len(texts) - k - 0.5) * row
        plt.text(text, x0 if place.left else x1, at, color=colour, alignment="left" if place.left else "right")


def accuracy_axis(values: list[float], most: int, pinned: bool) -> Axis:
    """0..100 when pinned; else the values' range, at least ACCURACY_SPAN wide, within 0..100."""
    if pinned or not values:
        return linear_axis(0.0, 100.0, most)
    lo, hi = min(values), max(values)
    if hi - lo < ACCURACY_SPAN:
        mid = (lo + hi) / 2
        lo, hi = mid - ACCURACY_SPAN / 2, mid + ACCURACY_SPAN / 2
        lo, hi = (0.0, ACCURACY_SPAN) if lo < 0 else (100.0 - ACCURACY_SPAN, 100.0) if hi > 100 else (lo, hi)
    return linear_axis(max(lo, 0.0), min(hi, 100.0), most)


def zoomed(last: int, window: int | None) -> int:
    """The first epoch shown when a chart shows the last `window` epochs up to `last` (1: all of them)."""
    return 1 if window is None else max(last - window + 1, 1)


def zoom_steps(last: int, window: int | None, inward: bool) -> int | None:
    """The next zoom (z: half as many epochs, at least 2; Z: twice as many, up to all = None); the same window
    when it cannot go further that way."""
    if inward:
        shown = last if window is None else window
        return max((shown + 1) // 2, 2) if shown > 2 else window
    if window is None or window * 2 >= last:
        return None
    return window * 2


def nearest_row(rows: list[dict], epoch: float) -> dict | None:
    """The row (a metrics.jsonl line) whose epoch is nearest `epoch`, the earlier one of two as near."""
    return min(rows, key=lambda r: (abs(r["epoch"] - epoch), r["epoch"]), default=None)


def set_axes(plt, x: Axis, y: Axis, x_pad: float = 0.0) -> None:
    """Limits, ticks and labels of both axes (x_pad widens the x limits so the end points are not on the frame)."""
    plt.xlim(x.lo - x_pad, x.hi + x_pad)
    plt.xticks(x.ticks, x.labels)
    plt.ylim(y.lo, y.hi)
    plt.yticks(y.ticks, y.labels)


class ThrottledPlot(PlotextPlot):
    """A plot that owns its data and redraws at most every MIN_INTERVAL seconds."""

    MIN_INTERVAL = 0.25

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.chart_title = title
        self._dirty = False

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(self.MIN_INTERVAL, self._tick)
        self.replot()

    def on_resize(self) -> None:
        self.mark_dirty()  # the downsampled series depends on the width

    def mark_dirty(self) -> None:
        """New data arrived; the next timer tick redraws (at most every MIN_INTERVAL seconds)."""
        self._dirty = True

    def _tick(self) -> None:
        if self._dirty:
            self.replot()

    def replot(self) -> None:
        """Redraw the plot from the series now (tests and resizes call it directly)."""
        self._dirty = False
        self.refresh()

    def render(self):
        """Plot the series afresh at every render: plotext takes the log of a log-scaled axis's data in place
        when it builds a figure, so building the same figure twice (a resize does) would take the log twice."""
        plt = self.plt
        plt.clear_data()
        plt.xlabel("")
        plt.ylabel("")
        plt.title(self.chart_title)
        self.draw(plt)
        return super().render()

    def draw(self, plt) -> None:
        """Plot the series with plt (a plotext figure); subclasses implement it."""
        raise NotImplementedError

    @property
    def most_ticks(self) -> tuple[int, int]:
        """How many intervals between ticks fit: x labels need ~8 columns each, y labels two rows."""
        return max(2, (self.size.width - 8) // 9), max(2, (self.size.height - 5) // 2)

    def canvas_size(self, y: Axis) -> tuple[int, int]:
        """The plot's canvas in cells (columns, rows), about: the widget less the y labels, frame, x labels, title
        and, where name_axes puts them, the axes' names."""
        labels = max((len(label) for label in y.labels), default=1)
        named = 1 if self.size.height >= LABELLED_HEIGHT else 0
        return max(self.size.width - labels - 2, 1), max(self.size.height - 4 - named, 1)

    def name_axes(self, plt, x: str, y: str, title: str, *notes: str) -> None:
        """The title with as many notes as fit ("log", "chance 2.30": the first ones first; plotext drops a title
        wider than the plot), and the axes' names under the plot when it is tall enough (a row is dear at 80x24,
        where the titles name the axes: "loss per epoch", "train loss by step")."""
        if self.size.height >= LABELLED_HEIGHT:
            plt.xlabel(x)
            plt.ylabel(y)
        parts = [title, *(n for n in notes if n)]
        while len(parts) > 1 and len(" · ".join(parts)) > self.size.width - 4:
            parts.pop()
        plt.title(" · ".join(parts))

    def _get_plotext_theme_name(self, app_theme_name: str) -> str:
        """Under an ANSI theme (ansi-dark, ansi-light) draw with the terminal's own colours: Textual gives
        such themes no RGB values (all read as black), and plotext's auto theme would be black on black."""
        theme = self.app.get_theme(app_theme_name)
        ansi = getattr(theme, "ansi", "ansi" in getattr(theme, "name", ""))  # Theme.ansi from Textual 6.3 (or so)
        if self.theme == "auto" and theme is not None and ansi:
            return "clear"
        return super()._get_plotext_theme_name(app_theme_name)


class EpochChart(ThrottledPlot):
    """One metric per epoch for train / val / test: a loss (log scale when it spans two decades) or an
    accuracy (with the chance level).

    A long run keeps at most MAX_POINTS points per series (older epochs averaged, see BoundedSeries),
    and a redraw plots about two points per column: memory and redraw time stay flat however many epochs.
    """

    MAX_POINTS = 2000

    def __init__(self, title: str, *, accuracy: bool = False, id: str | None = None) -> None:
        super().__init__(title, id=id)
        self.series: dict[str, BoundedSeries] = {}
        self.last_epoch = 0
        self.accuracy = accuracy
        self.log_scale: bool | None = None
        """A loss axis' scale: None = automatic (log when the values span two decades), True/False = chosen."""
        self.pinned = False
        """An accuracy axis from 0 to 100 (else it follows the values)."""
        self.chance: float | None = None
        """Chance level, drawn as a labelled line (None: unknown): 100 / classes for an accuracy, ln(classes)
        for a loss (the loss of a model that gives every class the same probability)."""
        self.drawn_log = False
        """Whether the last drawing used a log axis (what a toggle of the scale flips)."""

    def clear(self) -> None:
        self.series, self.last_epoch = {}, 0
        self.replot()

    def add(self, epoch: int, **values: float | None) -> None:
        """Append one epoch's values (None = series not recorded, e.g. no validation split)."""
        self.last_epoch = max(self.last_epoch, epoch)
        for name, value in values.items():
            if value is not None:
                self.series.setdefault(name, BoundedSeries(self.MAX_POINTS)).add(epoch, value)
        self.mark_dirty()

    def draw(self, plt) -> None:
        width = 2 * max(self.size.width - 10, 10)  # braille: about two points per column
        curves = {name: downsample(*finite(*series.points()), width) for name, series in self.series.items()}
        drawn: list[tuple[list[float], list[float]]] = []
        legend: list[tuple[str, str, str]] = []
        values = [y for _, ys in curves.values() for y in ys]
        if not values:
            return
        most_x, most_y = self.most_ticks
        if self.accuracy:
            y = accuracy_axis(values, most_y, self.pinned)
        else:
            y = loss_axis(values, most_y, self.log_scale, self.chance)
        self.drawn_log = y.log
        for name, (xs, ys) in curves.items():
            if y.log:
                xs, ys = [x for x, v in zip(xs, ys) if v > 0], [math.log10(v) for v in ys if v > 0]
            if xs:
                color, marker = SERIES_STYLE.get(name, ("white", "braille"))
                plt.plot(xs, ys, color=color, marker=marker)
                drawn.append((xs, ys))
                legend.append((LEGEND_GLYPHS.get(marker, marker), color, name))
        x = linear_axis(1, max(self.last_epoch, 2), most_x, integer=True, extend=False)
        limits = (x.lo - X_PAD, x.hi + X_PAD)
        set_axes(plt, x, y, x_pad=X_PAD)
        label = f"chance {self.chance or 0:g}%" if self.accuracy else f"chance {self.chance or 0:.2f}"
        chance = draw_chance(plt, self.chance, label, x.hi, y)
        if not chance and self.chance is not None:  # its line and label: the legend keeps off them too
            at = y.position(self.chance)
            drawn.append((list(limits), [at, at]))
        if legend:
            canvas = self.canvas_size(y)
            widths = [len(sample) + 1 + len(name) for sample, _, name in legend]
            place = legend_place(drawn, limits, (y.lo, y.hi), canvas, widths)
            if place is not None:  # else a chart too small for it: its curves, unlabelled
                draw_legend(plt, legend, limits, (y.lo, y.hi), canvas, place)
        self.name_axes(plt, "epoch", "%" if self.accuracy else "loss", self.chart_title, "log" * y.log, chance)


class BatchLossChart(ThrottledPlot):
    """The training loss step by step, as the engine reports it: (step, loss) points, each the mean loss of
        a fixed number of steps (fmtui.events.BatchProgress.losses), so the curve does not depend on the
        machine's speed. The history is bounded (BoundedSeries): old points are averaged evenly, so a long run stays
    in view and in memory."""

    MIN_INTERVAL = 1.0
    """Once a second: a replot is ~50 ms of Python that holds the GIL the training thread needs."""
    MAX_POINTS = 4000

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(title, id=id)
        self.series = BoundedSeries(self.MAX_POINTS)
        self.log_scale: bool | None = None
        """The scale: None = automatic (log when the finite losses span two decades), True/False = chosen."""
        self.steps_per_point = 1
        self.chance: float | None = None
        """The loss of guessing, ln(classes), drawn as a labelled line (None: unknown)."""
        self.empty_note = ""
        """What the title says while there is no point (a watched run: its writer keeps the step curve)."""
        self.drawn_log = False
        """Whether the last drawing used a log axis (what a toggle of the scale flips)."""
        self.last_step = -math.inf
        """The step of the newest point: add_points skips the points up to it (a cumulative curve comes again)."""

    def clear(self) -> None:
        self.series, self.steps_per_point, self.last_step = BoundedSeries(self.MAX_POINTS), 1, -math.inf
        self.replot()

    def add(self, x: float, loss: float) -> None:
        self.series.add(x, loss)
        self.mark_dirty()

    def add_points(self, points: Sequence[tuple[int, float]], steps_per_point: int = 1) -> None:
        """(step, mean loss) points, in order; NaN and inf are kept (and never drawn). Points this chart has already
        (a step not past its newest) are skipped, so the whole curve so far may be passed each time."""
        self.steps_per_point = steps_per_point
        for step, loss in points:
            if step > self.last_step:
                self.last_step = step
                self.add(step, loss)

    def draw(self, plt) -> None:
        points = self.series.points()
        all_xs, all_ys = finite(*points)
        xs, ys = downsample(all_xs, all_ys, max(2 * (self.size.width - 10), 10))  # braille: two dots per column
        every = f"mean of {self.steps_per_point}" if self.steps_per_point > 1 else ""
        if not xs:
            self.name_axes(plt, "step", "loss", self.chart_title, every, self.empty_note)
            return
        most_x, most_y = self.most_ticks
        y = loss_axis(ys, most_y, self.log_scale, self.chance, decide_on=all_ys)  # the scale: from every point
        self.drawn_log = y.log
        if y.log:
            xs, ys = [x for x, v in zip(xs, ys) if v > 0], [math.log10(v) for v in ys if v > 0]
        color, marker = SERIES_STYLE["train"]
        plt.plot(xs, ys, color=color, marker=marker)
        x = linear_axis(0, max(points[0][-1], 1), most_x, integer=True, extend=False)
        set_axes(plt, x, y)
        chance = draw_chance(plt, self.chance, f"chance {self.chance or 0:.2f}", x.hi, y)
        self.name_axes(plt, "step", "loss", self.chart_title, "log" * y.log, chance, every)

"""Live training charts: PlotextPlot subclasses that own their series and redraw a few times a second.

PlotextPlot rebuilds the whole plot on every render (about 50 ms for 2x100 points at 120x40), so
new points only mark a chart dirty; `replot` runs on a timer at most `MIN_INTERVAL` apart, and every
series is averaged down to the chart's width before plotting. Series are bounded (BoundedSeries): past a
maximum, old points are averaged together, so hours of training keep memory and redraw time flat. Each
render plots the series afresh (see `ThrottledPlot.render`).
"""

from __future__ import annotations

import math

from textual_plotext import PlotextPlot

# Colours from the 256-colour palette (readable at 256 colours); markers tell series apart without colour.
SERIES_STYLE = {
    "train": ("cyan", "braille"),
    "val": ("magenta", "dot"),
    "test": ("orange", "hd"),
}


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
        plt.title(self.chart_title)
        self.draw(plt)
        return super().render()

    def draw(self, plt) -> None:
        """Plot the series with plt (a plotext figure); subclasses implement it."""
        raise NotImplementedError


class EpochChart(ThrottledPlot):
    """One metric per epoch for train / val / test, e.g. loss or accuracy.

    A long run keeps at most MAX_POINTS points per series (older epochs averaged, see BoundedSeries),
    and a redraw plots about two points per column: memory and redraw time stay flat however many epochs.
    """

    MAX_POINTS = 2000

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(title, id=id)
        self.series: dict[str, BoundedSeries] = {}
        self.last_epoch = 0

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
        for name, series in self.series.items():
            xs, ys = finite(*series.points())
            xs, ys = downsample(xs, ys, 2 * max(self.size.width - 10, 10))
            if xs:
                color, marker = SERIES_STYLE.get(name, ("white", "braille"))
                plt.plot(xs, ys, label=name, color=color, marker=marker)
        if self.last_epoch:
            plt.xticks(_epoch_ticks(self.last_epoch))
            plt.xlim(0.9, max(self.last_epoch, 2) + 0.1)


def _epoch_ticks(n: int, most: int = 8) -> list[int]:
    step = max(1, math.ceil(n / most))
    return list(range(1, n + 1, step))


class BatchLossChart(ThrottledPlot):
    """Training loss as the engine reports it (a few points per second), x in fractional epochs."""

    MIN_INTERVAL = 1.0
    """Once a second: a replot is ~50 ms of Python that holds the GIL the training thread needs."""
    MAX_POINTS = 4000
    """A long run keeps at most this many points, older ones averaged evenly (BoundedSeries)."""

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(title, id=id)
        self.series = BoundedSeries(self.MAX_POINTS)

    def clear(self) -> None:
        self.series = BoundedSeries(self.MAX_POINTS)
        self.replot()

    def add(self, x: float, loss: float) -> None:
        self.series.add(x, loss)
        self.mark_dirty()

    def draw(self, plt) -> None:
        xs, ys = finite(*self.series.points())
        xs, ys = downsample(xs, ys, max(self.size.width - 10, 10))
        if xs:
            color, marker = SERIES_STYLE["train"]
            plt.plot(xs, ys, color=color, marker=marker)

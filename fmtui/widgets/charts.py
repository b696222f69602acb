"""Live training charts: PlotextPlot subclasses that own their series and redraw a few times a second.

PlotextPlot rebuilds the whole plot on every render (about 50 ms for 2x100 points at 120x40), so
new points only mark a chart dirty; `replot` runs on a timer at most `MIN_INTERVAL` apart, and the
per-batch series is averaged down to the chart's width before plotting. Each render plots the series
afresh (see `ThrottledPlot.render`).
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
    """One metric per epoch for train / val / test, e.g. loss or accuracy."""

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(title, id=id)
        self.series: dict[str, list[float]] = {}

    def clear(self) -> None:
        self.series = {}
        self.replot()

    def add(self, epoch: int, **values: float | None) -> None:
        """Append one epoch's values (None = series not recorded, e.g. no validation split)."""
        for name, value in values.items():
            if value is not None:
                self.series.setdefault(name, []).append(value)
        self.mark_dirty()

    def draw(self, plt) -> None:
        for name, ys in self.series.items():
            xs, ys = finite(list(range(1, len(ys) + 1)), ys)
            if xs:
                color, marker = SERIES_STYLE.get(name, ("white", "braille"))
                plt.plot(xs, ys, label=name, color=color, marker=marker)
        longest = max((len(v) for v in self.series.values()), default=0)
        if longest:
            plt.xticks(_epoch_ticks(longest))
            plt.xlim(0.9, max(longest, 2) + 0.1)


def _epoch_ticks(n: int, most: int = 8) -> list[int]:
    step = max(1, math.ceil(n / most))
    return list(range(1, n + 1, step))


class BatchLossChart(ThrottledPlot):
    """Training loss as the engine reports it (a few points per second), x in fractional epochs."""

    MIN_INTERVAL = 1.0
    """Once a second: a replot is ~50 ms of Python that holds the GIL the training thread needs."""
    MAX_POINTS = 4000

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(title, id=id)
        self.xs: list[float] = []
        self.ys: list[float] = []

    def clear(self) -> None:
        self.xs, self.ys = [], []
        self.replot()

    def add(self, x: float, loss: float) -> None:
        self.xs.append(x)
        self.ys.append(loss)
        if len(self.xs) > self.MAX_POINTS:  # a long run: halve the history so a replot stays cheap
            self.xs, self.ys = downsample(self.xs, self.ys, self.MAX_POINTS // 2)
        self.mark_dirty()

    def draw(self, plt) -> None:
        xs, ys = finite(self.xs, self.ys)
        xs, ys = downsample(xs, ys, max(self.size.width - 10, 10))
        if xs:
            color, marker = SERIES_STYLE["train"]
            plt.plot(xs, ys, color=color, marker=marker)

"""The learning-rate finder in the Model pane: loss against learning rate (log x), the suggestion marked.

The panel stays hidden until the finder first runs (`l`). The app owns the finder's worker and hands each
of its events down through the `show_*` methods; `a` (a ConfigForm key) copies `suggested` into the form.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from fmtui.registry import model_label
from fmtui.widgets.charts import SERIES_STYLE, ThrottledPlot, finite, value_axis

if TYPE_CHECKING:
    from fmtui.config import RunConfig
    from fmtui.lrfind import Finished, Progress

SUGGESTION_COLOR = "red"


def decade_label(exponent: int) -> str:
    """1e-7 ... 1e-4, 0.001, 0.01, 0.1, 1, 10: short labels for the decades of a log axis."""
    return f"{10.0**exponent:g}" if -3 <= exponent <= 3 else f"1e{exponent}"


class LrPlot(ThrottledPlot):
    """The smoothed loss of the finder's steps against their learning rate, on a log axis; the suggestion is a line."""

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(title, id=id)
        self.lrs: list[float] = []
        self.smoothed: list[float] = []
        self.suggested: float | None = None

    def clear(self) -> None:
        self.lrs, self.smoothed, self.suggested = [], [], None
        self.replot()

    def add(self, lrs: list[float], smoothed: list[float]) -> None:
        self.lrs += lrs
        self.smoothed += smoothed
        self.mark_dirty()

    def show(self, lrs: list[float], smoothed: list[float], suggested: float | None) -> None:
        """The whole curve of a finished search, with its suggestion."""
        self.lrs, self.smoothed, self.suggested = list(lrs), list(smoothed), suggested
        self.mark_dirty()

    def draw(self, plt) -> None:
        xs, ys = finite(self.lrs, self.smoothed)
        xs, ys = zip(*[(x, y) for x, y in zip(xs, ys) if x > 0]) if xs else ((), ())
        plt.xscale("log" if xs else "linear")  # scales outlive clear_data: set them every time
        plt.yscale("linear")
        if not xs:
            return
        low, top = min(ys), min(max(ys), max(ys[0], 2 * min(ys)))  # the blow-up's tail leaves through the top
        log_y = low > 0 and top / low > 20  # raw pixels start far above their minimum
        y = value_axis([low, top], self.most_ticks[1], log_y)  # round ticks (fmtui.ticks), log10 positions if log
        plt.ylim(y.lo, y.hi)
        plt.yticks(y.ticks, y.labels)
        color, marker = SERIES_STYLE["train"]
        plt.plot(list(xs), [y.position(v) for v in ys], color=color, marker=marker)
        first, last = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
        step = max(1, math.ceil((last - first + 1) / max(self.size.width // 9, 2)))
        decades = list(range(first, last + 1, step))
        plt.xticks([10.0**k for k in decades], [decade_label(k) for k in decades])
        plt.xlabel("learning rate (log)")
        if self.suggested is not None:
            plt.vline(self.suggested, SUGGESTION_COLOR)


class LrFinder(Vertical):
    """The finder's status line and plot; hidden until it first runs."""

    DEFAULT_CSS = """
    LrFinder { display: none; height: 1fr; min-height: 12; max-height: 24; }
    LrFinder.-shown { display: block; }
    LrFinder #lr-status { height: auto; color: $text-muted; }
    LrFinder #lr-status.-found { color: $text-success; text-style: bold; }
    LrFinder #lr-status.-error { color: $text-error; text-style: bold; }
    LrFinder LrPlot { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.suggested: float | None = None
        """The finder's suggestion (steepest descent of the smoothed loss), once it has one."""

    def compose(self) -> ComposeResult:
        yield Static("", id="lr-status", markup=False)
        yield LrPlot("loss vs learning rate", id="lr-plot")

    def _status(self, text: str, kind: str = "") -> None:
        status = self.query_one("#lr-status", Static)
        status.update(text)
        for name in ("found", "error"):
            status.set_class(kind == name, f"-{name}")

    def show_starting(self, cfg: RunConfig) -> None:
        self.add_class("-shown")
        self.suggested = None
        self.query_one(LrPlot).clear()
        self.query_one(LrPlot).chart_title = f"loss vs lr · {_what(cfg)}"
        self._status("lr finder: loading the data and fresh weights… (x stops)")

    def show_progress(self, ev: Progress) -> None:
        self.query_one(LrPlot).add(ev.lrs, ev.smoothed)
        if ev.lrs:
            self._status(
                f"lr finder: step {ev.step}/{ev.steps} · lr {ev.lrs[-1]:.2g} · loss {ev.smoothed[-1]:.4g} (x stops)"
            )

    def show_finished(self, ev: Finished) -> None:
        self.suggested = ev.suggested_lr
        plot = self.query_one(LrPlot)
        plot.chart_title = f"{plot.chart_title} · {len(ev.lrs)} steps, {ev.seconds:.1f}s"
        plot.show(ev.lrs, ev.smoothed, ev.suggested_lr)
        plot.replot()
        stopped = "Stopped · " if ev.status == "stopped" else ""
        if ev.suggested_lr is None or ev.min_over_10 is None:
            self._status(f"{stopped}No suggestion: the smoothed loss never fell", "error")
            return
        self._status(
            f"{stopped}Suggested lr {ev.suggested_lr:.2g} (steepest fall: {SUGGESTION_COLOR} line) · min/10 "
            f"{ev.min_over_10:.2g} · a: apply",
            "found",
        )

    def show_error(self, message: str) -> None:
        self.add_class("-shown")
        self._status(f"lr finder failed: {message}", "error")


def _what(cfg: RunConfig) -> str:
    """The config the finder ran on, without the learning rate it searches for."""
    return f"{model_label(cfg)} · {cfg.norm} · {cfg.optimizer} · batch {cfg.batch_size}"

"""The learning-rate finder in the Model pane: loss against learning rate (log x), the suggestion marked.

The panel stays hidden until the finder first runs (`l`). The app owns the finder's worker and hands each
of its events down through the `show_*` methods; `a` (a ConfigForm key) copies `applicable` into the form.
A suggestion belongs to the config it was measured on: the form hands every config it reads to `follow`,
and once they differ in an option the curve depends on (model, normalization, batch size, optimizer,
data...), the suggestion is stale: the panel folds to one line saying so, and `a` applies nothing.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from fmtui.config import OPTIONS
from fmtui.registry import model_label
from fmtui.widgets.charts import SERIES_STYLE, ThrottledPlot, finite, value_axis

if TYPE_CHECKING:
    from fmtui.config import RunConfig
    from fmtui.lrfind import Finished, Progress

SUGGESTION_COLOR = "red"
NOT_MEASURED = ("lr", "epochs", "schedule", "device", "threads", "graphs")
"""Options the finder's curve does not depend on: it sets every step's learning rate itself and trains one pass
without a schedule; where it runs (device, threads, CUDA graphs) changes the speed, not the curve. Every other
option (data, model and its layers, normalization, optimizer and its settings, batch size, validation split,
seed) changes what it measured."""


def changed_options(measured: RunConfig, now: RunConfig) -> list[str]:
    """The options (form labels, else option names) in which `now` differs from the config the finder measured,
    leaving out NOT_MEASURED."""
    names = [f.name for f in dataclasses.fields(measured) if f.name not in NOT_MEASURED]
    differ = [n for n in names if getattr(measured, n) != getattr(now, n)]
    return [OPTIONS[n].label or OPTIONS[n].cli if n in OPTIONS else n.replace("_", " ") for n in differ]


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
    """The finder's status line and plot; hidden until it first runs, folded to its status line when stale."""

    DEFAULT_CSS = """
    LrFinder { display: none; height: 1fr; min-height: 12; max-height: 24; }
    LrFinder.-shown { display: block; }
    LrFinder.-stale { height: auto; min-height: 0; }
    LrFinder.-stale LrPlot { display: none; }
    LrFinder #lr-status { height: auto; color: $text-muted; }
    LrFinder #lr-status.-found { color: $text-success; text-style: bold; }
    LrFinder #lr-status.-error { color: $text-error; text-style: bold; }
    LrFinder LrPlot { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.suggested: float | None = None
        """The last search's suggestion (the steepest relative fall of the smoothed loss), once it has one."""
        self.measured: RunConfig | None = None
        """The config of the last search (None before the first)."""
        self.form: RunConfig | None = None
        """The form's config as last followed (`follow`)."""
        self.searching = False
        self._found = ("", "")
        """The finished search's status line and its kind, shown again when the form comes back to its config."""

    def compose(self) -> ComposeResult:
        yield Static("", id="lr-status", markup=False)
        yield LrPlot("loss vs lr", id="lr-plot")

    @property
    def changes(self) -> list[str]:
        """The options the form changed since the search measured its config ([] while they agree)."""
        if self.measured is None or self.form is None:
            return []
        return changed_options(self.measured, self.form)

    @property
    def applicable(self) -> float | None:
        """The suggestion `a` may apply: the finished search's, while the form holds the config it measured."""
        return None if self.searching or self.changes else self.suggested

    def follow(self, cfg: RunConfig) -> bool:
        """The form now holds cfg: fold the panel and withdraw the suggestion once it no longer belongs to it (or
        bring both back). True when what `a` may apply changed (the form refreshes its footer)."""
        before = self.applicable
        self.form = cfg
        self._show_state()
        return self.applicable != before

    def _show_state(self) -> None:
        if self.searching or self.measured is None:
            return
        changes = self.changes
        self.set_class(bool(changes), "-stale")
        if not changes:
            self._status(*self._found)
            return
        what = f"lr {self.suggested:.2g}" if self.suggested is not None else "the curve"
        self._status(
            f"lr finder: {what} was measured on {_what(self.measured)}; the form's {', '.join(changes)} changed since: "
            "l measures again"
        )

    def _status(self, text: str, kind: str = "") -> None:
        status = self.query_one("#lr-status", Static)
        status.update(text)
        for name in ("found", "error"):
            status.set_class(kind == name, f"-{name}")

    def show_starting(self, cfg: RunConfig) -> None:
        self.add_class("-shown")
        self.remove_class("-stale")
        self.suggested, self.measured, self.searching = None, cfg, True
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
        self.suggested, self.searching = ev.suggested_lr, False
        plot = self.query_one(LrPlot)
        plot.chart_title = f"{plot.chart_title} · {len(ev.lrs)} steps, {ev.seconds:.1f}s"
        plot.show(ev.lrs, ev.smoothed, ev.suggested_lr)
        plot.replot()
        stopped = "Stopped · " if ev.status == "stopped" else ""
        if ev.suggested_lr is None or ev.min_over_10 is None:
            self._found = (f"{stopped}No suggestion: the smoothed loss never fell", "error")
        else:
            self._found = (
                f"{stopped}Suggested lr {ev.suggested_lr:.2g} (steepest fall: {SUGGESTION_COLOR} line) · min/10 "
                f"{ev.min_over_10:.2g} · a: apply",
                "found",
            )
        self._show_state()

    def show_error(self, message: str) -> None:
        self.add_class("-shown")
        self.remove_class("-stale")
        self.searching, self.measured, self.suggested = False, None, None
        self._status(f"lr finder failed: {message}", "error")


def _what(cfg: RunConfig) -> str:
    """The config the finder ran on, without the learning rate it searches for."""
    return f"{model_label(cfg)} · {cfg.norm} · {cfg.optimizer} · batch {cfg.batch_size}"

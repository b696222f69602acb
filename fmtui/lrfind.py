"""The learning-rate finder (the LR range test): train fresh weights while the learning rate grows, watch the loss.

From a run's config, `lr_find` builds the model from fresh seeded weights (the ones a run of this config starts
from; no run's weights or folder are touched) and trains it for at most STEPS steps while the learning rate
grows exponentially from START_LR to END_LR, one step per value. The loss of each batch (before its step) is
smoothed by an exponential moving average with bias correction; the search stops when the smoothed loss has
blown up (BLOW_UP x its minimum, or not finite). The suggestion is where the smoothed loss falls fastest in
proportion: the steepest slope of log(loss) against log(lr), each taken from lr/2 to 2 lr (see `suggest`), with
the usual "minimum / 10" (a tenth of the lr at the lowest loss) beside it.

Like `engine.train`, it is a generator of small events (Started, Progress*, then Finished), polls
`should_stop` between steps, and imports no UI: the headless command and the dashboard's worker consume it.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from fmtui import models
from fmtui.config import RunConfig
from fmtui.data import Dataset, batch_indices
from fmtui.engine import ModelStep, device_name, prepare

START_LR = 1e-7
"""The first learning rate: small enough that no model of fmtui moves at all."""
END_LR = 10.0
"""The last learning rate: large enough that every model of fmtui blows up before it."""
STEPS = 300
"""Steps from START_LR to END_LR (about 37 per decade): seconds on a CPU, enough points for the slope."""
BETA = 0.9
"""Smoothing of the loss: an exponential moving average over ~10 steps (a quarter of a decade of lr). A longer
average smooths more but lags: its curve, and the suggestion with it, move to higher learning rates."""
BLOW_UP = 4.0
"""Stop when the smoothed loss exceeds 4x its minimum: the learning rate is past any usable value."""
SKIP_START = 10
"""Points left out of the suggestion at the start, where the moving average has seen too few batches: no slope
starts or ends there (the first batches of one seed can fall by half by chance)."""
SLOPE_FACTOR = 2.0
"""The slope at a learning rate is taken from lr / 2 to 2 lr (0.6 of a decade, about 22 points at the default
300 steps): narrower, batch noise decides which point is steepest on a curve that falls evenly over
decades (raw pixels); wider, the fall of a sharp curve is blurred into its flat start. Measured on the real
Fashion-MNIST over seeds 0-7: picks within 2.1x (raw pixels), 2.2x (z-score), 1.5x (the lecture's MLP),
where +-5 points of the plain loss (the rule before) spread 26x on raw pixels (BENCHMARKS.md)."""


@dataclass
class Started:
    """Data and fresh model are on the device; the search begins."""

    config: RunConfig
    dataset: str
    device: str
    model: str
    start_lr: float
    end_lr: float
    steps: int
    """The most steps the search takes (it stops earlier once the loss blows up)."""


@dataclass
class Progress:
    """The points of the curve since the previous event: each step's lr, batch loss and smoothed loss."""

    step: int
    steps: int
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]


@dataclass
class Finished:
    """The search ended: status "completed" (the loss blew up, or END_LR was reached) or "stopped" (by the caller).

    `suggested_lr` is the steepest relative fall of the smoothed loss (`suggest`), `min_loss_lr` the lr of its
    minimum; both None when the curve is too short or never falls."""

    status: str
    message: str
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggested_lr: float | None
    min_loss_lr: float | None
    seconds: float

    @property
    def min_over_10(self) -> float | None:
        return None if self.min_loss_lr is None else self.min_loss_lr / 10


Event = Started | Progress | Finished


@dataclass
class Curve:
    """Loss against learning rate, smoothed as it grows (an exponential moving average, bias corrected)."""

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    average: float = 0.0
    best: float = math.inf
    """The lowest smoothed loss so far."""

    def add(self, lr: float, loss: float) -> None:
        self.average = BETA * self.average + (1 - BETA) * loss
        value = self.average / (1 - BETA ** (len(self.lrs) + 1))
        self.lrs.append(lr)
        self.losses.append(loss)
        self.smoothed.append(value)
        if value < self.best:
            self.best = value

    def blown_up(self) -> bool:
        """The last smoothed loss is not finite, or above BLOW_UP x the lowest so far."""
        last = self.smoothed[-1]
        return not math.isfinite(last) or (len(self.smoothed) > SKIP_START and last > BLOW_UP * self.best)


def suggest(lrs: list[float], smoothed: list[float]) -> tuple[float | None, float | None]:
    """(suggested lr, lr of the minimum) of a smoothed curve; None where there is no such point.

    Only the curve's finite start counts. The suggestion is the steepest fall of log(loss) against log10(lr)
    between SKIP_START and the minimum (past it the loss rises), each slope taken from lr / SLOPE_FACTOR to
    lr * SLOPE_FACTOR (clipped to the points from SKIP_START on). A relative fall, not an absolute one: raw
    pixels start at a loss near 100 (the inputs' scale at initialisation) and shed most of it evenly over two
    decades of lr, where the steepest absolute step is the noisiest batch; the fall that matters is the one
    that goes on at a low loss, which log(loss) weighs equally with a fall from 100 to 50."""
    n = next((i for i, v in enumerate(smoothed) if not math.isfinite(v)), len(smoothed))
    if n <= SKIP_START:
        return None, None
    low = min(range(SKIP_START, n), key=lambda i: smoothed[i])
    x = [math.log10(lr) for lr in lrs[:n]]
    y = [math.log(max(v, 1e-12)) for v in smoothed[:n]]
    best, steepest = None, 0.0
    for i in range(SKIP_START, low + 1):
        a = bisect_left(lrs, lrs[i] / SLOPE_FACTOR, SKIP_START, n)
        b = bisect_right(lrs, lrs[i] * SLOPE_FACTOR, i, n) - 1
        if b > a and (slope := (y[b] - y[a]) / (x[b] - x[a])) < steepest:
            best, steepest = i, slope
    return (lrs[best] if best is not None else None), lrs[low]


def lr_at(i: int, steps: int, start_lr: float = START_LR, end_lr: float = END_LR) -> float:
    """The learning rate of step i (0-based) of `steps`: exponential from start_lr to end_lr."""
    return start_lr * (end_lr / start_lr) ** (i / max(steps - 1, 1))


def lr_find(
    cfg: RunConfig,
    *,
    dataset: Dataset | None = None,
    start_lr: float = START_LR,
    end_lr: float = END_LR,
    steps: int = STEPS,
    should_stop: Callable[[], object] = lambda: False,
    progress_interval: float = 0.1,
) -> Iterator[Event]:
    """Run the LR range test for cfg and yield Started, Progress*, Finished (see the module docstring).

    Raises ConfigError/DataError for bad input, before any event. The config's schedule and epochs are
    ignored (the finder sets the learning rate of every step); the optimizer, its momentum and weight decay,
    the model, normalization, batch size, device and seed are the config's."""
    if not 0 < start_lr < end_lr:
        raise ValueError(f"the lr range must grow: {start_lr:g} to {end_lr:g}")
    p = prepare(cfg.replace(schedule="none", epochs=1, lr=start_lr), dataset)
    step = ModelStep(p)
    p.model.train()
    shape, classes = p.dataset.shape, len(p.dataset.classes)
    yield Started(
        cfg,
        p.dataset.title,
        device_name(p.device, p.threads),
        models.describe(cfg, shape, classes),
        start_lr,
        end_lr,
        steps,
    )
    curve, status, why = Curve(), "completed", f"reached lr {end_lr:g} without blowing up"
    batches = _batches(p)
    t0 = last = time.perf_counter()
    sent = 0
    for i in range(steps):
        reason = should_stop()
        if reason:  # True, or a string naming why (a signal): said as the engine says it
            status, why = "stopped", f"stopped{f' by {reason}' if isinstance(reason, str) else ''} after {i} steps"
            break
        lr = lr_at(i, steps, start_lr, end_lr)
        for group in p.optimizer.param_groups:
            group["lr"] = lr
        loss, _ = step.train(i + 1, next(batches))
        curve.add(lr, loss.item())
        if curve.blown_up():
            why = f"the smoothed loss blew up at lr {lr:.2g} (step {i + 1})"
            break
        if time.perf_counter() - last >= progress_interval:
            yield _progress(curve, sent, i + 1, steps)
            sent, last = len(curve.lrs), time.perf_counter()
    if sent < len(curve.lrs):
        yield _progress(curve, sent, len(curve.lrs), steps)
    suggested, at_min = suggest(curve.lrs, curve.smoothed)
    seconds = time.perf_counter() - t0
    message = f"{why}; {len(curve.lrs)} steps in {seconds:.1f}s"
    yield Finished(status, message, curve.lrs, curve.losses, curve.smoothed, suggested, at_min, seconds)


def _progress(curve: Curve, sent: int, step: int, steps: int) -> Progress:
    return Progress(step, steps, curve.lrs[sent:], curve.losses[sent:], curve.smoothed[sent:])


def _batches(p) -> Iterator[torch.Tensor]:
    """Full-size training batches of fresh seeded permutations, epoch after epoch (a short last batch is left
    out: its loss is noisier than its neighbours')."""
    gen = torch.Generator(device=p.device).manual_seed(p.config.seed)
    n, size = len(p.splits.y_train), p.config.batch_size
    while True:
        batches = list(batch_indices(n, size, gen, p.device))
        yield from (b for b in batches if len(b) == size or n < size)

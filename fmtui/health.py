"""Training health: whether a run is learning, judged from numbers it already has, with a hint from its own facts.

`assess` looks at the epochs so far (train loss, test accuracy), the number of classes and what the model's
inputs look like (and, when known, the loss of the first batch before any step), and names one state (fmtui.events.HEALTH_STATES), worst first:

    diverged     a loss is not finite
    exploding    the training loss is far above chance level (and above its own start), or rose tenfold
                 above an earlier epoch
    at chance    test accuracy is within a point or two of a blind guess (100 / classes)
    unstable     test accuracy fell by several points over the last epochs, whatever the training loss did
    input scale  the training loss is far above chance level but below the loss before the first step: the
                 inputs' scale made the initial weights' answers confidently wrong, and steps bring it down
    ok           none of these

Each state comes with a hint: what the numbers show, and what to try given the inputs' scale and the
learning rate. No torch here: the engine measures the inputs (lazily: only a run that is not ok needs them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fmtui.events import EpochEnd, Health

EXPLODING_X_CHANCE = 10.0
"""exploding: a training loss above 10x chance level (ln C, the loss of a uniform guess over C classes).
A model that learnt nothing sits at ln C (2.30 for 10 classes); ten times that means confident and wrong on
most samples, which steps far too large produce, and so do unnormalized inputs before any step: a softmax
regression on raw pixels starts near 100 (43x) and at lr 1e-6, batch 64, its first epoch's mean is 26.5
(11x) while falling. So a loss above 10x chance counts as exploding only when it is also above the loss of
the first batch (the initial weights); below it, the state is `input scale`. Healthy runs on normalized
inputs stay below ln C after one epoch; the lecture's raw-pixel softmax at lr 0.01 sits near 800x, ~19x its
start."""
EXPLODING_RISE = 10.0
"""exploding: a training loss ten times the lowest of an earlier epoch: the run was learning, then blew up
(an epoch's mean loss moves by tens of percent in a healthy run, never tenfold upwards)."""
CHANCE_POINTS = 2.0
"""at chance: test accuracy within 2 points of 100/C. A constant answer scores exactly 100/C on a balanced
test split (10.00% on Fashion-MNIST); a model that learnt anything is far above after an epoch (the lecture's
slowest run, softmax on x/255 at lr 1e-5, reaches 10.9% after one epoch and 12.4% after two)."""
SWING_POINTS = 5.0
"""unstable: test accuracy falling by more than 5 points below an earlier epoch's (within UNSTABLE_WINDOW).
Healthy runs move by a point or less once past the first epochs, and by 2-3 points at the highest rates that
still learn (raw pixels at lr 5e-5: 79.2% -> 76.8%); rises are not counted (a slow run climbs by more).
Whatever the training loss does: the lecture's MLP at lr 1 fell from 20.8% to 17.5% (CPU; 27.4% to 17.8% in
another measurement) while its train loss fell 10%, overshooting, not finding its way."""
SWING_SHARE = 0.25
"""unstable, too: a fall by more than a quarter of the accuracy the run had above chance level (at least
CHANCE_POINTS), for runs that learnt little: the MLP at lr 1 gave back 3.3 of its 10.8 points above 10%."""
UNSTABLE_WINDOW = 3
"""unstable: the fall is looked for among the last 3 epochs, so that a run that calmed down is ok again."""
INPUT_SCALE = 10.0
"""Inputs with a mean or standard deviation above 10 count as unnormalized: weight initializations and the
usual learning rates assume inputs of about unit scale (raw pixels: mean 72.9, std 90.0 on Fashion-MNIST)."""
NEAR_CHANCE_LOSS = 1.5
"""A run at chance whose training loss is below 1.5x ln C barely moves (its learning rate is too low, or it
is too early); above, its steps overshoot (the learning rate is too high)."""


INPUT_SCALE_STATE = "input scale"
"""The mildest state that is not ok: a note, not a fault (fmtui.ranking ranks such a run)."""


@dataclass(frozen=True)
class Inputs:
    """The pixels as the model sees them (after normalization): their mean and standard deviation."""

    norm: str
    mean: float
    std: float

    @property
    def unnormalized(self) -> bool:
        return abs(self.mean) > INPUT_SCALE or self.std > INPUT_SCALE


def assess(
    history: Sequence[EpochEnd],
    classes: int,
    lr: float,
    inputs: Callable[[], Inputs],
    diverged: str = "",
    initial_loss: float | None = None,
) -> Health:
    """The run's health after the epochs in history (oldest first); `diverged` is the engine's message for a
    run whose loss turned non-finite. `inputs` is called only when the run is not ok (measuring them takes
    a pass over the training images). `initial_loss`: the first training batch's loss, before any step (None
    when unknown, as for a resumed run: then a loss above EXPLODING_X_CHANCE is exploding, as it mostly is)."""
    chance_loss = math.log(max(classes, 2))
    start = initial_loss if initial_loss is not None and math.isfinite(initial_loss) else None
    found = ("diverged", diverged) if diverged else _finding(history, classes, chance_loss, start)
    if found is None:
        return Health()
    state, text = found
    return Health(state, f"{text}; {_advice(state, history, chance_loss, lr, inputs(), start)}")


def _finding(
    history: Sequence[EpochEnd], classes: int, chance_loss: float, start: float | None
) -> tuple[str, str] | None:
    """(state, what the numbers show) for the worst state that applies, or None when the run is ok."""
    if not history:
        return None
    last = history[-1]
    if not (math.isfinite(last.train_loss) and math.isfinite(last.test_loss)):
        return "diverged", f"the {'train' if not math.isfinite(last.train_loss) else 'test'} loss is not finite"
    high = last.train_loss > EXPLODING_X_CHANCE * chance_loss
    ratio = f"train loss {number(last.train_loss)} is {number(last.train_loss / chance_loss)}x chance level"
    if high and (start is None or last.train_loss >= start):
        return "exploding", f"{ratio} (ln {classes} = {chance_loss:.2f})" + (
            f", above its {number(start)} before the first step" if start is not None else ""
        )
    earlier = min(history[:-1], key=lambda e: e.train_loss, default=None)
    if earlier is not None and last.train_loss > EXPLODING_RISE * earlier.train_loss:
        return "exploding", (
            f"train loss rose {number(last.train_loss / earlier.train_loss)}x, "
            f"from {number(earlier.train_loss)} (epoch {earlier.epoch}) to {number(last.train_loss)} (epoch {last.epoch})"
        )
    chance = 100.0 / max(classes, 1)
    if abs(last.test_accuracy - chance) <= CHANCE_POINTS:
        text = f"test accuracy {last.test_accuracy:.2f}% is chance level (100/{classes} = {chance:.4g}%)"
        blown = _exploded(history, chance_loss, start)
        if blown is not None:
            text += f" since the train loss exploded in epoch {blown.epoch} ({number(blown.train_loss)})"
        return "at chance", text
    fall = _fall(history[-UNSTABLE_WINDOW:], chance)
    if fall is not None:
        return "unstable", fall
    if high:
        return INPUT_SCALE_STATE, (
            f"{ratio} (ln {classes} = {chance_loss:.2f}) but below its {number(start)} before the first step: "
            "the initial weights' answers on these inputs are confidently wrong, and it is coming down"
        )
    return None


def _fall(recent: Sequence[EpochEnd], chance: float) -> str | None:
    """What shows a run unstable among recent epochs: the largest fall of test accuracy below an earlier epoch's
    beyond SWING_POINTS (or SWING_SHARE of that epoch's accuracy above chance), or None."""
    worst = None
    for j in range(1, len(recent)):
        peak, after = max(recent[:j], key=lambda e: e.test_accuracy), recent[j]
        fell = peak.test_accuracy - after.test_accuracy
        limit = min(SWING_POINTS, max(CHANCE_POINTS, SWING_SHARE * (peak.test_accuracy - chance)))
        if fell > limit and (worst is None or fell > worst[0]):
            worst = (fell, peak, after)
    if worst is None:
        return None
    fell, peak, after = worst
    when = f"in epoch {after.epoch}" if after.epoch == peak.epoch + 1 else f"from epoch {peak.epoch} to {after.epoch}"
    loss = "fell" if after.train_loss < peak.train_loss else "did not fall"
    return (
        f"test accuracy fell {fell:.1f} points {when} ({peak.test_accuracy:.2f}% -> {after.test_accuracy:.2f}%) "
        f"while the train loss {loss} ({number(peak.train_loss)} -> {number(after.train_loss)})"
    )


def _advice(
    state: str, history: Sequence[EpochEnd], chance_loss: float, lr: float, inputs: Inputs, start: float | None
) -> str:
    """What to try, from the run's facts: unnormalized inputs first, then the learning rate."""
    loss = history[-1].train_loss if history else math.inf
    if state == INPUT_SCALE_STATE:
        scale = f"pixel mean {inputs.mean:.1f}, std {inputs.std:.1f}"
        return (
            f"inputs unnormalized ({scale}) -> --norm zscore starts near {chance_loss:.2f}"
            if (inputs.unnormalized)
            else f"inputs {inputs.norm} ({scale}): the model's initial weights are large for them"
        )
    barely = loss < NEAR_CHANCE_LOSS * chance_loss and _exploded(history, chance_loss, start) is None
    if state == "at chance" and barely:
        return (
            f"the train loss {number(loss)} is still near chance level ({chance_loss:.2f}): the weights barely "
            f"move at lr {lr:g} "
            f"-> try a higher --lr (fmtui lr-find), or more epochs"
        )
    if inputs.unnormalized:
        return f"inputs unnormalized (pixel mean {inputs.mean:.1f}, std {inputs.std:.1f}) -> try --norm zscore"
    return (
        f"learning rate {lr:g} too high for this input scale ({inputs.norm}: mean {inputs.mean:.2f}, std "
        f"{inputs.std:.2f}) -> try --lr {lr / 10:g} (10x lower), or fmtui lr-find"
    )


def _exploded(history: Sequence[EpochEnd], chance_loss: float, start: float | None) -> EpochEnd | None:
    """The first epoch whose training loss was above EXPLODING_X_CHANCE x chance level (and above the loss before
    the first step, when known), if any."""
    limit = max(EXPLODING_X_CHANCE * chance_loss, start if start is not None else 0.0)
    return next((e for e in history if e.train_loss > limit), None)


def number(x: float) -> str:
    """A loss or a ratio, short at any scale: 0.48, 12.3, 1879, 4.5e+17."""
    if not math.isfinite(x):
        return str(x)
    if abs(x) >= 1e5:
        return f"{x:.1e}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}" if abs(x) >= 10 else f"{x:.2f}"

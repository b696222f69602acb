"""Training health: whether a run is learning, judged from numbers it already has, with a hint from its own facts.

`assess` looks at the epochs so far (train loss, test accuracy), the number of classes and what the model's
inputs look like, and names one state (fmtui.events.HEALTH_STATES), worst first:

    diverged    a loss is not finite
    exploding   the training loss is far above chance level, or rose tenfold above an earlier epoch
    at chance   test accuracy is within a point or two of a blind guess (100 / classes)
    unstable    test accuracy fell by several points from one epoch to the next while the training loss
                did not settle
    ok          none of these

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
most samples, which only steps far too large produce. Healthy runs stay below ln C after one epoch; the
lecture's raw-pixel softmax at lr 0.01 sits near 800x."""
EXPLODING_RISE = 10.0
"""exploding: a training loss ten times the lowest of an earlier epoch: the run was learning, then blew up
(an epoch's mean loss moves by tens of percent in a healthy run, never tenfold upwards)."""
CHANCE_POINTS = 2.0
"""at chance: test accuracy within 2 points of 100/C. A constant answer scores exactly 100/C on a balanced
test split (10.00% on Fashion-MNIST); a model that learnt anything is far above after an epoch (the lecture's
slowest run, softmax on x/255 at lr 1e-5, reaches 10.9% after one epoch and 12.4% after two)."""
SWING_POINTS = 5.0
"""unstable: test accuracy falling by more than 5 points between consecutive epochs. Healthy runs move by
a point or less once past the first epochs; rises are not counted (a slow run climbs by more)."""
SETTLED_DROP = 0.1
"""unstable: the training loss "settles" when it falls by at least 10% in that epoch; a test accuracy that
drops while the training loss still falls that fast is a run finding its way, not one bouncing around."""
UNSTABLE_WINDOW = 3
"""unstable: the swing is looked for among the last 3 epochs, so that a run that calmed down is ok again."""
INPUT_SCALE = 10.0
"""Inputs with a mean or standard deviation above 10 count as unnormalized: weight initializations and the
usual learning rates assume inputs of about unit scale (raw pixels: mean 72.9, std 90.0 on Fashion-MNIST)."""
NEAR_CHANCE_LOSS = 1.5
"""A run at chance whose training loss is below 1.5x ln C barely moves (its learning rate is too low, or it
is too early); above, its steps overshoot (the learning rate is too high)."""


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
    history: Sequence[EpochEnd], classes: int, lr: float, inputs: Callable[[], Inputs], diverged: str = ""
) -> Health:
    """The run's health after the epochs in history (oldest first); `diverged` is the engine's message for a
    run whose loss turned non-finite. `inputs` is called only when the run is not ok (measuring them takes
    a pass over the training images)."""
    chance_loss = math.log(max(classes, 2))
    found = ("diverged", diverged) if diverged else _finding(history, classes, chance_loss)
    if found is None:
        return Health()
    state, text = found
    return Health(state, f"{text}; {_advice(state, history, chance_loss, lr, inputs())}")


def _finding(history: Sequence[EpochEnd], classes: int, chance_loss: float) -> tuple[str, str] | None:
    """(state, what the numbers show) for the worst state that applies, or None when the run is ok."""
    if not history:
        return None
    last = history[-1]
    if not (math.isfinite(last.train_loss) and math.isfinite(last.test_loss)):
        return "diverged", f"the {'train' if not math.isfinite(last.train_loss) else 'test'} loss is not finite"
    if last.train_loss > EXPLODING_X_CHANCE * chance_loss:
        ratio = last.train_loss / chance_loss
        return "exploding", (
            f"train loss {number(last.train_loss)} is {number(ratio)}x chance level (ln {classes} = {chance_loss:.2f})"
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
        blown = _exploded(history, chance_loss)
        if blown is not None:
            text += f" since the train loss exploded in epoch {blown.epoch} ({number(blown.train_loss)})"
        return "at chance", text
    recent = history[-UNSTABLE_WINDOW:]
    for before, after in zip(recent, recent[1:]):
        fell = before.test_accuracy - after.test_accuracy
        if fell > SWING_POINTS and after.train_loss > (1 - SETTLED_DROP) * before.train_loss:
            return "unstable", (
                f"test accuracy fell {fell:.1f} points in epoch {after.epoch} ({before.test_accuracy:.2f}% -> "
                f"{after.test_accuracy:.2f}%) while the train loss did not settle ({number(before.train_loss)} -> "
                f"{number(after.train_loss)})"
            )
    return None


def _advice(state: str, history: Sequence[EpochEnd], chance_loss: float, lr: float, inputs: Inputs) -> str:
    """What to try, from the run's facts: unnormalized inputs first, then the learning rate."""
    loss = history[-1].train_loss if history else math.inf
    if state == "at chance" and loss < NEAR_CHANCE_LOSS * chance_loss and _exploded(history, chance_loss) is None:
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


def _exploded(history: Sequence[EpochEnd], chance_loss: float) -> EpochEnd | None:
    """The first epoch whose training loss was above EXPLODING_X_CHANCE x chance level, if any."""
    return next((e for e in history if e.train_loss > EXPLODING_X_CHANCE * chance_loss), None)


def number(x: float) -> str:
    """A loss or a ratio, short at any scale: 0.48, 12.3, 1879, 4.5e+17."""
    if not math.isfinite(x):
        return str(x)
    if abs(x) >= 1e5:
        return f"{x:.1e}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}" if abs(x) >= 10 else f"{x:.2f}"

"""What a training run reports, as it goes: Started, BatchProgress*, EpochEnd per epoch, then Finished.

The engine yields these; the headless CLI, the TUI worker, the run recorder and the sweep consume them
and tell them apart by type (`match` / `isinstance`), never by name. This module imports neither torch
nor textual: the tensors an event may carry (test predictions, the trained model) are named for readers
only, so a consumer that formats or records events can be imported without the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fmtui.config import RunConfig
from fmtui.runfolder.schema import ENDED, METRIC_FIELDS, Status

if TYPE_CHECKING:
    from torch import nn

    from fmtui.results import Results
    from fmtui.weights import LearnedWeights


@dataclass(frozen=True)
class NormStats:
    """The affine map x_float = (x_uint8 - shift) / scale of a normalization, per channel."""

    norm: str
    shift: tuple[float, ...]
    scale: tuple[float, ...]

    def describe(self) -> str:
        if self.norm == "zscore":
            return f"zscore: mean {_fmt(self.shift)}, std {_fmt(self.scale)} (from the training split)"
        if self.norm == "per-image":
            return "per-image: each image minus its mean, divided by its std"
        return f"{self.norm}: (x - {_fmt(self.shift)}) / {_fmt(self.scale)}"


def _fmt(values: tuple[float, ...]) -> str:
    return "/".join(f"{v:.4g}" for v in values)


HEALTH_STATES = ("ok", "input scale", "unstable", "at chance", "exploding", "diverged")
"""What fmtui.health can say about a run, mildest first."""


@dataclass(frozen=True)
class Health:
    """How a run is going, judged from its own numbers by fmtui.health: a state and a one-line hint."""

    state: str = "ok"
    """One of HEALTH_STATES."""
    hint: str = ""
    """What the numbers show and what to try, from the run's own facts ("" when ok)."""

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    @property
    def severity(self) -> str:
        """The banner colour: error for a run that cannot be learning (diverged, exploding), warning for one that may
        not be, information for a run that learns (ok, or the note about its inputs' scale)."""
        if self.state in ("diverged", "exploding"):
            return "error"
        return "information" if self.state in ("ok", "input scale") else "warning"

    def to_dict(self) -> dict:
        return {"state": self.state, "hint": self.hint}


@dataclass
class Started:
    """Emitted once, after data and model are on the device."""

    config: RunConfig
    dataset: str
    classes: list[str]
    device: str
    model: str
    params: int
    n_train: int
    n_val: int
    n_test: int
    batches_per_epoch: int
    norm: NormStats
    threads: int
    step: str = "eager"
    """How the training step runs: "eager", or "graphed" (replayed as CUDA graphs, fmtui.graphs)."""
    step_note: str = ""
    """Why an eager step was kept where graphs were possible in principle ("" when graphed or off CUDA)."""
    resumed_from: int = 0
    """The epochs already done when this run was resumed from a checkpoint (0: a fresh run)."""
    data_files: tuple[tuple[str, int, str], ...] = ()
    """(file name, size, md5) of the data files it trains on (fmtui.data.Dataset.files): recorded in config.json,
    checked when the run is resumed."""


@dataclass
class BatchProgress:
    """Throttled progress inside an epoch; `loss` is the mean batch loss since the previous event.

    An epoch's last batch always reports, so that `losses`, the loss curve step by step, is complete.
    """

    epoch: int
    epochs: int
    batch: int
    batches: int
    loss: float
    accuracy: float
    samples_per_s: float
    elapsed: float
    eta: float
    step: int
    gpu_memory: int = 0
    losses: list[tuple[int, float]] = field(default_factory=list)
    """The training loss by step since the previous event: (step, mean loss of the `loss_every` steps up to
    that step), cut by step count, never by time, so the curve is the same on a fast and a slow machine
    (an epoch's last point may cover fewer steps). Plain floats; NaN or inf where the loss diverged."""
    loss_every: int = 1
    """Steps per point of `losses` (fixed for a run: its steps / about LOSS_POINTS of fmtui.engine)."""


@dataclass
class EpochEnd:
    """Metrics of one finished epoch, in the lecture's terms (train loss = mean batch loss); `metrics()` is
    its row of metrics.jsonl (fmtui.runfolder.schema.METRIC_FIELDS).

    `results` (the test predictions), `checkpoint` and `weights` travel with the event as it is yielded;
    the copy kept in Finished.history has none of them, so a long run holds one epoch's predictions, not one
    per epoch.
    """

    epoch: int
    epochs: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    seconds: float
    """Training time of this epoch (evaluation excluded)."""
    eval_seconds: float
    samples_per_s: float
    lr: float
    """The learning rate after the epoch's last step (what the next step would use)."""
    val_loss: float | None = None
    val_accuracy: float | None = None
    results: Results | None = field(default=None, repr=False, compare=False)
    checkpoint: Callable[[], dict[str, Any]] | None = field(default=None, repr=False, compare=False)
    """Builds the run's state at the end of this epoch, for a checkpoint that can resume it: `{"format",
    "epoch", "model", "optimizer", "scheduler", "rng", "metrics"}` (CPU tensors and plain values, see
    fmtui.runfolder.tensors). Nothing is copied unless it is called; call it while handling the event: once
    the engine goes on, the model is no longer that of this epoch."""
    weights: LearnedWeights | None = field(default=None, repr=False, compare=False)
    """What a softmax regression or an MLP has learned by the end of this epoch (fmtui.weights; None for
    other models); like `results`, only the yielded event carries it."""
    health: Health = field(default_factory=Health)
    """The run's health as of this epoch (fmtui.health), judged on the epochs so far."""

    def metrics(self) -> dict:
        """The JSON-able numbers, in the order metrics.jsonl stores them."""
        return {k: getattr(self, k) for k in METRIC_FIELDS}


@dataclass
class Finished:
    """The last event. status: completed, stopped (by the caller) or diverged (non-finite loss); a run watched
    from its folder (fmtui.watch) may also end as error or interrupted. Any other value is refused.

    `history` holds every finished epoch's metrics (without predictions); `results` are the test
    predictions of the last finished epoch (None when no epoch finished). `model` is the model as training
    left it: after a stop, mid-epoch; the last finished epoch's weights are those of its EpochEnd.checkpoint.
    """

    status: Status
    """One of ENDED (a plain string is taken and turned into its Status)."""
    message: str
    history: list[EpochEnd]
    results: Results | None
    seconds: float
    model: nn.Module = field(repr=False)
    health: Health = field(default_factory=Health)
    """The run's health at its end: `diverged` for a diverged run, else as judged on its epochs."""
    pruned_at: int | None = None
    """A stopped run that a search pruned (fmtui.session.Pruned): the epoch whose report pruned it."""

    def __post_init__(self) -> None:
        self.status = Status(self.status)
        if self.status not in ENDED:
            raise ValueError(f"a run does not finish as {self.status}")


Event = Started | BatchProgress | EpochEnd | Finished

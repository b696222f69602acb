"""Messages the training worker posts to the app: one small dataclass per engine event, plus failure.

The worker thread only ever calls `post_message` (thread-safe, never blocks training); the app's
handlers own all widget state. Event types are named for readers only (fmtui.events), so this module
imports neither torch nor the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from fmtui import lrfind
    from fmtui.events import BatchProgress, EpochEnd, Finished, Started


@dataclass
class TrainingStarted(Message):
    """Data and model are on the device; `images` is the test split (N, C, H, W) uint8 for the error browser."""

    event: Started
    run_dir: Path
    images: Any
    classes: list[str]
    writer: str = ""
    """Who trains it when another process does (a watched run: "pid 4242 on gpu-box, user ana"); "" here."""


@dataclass
class TrainingProgress(Message):
    """Throttled progress inside an epoch (the engine emits a few per second)."""

    event: BatchProgress


@dataclass
class EpochFinished(Message):
    """An epoch ended and was evaluated on the test split."""

    event: EpochEnd
    weights_note: str = ""
    """Why `event.weights` is None, when the model could have them (a watched run's model.pt not readable)."""


@dataclass
class TrainingFinished(Message):
    """The run ended: completed, stopped or diverged (see `event.status`)."""

    event: Finished
    run_dir: Path


@dataclass
class TrainingFailed(Message):
    """The run ended with an error; `message` is one line for the user."""

    message: str
    run_dir: Path | None = None


@dataclass
class ResumeRefused(Message):
    """A run folder cannot be resumed (not a run, a live writer, a stacked sweep's run, a bad checkpoint)."""

    message: str


@dataclass
class RunResultsLoaded(Message):
    """A past run's saved test predictions, loaded for the Errors pane."""

    name: str
    results: Any
    images: Any
    classes: list[str]
    weights: Any = None
    """What the saved model learned (fmtui.weights.LearnedWeights), or None."""
    weights_note: str = ""
    """Why there are no weights to draw."""


@dataclass
class RunOpenFailed(Message):
    """A past run could not be opened (a broken or foreign run folder); `message` is one line."""

    message: str


@dataclass
class LrFindProgress(Message):
    """New points of the finder's curve (throttled: a few per second)."""

    event: lrfind.Progress


@dataclass
class LrFindFinished(Message):
    """The finder ended (its loss blew up, it reached the last lr, or it was stopped), with its suggestion."""

    event: lrfind.Finished


@dataclass
class LrFindFailed(Message):
    """The finder could not run (missing data, a device error); `message` is one line."""

    message: str


@dataclass
class ExperimentProgress(Message):
    """The lecture experiment advanced (an epoch of its runs, or the end): runs to show and a status line."""

    run_dirs: list[Path]
    text: str
    done: bool
    group: str = ""
    """The runs training now, for the Train pane: "runs 3-4 of 8 (norm unit; lr 0.01/1e-05)"."""
    epoch: int = 0
    epochs: int = 0
    fraction: float = 0.0
    """How much of the whole experiment is done (its runs' epochs), 0..1."""
    eta: float | None = None
    """Seconds left, from the time so far (None: not known yet)."""

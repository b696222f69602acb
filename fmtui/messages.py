"""Messages the training worker posts to the app: one small dataclass per engine event, plus failure.

The worker thread only ever calls `post_message` (thread-safe, never blocks training); the app's
handlers own all widget state. Event types are named for readers only (fmtui.events), so this module
imports neither torch nor the engine.

A message about the run on show says where it comes from (`RunMessage.watch_id`: trained here, or which watch
followed it), so that the app drops those of a run no longer watched. Progress messages are cumulative and declare
`can_replace`: when the UI falls behind, Textual hands it only the newest of a row of them (toolong's PendingLines).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from fmtui import lrfind
    from fmtui.events import BatchProgress, EpochEnd, Finished, Started


@dataclass
class RunMessage(Message):
    """About the run the Train pane shows: one trained here, or one another process trains, followed by a watch."""

    watch_id: int = field(default=0, kw_only=True)
    """The watch that posted it (FmtuiApp drops the messages of a watch that is over); 0: the run trains here."""


@dataclass
class TrainingStarted(RunMessage):
    """Data and model are on the device; `images` is the test split (N, C, H, W) uint8 for the error browser."""

    event: Started
    run_dir: Path
    images: Any
    classes: list[str]
    writer: str = ""
    """Who trains it when another process does (a watched run: "pid 4242 on gpu-box, user ana"); "" here."""


@dataclass
class TrainingProgress(RunMessage):
    """Throttled progress inside an epoch (the engine emits a few per second), with the loss curve so far.

    Cumulative: a newer one says all that an older one of the same run says, so it may replace it unhandled."""

    event: BatchProgress
    """Where the run is now; its `losses` are the curve's points since the previous event."""
    curve: tuple[tuple[int, float], ...]
    """The training loss by step, every point since the run started (or its watch began): LossCurve builds it."""

    def can_replace(self, message: Message) -> bool:
        """A newer progress message of the same run supersedes this one (Textual then skips this one)."""
        return isinstance(message, TrainingProgress) and message.watch_id == self.watch_id


class LossCurve:
    """The step-loss points of one run so far, to post progress as cumulative TrainingProgress messages."""

    def __init__(self, watch_id: int = 0) -> None:
        self.points: tuple[tuple[int, float], ...] = ()
        self.watch_id = watch_id

    def progress(self, event: BatchProgress) -> TrainingProgress:
        """The message for one progress event: the event, and the curve up to it (a new tuple: messages share no
        list that grows)."""
        self.points += tuple(event.losses)
        return TrainingProgress(event, self.points, watch_id=self.watch_id)


@dataclass
class EpochFinished(RunMessage):
    """An epoch ended and was evaluated on the test split."""

    event: EpochEnd
    weights_note: str = ""
    """Why `event.weights` is None, when the model could have them (a watched run's model.pt not readable)."""


@dataclass
class SavedResults(RunMessage):
    """A watched run's saved predictions and weights, loaded for the Errors pane once it was shown
    (fmtui.workers.load_saved): those of `epoch`, or of a newer one."""

    epoch: int
    results: Any
    images: Any
    """The test split the predictions index into, (N, C, H, W) uint8; None when it could not be loaded."""
    classes: list[str]
    weights: Any = None
    """What the saved model learned (fmtui.weights.LearnedWeights), or None."""
    weights_note: str = ""
    """Why there are no weights to draw."""
    problem: str = ""
    """Why nothing could be loaded (no data here to draw the mistakes on), one line; "" when it could."""


@dataclass
class TrainingFinished(RunMessage):
    """The run ended: completed, stopped or diverged (see `event.status`)."""

    event: Finished
    run_dir: Path


@dataclass
class TrainingFailed(RunMessage):
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
class RunOpenFailed(RunMessage):
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

    def can_replace(self, message: Message) -> bool:
        """Each one says all there is to show (its runs so far, the time left), so a newer one supersedes one that
        is not the last (`done`, always posted last, is never skipped)."""
        return isinstance(message, ExperimentProgress) and not self.done

"""What the dashboard is doing, as one value: idle, or one job at a time (FmtuiApp.activity).

A job is a run trained here (s), a run resumed (R in Runs), the lecture experiment (L), the learning-rate finder (l),
or a run that another process trains, watched (enter or w in Runs, `fmtui watch`). The app sets its activity in one
place (FmtuiApp.become) and its watcher turns the keys, the footer and the Train pane's buttons to match; nothing
else keeps a flag. No textual here: the states and what they allow are plain data, tested without an app.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path


class Doing(Enum):
    """The kinds of job; each allows what `Activity` says."""

    IDLE = "idle"
    TRAINING = "training"
    """A run trains in this process (x stops it; quitting asks first)."""
    RESUMING = "resuming"
    """A resume was asked for and has not started yet (it may still be refused); then TRAINING."""
    EXPERIMENT = "experiment"
    """The lecture experiment's runs train here."""
    FINDING_LR = "finding lr"
    """The learning-rate finder trains here (a few hundred steps; nothing is written)."""
    WATCHING = "watching"
    """The Train pane follows a run another process trains (x asks that process to stop; u leaves it)."""


QUIT_WHAT = {
    Doing.TRAINING: "A run",
    Doing.RESUMING: "A run",
    Doing.EXPERIMENT: "The lecture experiment",
    Doing.FINDING_LR: "The learning-rate finder",
}
"""What the quit question names: "<what> is training: stop it and quit?"."""


@dataclass(frozen=True)
class Activity:
    """What the dashboard does now and what that job carries; replaced whole, never changed in place."""

    doing: Doing = Doing.IDLE
    watched: Path | None = None
    """WATCHING: the run folder followed."""
    watch_id: int = 0
    """WATCHING: this watch's number; the messages of an earlier watch carry another (fmtui.messages.RunMessage)."""
    stop_cause: str | None = None
    """A job here stopped by a signal rather than by x: the signal's name, for the run's summary ("SIGTERM")."""

    @property
    def busy(self) -> bool:
        """A job is on: Start is off, Stop on, another job must wait."""
        return self.doing is not Doing.IDLE

    @property
    def here(self) -> bool:
        """The job trains in this process: stopping cancels its worker, and quitting asks first."""
        return self.doing in QUIT_WHAT

    @property
    def what(self) -> str:
        """What the quit question calls the job here."""
        return QUIT_WHAT.get(self.doing, "")

    def stopped_by(self, signal: str) -> Activity:
        """The same job, told that a signal stops it (the first signal's name is kept)."""
        return Activity(self.doing, self.watched, self.watch_id, self.stop_cause or signal)


IDLE = Activity()


def watching(path: Path, watch_id: int) -> Activity:
    return Activity(Doing.WATCHING, Path(path), watch_id)

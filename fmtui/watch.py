"""Watching a run that another process writes: its folder, followed, turned back into engine events.

`RunFollower.poll()` looks at a run folder (a few stats; a file is read again only when it changed, and an
appended metrics.jsonl or losses.jsonl only from where the last read ended, see fmtui.runfolder.read.FileCache)
and returns what happened since the last look as the engine's own events (fmtui.runfolder.convert): Started
from config.json (its `resolved` part), an EpochEnd per new metrics.jsonl line, a BatchProgress when live.json
moved on or the step curve grew (its `losses`: losses.jsonl's new points), and Finished when summary.json says
the run ended, or `interrupted` when its writer died; a run that ended gives its last progress before its
Finished, so its whole step curve comes too. A consumer of the engine (the dashboard's worker) shows a watched
run exactly as a run it trains. A long history comes as at most MAX_REPLAY epochs, evenly spread, the last one
always among them (Finished.history too): watching a run of 100,000 epochs costs what its charts can show.
Nothing here needs torch or a UI: a watch shows a run's files at once.

Who writes a folder, and whether `x` may signal it, is fmtui.runfolder.liveness's answer (`stoppable`,
`stop_writer` and `StopRefused` are re-exported here for the dashboard).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from fmtui.errors import RunError, StopRefused
from fmtui.events import BatchProgress, Event, Finished
from fmtui.runfolder.convert import epoch_end, loss_every, loss_points, progress_event, started_event
from fmtui.runfolder.liveness import Writer, lock_state, stop_signal, stop_writer, stoppable, writer_of
from fmtui.runfolder.parse import parse_live
from fmtui.runfolder.read import FileCache, Run, RunRecord, RunsFolder, read_run
from fmtui.runfolder.schema import CONFIG, ENDED, LIVE, LOCK, LOSSES, Status

__all__ = [
    "POLL_INTERVAL",
    "RunFollower",
    "StopRefused",
    "Writer",
    "epoch_end",
    "newest_running",
    "progress_event",
    "stop_signal",
    "stop_writer",
    "stoppable",
]

POLL_INTERVAL = 0.3
"""Seconds between two looks at a watched folder (live.json changes at most twice a second)."""
MAX_REPLAY = 1000
"""The most epochs one look returns: more are thinned out evenly (the charts keep 2,000 points at most)."""
MAX_CURVE = 4000
"""The most step-curve points one look returns (the step chart keeps 4,000): a writer records about 2,000 a run
(fmtui.runfolder.schema.LOSS_RECORD_POINTS), so only a folder resumed many times, or not written by fmtui, has more."""


def newest_running(runs_dir: Path) -> RunRecord | None:
    """The newest run in runs_dir (and its sweep folders) whose writer lives; None when none does."""
    runs: list[Run] = RunsFolder(runs_dir).scan()
    return next((r for r in runs if isinstance(r, RunRecord) and r.status == Status.RUNNING), None)


def thinned(first: int, last: int, most: int = MAX_REPLAY) -> list[int]:
    """Indices first..last-1, or at most `most` of them evenly spread, the last one always among them."""
    n = last - first
    if n <= most:
        return list(range(first, last))
    return sorted({first + math.ceil((i + 1) * n / most) - 1 for i in range(most)})


class RunFollower:
    """A run folder followed from outside: `poll()` returns the engine events of what changed since the last
    look (the first look: Started and an EpochEnd for every epoch already done). After Finished, nothing more.

    Raises RunError when the folder cannot be read: "vanished while watched" when it is gone."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.files = FileCache()
        self.record: RunRecord | None = None
        self.started = self.finished = False
        self.epochs_done = 0
        """metrics.jsonl lines turned into EpochEnd so far."""
        self.points_done = 0
        """losses.jsonl lines handed out in a BatchProgress so far."""
        self.curve_problem = ""
        """Why losses.jsonl cannot be read ("" when it can, or is absent): the run is watched without its step curve."""
        self._rows: list[dict] = []
        """losses.jsonl's lines as last read."""
        self._live: dict | None = None
        self._step: tuple[int, int] | None = None

    @property
    def writer(self) -> Writer:
        return writer_of(self.path, self.record.live if self.record and self.record.live else None)

    @property
    def quiet(self) -> str:
        """Why the run's writer seems paused (it holds its lock, but its heartbeat stopped); "" when it is not."""
        writer = self.record.writer if self.record is not None else None
        return writer.why if writer is not None and writer.quiet is not None and not self.finished else ""

    def poll(self) -> list[Event]:
        if self.finished:
            return []
        record = self._read()
        if record is None:
            return []
        self.record = record
        events: list[Event] = []
        if not self.started:
            self.started = True
            events.append(started_event(record))
        if len(record.metrics) < self.epochs_done:  # rewritten shorter (a resume cut it back): start again
            self.epochs_done = 0
        rows = record.metrics
        new = [epoch_end(rows[i], record.config) for i in thinned(self.epochs_done, len(rows))]
        if new:  # summary.json holds the health judged at the newest epoch (metrics.jsonl has none)
            new[-1] = dataclasses.replace(new[-1], health=record.health)
        events += new
        self.epochs_done = len(rows)
        ended = record.status in ENDED
        progress = self._progress(record, ended)
        if progress is not None:
            events.append(progress)
        if ended:
            self.finished = True
            events.append(self._finished(record))
        return events

    def _progress(self, record: RunRecord, ended: bool) -> BatchProgress | None:
        """live.json's progress when it moved on or the step curve grew, carrying the curve's new points; for a run
        that ended, its last progress (so the rest of its curve comes too)."""
        live = record.live or (self._last_live() if ended else {})
        points = self._curve()
        if live is self._live and not points:
            return None
        self._live = live
        progress = progress_event(live, ended=ended)
        if progress is None or ((progress.epoch, progress.step) == self._step and not points):
            return None  # the points wait for a progress to carry them (live.json is written after them)
        self._step = (progress.epoch, progress.step)
        if points:
            progress.losses, progress.loss_every = loss_points(points), loss_every(self._rows)
            self.points_done = len(self._rows)
        return progress

    def _curve(self) -> list[dict]:
        """losses.jsonl's lines not yet handed out (at most MAX_CURVE, evenly spread); [] when it cannot be read."""
        try:
            self._rows = self.files.load_losses(self.path / LOSSES) or []
            self.curve_problem = ""
        except RunError as e:
            self._rows, self.curve_problem = [], str(e)
        if len(self._rows) < self.points_done:  # cut back (a resume): the chart skips the steps it has
            self.points_done = 0
        return [self._rows[i] for i in thinned(self.points_done, len(self._rows), MAX_CURVE)]

    def _last_live(self) -> dict:
        """live.json of a run that ended (its reader reads it only while a run runs): the last progress it recorded."""
        try:
            return self.files.load(self.path / LIVE, parse_live) or {}
        except RunError:
            return {}

    def _read(self) -> RunRecord | None:
        """The folder read again (only changed files); None while a new run's writer has not written its config."""
        try:
            return read_run(self.path, self.files)
        except RunError as e:
            if not self.path.is_dir():
                raise RunError(self.path, "vanished while it was watched" if self.started else e.reason) from None
            if not (self.path / CONFIG).exists() and lock_state(self.path / LOCK).held:
                return None  # the writer took the folder and is about to write config.json
            if self.started and not (self.path / CONFIG).exists():
                raise RunError(self.path, "its files vanished while it was watched") from None
            raise

    def _finished(self, record: RunRecord) -> Finished:
        """How the run ended. Its history holds at most MAX_REPLAY epochs, evenly spread, the last one always
        among them (as the replay: a run of 100,000 epochs is not held whole a second time)."""
        rows = record.metrics
        history = [epoch_end(rows[i], record.config) for i in thinned(0, len(rows))]
        seconds = record.summary.get("seconds")
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds)):
            seconds = sum(row.get("seconds") or 0.0 for row in rows)
        message = record.message or f"{record.status} after epoch {record.epochs_done} of {record.config.epochs}"
        return Finished(record.status, message, history, None, float(seconds), None, health=record.health)  # type: ignore[arg-type]

"""Watching a run that another process writes: its folder, followed, turned back into engine events.

`RunFollower.poll()` looks at a run folder (a few stats; a file is read again only when it changed, and an
appended metrics.jsonl only from where the last read ended, see fmtui.runs.FileCache) and returns what
happened since the last look as the engine's own events: Started from config.json (its `resolved` part),
an EpochEnd per new metrics.jsonl line, a BatchProgress when live.json moved on, and Finished when
summary.json says the run ended, or `interrupted` when its writer died. A consumer of the engine (the
dashboard's worker) shows a watched run exactly as a run it trains. Nothing here needs torch or a UI.

`stop_writer` asks the process writing a run to stop (SIGINT, as Ctrl+C would), after making sure that it
is that process: same host, the folder's lock held, and the pid of live.json and .lock the same.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmtui.config import RunConfig
from fmtui.events import BatchProgress, EpochEnd, Event, Finished, NormStats, Started
from fmtui.report import PROGRESS_FIELDS
from fmtui.runs import FileCache, Run, RunError, RunRecord, RunsFolder, _lock_held, parse_live, read_run

POLL_INTERVAL = 0.3
"""Seconds between two looks at a watched folder (live.json changes at most twice a second)."""
ENDED = ("completed", "stopped", "diverged", "error", "interrupted")
"""How a watched run can end (summary.json's statuses, and a reader's `interrupted`)."""


# --- who writes a run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Writer:
    """The process that writes (or wrote) a run folder, as live.json and the folder's owner tell."""

    pid: int | None
    host: str | None
    user: str | None

    @property
    def here(self) -> bool:
        """Whether it runs on this machine (only then can it be signalled)."""
        return self.host == socket.gethostname()

    def describe(self) -> str:
        """`pid 4242 on gpu-box, user ana` (what is known of it)."""
        who = f"pid {self.pid}" if self.pid else "a process"
        who += f" on {self.host}" if self.host else ""
        return who + (f", user {self.user}" if self.user else "")


def writer_of(path: Path, live: dict | None = None) -> Writer:
    """Who writes the run folder `path`: live.json's pid and host (`live` when already read), the owner's name."""
    if live is None:
        try:
            live = parse_live(path / "live.json", (path / "live.json").read_bytes())
        except (OSError, RunError):
            live = {}
    return Writer(live.get("pid"), live.get("host"), _owner(path))


def _owner(path: Path) -> str | None:
    try:
        import pwd

        return pwd.getpwuid(path.stat().st_uid).pw_name
    except (ImportError, KeyError, OSError):
        return None


class StopRefused(Exception):
    """A watched run's process cannot (or must not) be signalled from here; str(e) is one line saying why."""


def stoppable(path: Path) -> Writer:
    """The process writing the run folder `path`, when it can be asked to stop from here: on this host,
    holding the folder's lock, with the pid that both live.json and .lock name (a pid alone may have been
    reused by another process). StopRefused (one line) says why not."""
    path = Path(path)
    try:
        live = parse_live(path / "live.json", (path / "live.json").read_bytes())
    except (OSError, RunError):
        raise StopRefused(f"{path.name} has no readable live.json: no process to ask") from None
    writer = writer_of(path, live)
    if not writer.here:
        raise StopRefused(
            f"{path.name} is written by {writer.describe()}: stop it there, signals do not cross machines"
        )
    if _lock_held(path / ".lock") is not True:
        raise StopRefused(f"{path.name}: no process holds its lock, so {writer.describe()} no longer writes it")
    try:
        holder = json.loads((path / ".lock").read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        holder = None
    if holder != writer.pid:
        raise StopRefused(
            f"{path.name}: its lock and live.json name different processes; not signalling pid {writer.pid}"
        )
    return writer


def stop_writer(path: Path) -> int:
    """Ask the process writing the run folder `path` to stop after its current batch: SIGINT, as Ctrl+C
    (once `stoppable` has made sure it is that process). Returns the pid; StopRefused says why not."""
    path = Path(path)
    writer = stoppable(path)
    try:
        os.kill(writer.pid, signal.SIGINT)
    except PermissionError:
        raise StopRefused(f"cannot stop {path.name}: pid {writer.pid} belongs to another user") from None
    except ProcessLookupError:
        raise StopRefused(f"{path.name}: pid {writer.pid} has just ended") from None
    return writer.pid


def newest_running(runs_dir: Path) -> RunRecord | None:
    """The newest run in runs_dir (and its sweep folders) whose writer lives; None when none does."""
    runs: list[Run] = RunsFolder(runs_dir).scan()
    return next((r for r in runs if isinstance(r, RunRecord) and r.status == "running"), None)


# --- events from files -----------------------------------------------------------------------------------


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: Any, default: str) -> str:
    return value if isinstance(value, str) and value else default


def _floats(value: Any, default: tuple[float, ...]) -> tuple[float, ...]:
    if isinstance(value, list) and value and all(_number(v) for v in value):
        return tuple(float(v) for v in value)
    return default


def epoch_end(row: dict, cfg: RunConfig) -> EpochEnd:
    """The EpochEnd a metrics.jsonl row records (a row checked by fmtui.runs; fields it lacks are 0)."""
    epochs = _int(row.get("epochs"), cfg.epochs)
    return EpochEnd(
        row["epoch"],
        epochs if epochs >= row["epoch"] else cfg.epochs,
        row["train_loss"],
        row["train_accuracy"],
        row["test_loss"],
        row["test_accuracy"],
        row.get("seconds") or 0.0,
        row.get("eval_seconds") or 0.0,
        row.get("samples_per_s") or 0.0,
        row.get("lr") if row.get("lr") is not None else cfg.lr,
        row.get("val_loss"),
        row.get("val_accuracy"),
    )


def started_event(record: RunRecord) -> Started:
    """The Started of a run as config.json's `resolved` part recorded it (written by the recorder at Started;
    what a folder does not say is left empty, never guessed from this machine)."""
    cfg, r, live = record.config, record.resolved, record.live
    n_train = _int(r.get("n_train"))
    batches = _int(live.get("batches")) or (math.ceil(n_train / cfg.batch_size) if n_train else 0)
    classes = r.get("classes")
    return Started(
        cfg,
        _text(r.get("dataset_title"), cfg.dataset),
        [c for c in classes if isinstance(c, str)] if isinstance(classes, list) else [],
        _text(r.get("device"), _text(live.get("device"), "an unknown device")),
        _text(r.get("model_summary"), cfg.model),
        _int(r.get("params")),
        n_train,
        _int(r.get("n_val")),
        _int(r.get("n_test")),
        max(batches, 1),
        NormStats(cfg.norm, _floats(r.get("norm_shift"), (0.0,)), _floats(r.get("norm_scale"), (1.0,))),
        _int(r.get("threads"), 1),
        _text(r.get("step"), "eager"),
        _text(r.get("step_note"), ""),
    )


def progress_event(live: dict) -> BatchProgress | None:
    """live.json's progress as a BatchProgress; None before the first batch or when a field is no number.

    Its loss curve (`losses`, `loss_every`) is the engine's own when live.json carries one, else empty: the
    recorder keeps the step curve to itself, and a curve made of live.json's ~2 losses a second would depend
    on the writer's speed, which the engine's never does."""
    values = {k: live.get(k) for k in PROGRESS_FIELDS}
    if live.get("status") != "running" or not all(_number(v) for v in values.values()):
        return None
    if values["epoch"] < 1 or values["batch"] < 1 or values["batches"] < 1 or values["epochs"] < 1:
        return None
    ints = ("epoch", "epochs", "batch", "batches", "step")
    numbers = {k: int(v) if k in ints else float(v) for k, v in values.items()}
    gpu = _int(live.get("gpu_memory"))
    return BatchProgress(**numbers, gpu_memory=gpu, losses=_curve(live.get("losses")), loss_every=_every(live))


def _curve(value: Any) -> list[tuple[int, float]]:
    """A loss curve as [[step, loss], ...] (null where not finite) or [] when it is not one."""
    if not isinstance(value, list):
        return []
    pairs = [p for p in value if isinstance(p, list) and len(p) == 2]
    if len(pairs) != len(value) or not all(_int(s, -1) >= 0 and (v is None or _real(v)) for s, v in pairs):
        return []
    return [(s, math.nan if v is None else float(v)) for s, v in pairs]


def _every(live: dict) -> int:
    every = _int(live.get("loss_every"), 1)
    return every if every >= 1 else 1


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
        self._live: dict | None = None
        self._step: tuple[int, int] | None = None

    @property
    def writer(self) -> Writer:
        return writer_of(self.path, self.record.live if self.record and self.record.live else None)

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
        new = [epoch_end(row, record.config) for row in record.metrics[self.epochs_done :]]
        if new:  # summary.json holds the health judged at the newest epoch (metrics.jsonl has none)
            new[-1] = dataclasses.replace(new[-1], health=record.health)
        events += new
        self.epochs_done = len(record.metrics)
        if record.status in ENDED:
            self.finished = True
            events.append(self._finished(record))
        elif record.live is not self._live:
            self._live = record.live
            progress = progress_event(record.live)
            if progress is not None and (progress.epoch, progress.step) != self._step:
                self._step = (progress.epoch, progress.step)
                events.append(progress)
        return events

    def _read(self) -> RunRecord | None:
        """The folder read again (only changed files); None while a new run's writer has not written its config."""
        try:
            return read_run(self.path, self.files)
        except RunError as e:
            if not self.path.is_dir():
                raise RunError(self.path, "vanished while it was watched" if self.started else e.reason) from None
            if not (self.path / "config.json").exists() and _lock_held(self.path / ".lock"):
                return None  # the writer took the folder and is about to write config.json
            if self.started and not (self.path / "config.json").exists():
                raise RunError(self.path, "its files vanished while it was watched") from None
            raise

    def _finished(self, record: RunRecord) -> Finished:
        history = [epoch_end(row, record.config) for row in record.metrics]
        seconds = record.summary.get("seconds")
        if not _number(seconds):
            seconds = sum(e.seconds for e in history)
        message = record.message or f"{record.status} after epoch {record.epochs_done} of {record.config.epochs}"
        return Finished(record.status, message, history, None, float(seconds), None, health=record.health)  # type: ignore[arg-type]

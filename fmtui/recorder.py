"""Writing run folders: the one recorder that turns engine events into a live run folder (fmtui.resume
takes one back to go on training it).

The folder is the live record of a run, for any reader in any process (fmtui.runfolder defines its format
and reads it back):
`.lock` is flock'ed by the writer for its whole life; config.json at the start; at every epoch's end
checkpoint.pt, model.pt, predictions.pt and mislabeled.csv, then one line appended to metrics.jsonl (never
rewritten), then metrics.csv and summary.json; live.json holds the latest progress and a heartbeat. Every
file is replaced atomically, and never written through a symbolic link (fmtui.runfolder.files), so a run
stopped, killed or out of disk keeps the last complete epoch whole. losses.jsonl records the training loss step
by step (the engine's BatchProgress.losses, merged down to a bounded number of points, StepCurve), appended
each time live.json is written, so a watcher in another process draws the step curve too. While a run trains,
a thread appends a sample of the machine (CPU, memory, each GPU) to its system.jsonl every few seconds
(fmtui.sysmetrics).

The files of an epoch are written by a thread of the writer, in that order, while training goes on: the
training thread only copies what changes (the checkpoint) into bytes. The same thread beats live.json's
heartbeat during long evaluations. Torch is imported only where a run has tensors to save or load.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmtui import __version__
from fmtui.config import RunConfig
from fmtui.errors import RunError, RunFolderError, error_message
from fmtui.events import BatchProgress, EpochEnd, Event, Finished, Health, Started
from fmtui.runfolder import files as runfiles
from fmtui.runfolder.files import atomic_write
from fmtui.runfolder.schema import (
    CHECKPOINT,
    CONFIG,
    DATA_FILES,
    HEARTBEAT,
    LIVE,
    LIVE_INTERVAL,
    LOSS_RECORD_POINTS,
    LOSSES,
    METRICS,
    METRICS_CSV,
    MISLABELED,
    MODEL,
    PREDICTIONS,
    PROGRESS_FIELDS,
    SUMMARY,
    Status,
)
from fmtui.runfolder.writer import FolderLock, metrics_csv, now_iso, summarize, write_error
from fmtui.sysmetrics import SystemRecorder

if TYPE_CHECKING:
    from fmtui.resume import Resume

PENDING_EPOCHS = 3
"""Epochs whose files may wait for the disk before training waits for them (bounds the memory)."""


def provenance() -> dict[str, Any]:
    """How this process runs: the versions of Python, torch, torchvision and fmtui, and the host."""
    from importlib import metadata

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    torch = sys.modules.get("torch")
    return {
        "python": sys.version.split()[0],
        "torch": getattr(torch, "__version__", None) or version("torch"),
        "torchvision": version("torchvision"),
        "fmtui": __version__,
        "host": socket.gethostname(),
    }


def _torch_bytes(obj: Any) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def mislabeled_csv(res: Any, classes: list[str]) -> str:
    """The wrong test predictions, most confident first (csv module: class names may hold commas, quotes)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["index", "true", "predicted", "confidence", "true_name", "predicted_name"])
    labels, preds, conf = res.labels.tolist(), res.preds.tolist(), res.confidence.tolist()  # not a tensor per cell
    for i in res.mislabeled():
        t, p = labels[i], preds[i]
        writer.writerow([i, t, p, f"{conf[i]:.4f}", _name(classes, t), _name(classes, p)])
    return out.getvalue()


def _name(classes: list[str], c: int) -> str | int:
    return classes[c] if c < len(classes) else c


class StepCurve:
    """The step curve as losses.jsonl records it: the engine's (step, mean loss) points, merged where they come
    closer than `gap` steps, so that a run records at most about LOSS_RECORD_POINTS lines however long it is (the
    engine sends about 1,000 points a run, plus one at each epoch's end: a run of 100,000 epochs would send
    100,000). A merged point is the mean of its steps' losses (weighted by the steps each point covers)."""

    def __init__(self, total_steps: int, start: int = 0) -> None:
        self.gap = max(1, math.ceil(total_steps / LOSS_RECORD_POINTS))
        """The fewest steps one recorded line covers (the last one of a run may cover fewer)."""
        self.start = self.last = start
        """The step of the last line recorded (the run's first step - 1 before any), and of the last point taken."""
        self.loss_steps = 0.0
        """Sum of loss x steps of the points taken since the last line."""
        self.lines: list[str] = []
        """Lines made and not yet taken."""

    def add(self, points: list[tuple[int, float]]) -> None:
        """Take the points of one BatchProgress (steps counting up; a step not past the last one is skipped)."""
        for step, loss in points:
            if step <= self.last:
                continue
            self.loss_steps += loss * (step - self.last)
            self.last = step
            if self.last - self.start >= self.gap:
                self._line()

    def take(self, end: bool = False) -> str:
        """The lines to append now; at the run's end (`end`), the last point too, however few steps it covers."""
        if end and self.last > self.start:
            self._line()
        text, self.lines = "".join(self.lines), []
        return text

    def _line(self) -> None:
        steps = self.last - self.start
        mean = self.loss_steps / steps
        loss = float(f"{mean:.6g}") if math.isfinite(mean) else None
        self.lines.append(json.dumps({"step": self.last, "loss": loss, "steps": steps}) + "\n")
        self.start, self.loss_steps = self.last, 0.0


def cut_losses(file: Path, last_step: int) -> None:
    """Cut losses.jsonl after the last line whose step is at most last_step (a resumed run goes on from there),
    and at the first line that is no point (a torn or foreign line). None there: nothing to do."""
    try:
        data = runfiles.read_bytes(file)
    except RunError:
        return
    keep = 0
    for line in data.splitlines(keepends=True):
        try:
            step = json.loads(line).get("step")
        except (ValueError, AttributeError):
            break
        if not line.endswith(b"\n") or not isinstance(step, int) or step > last_step:
            break
        keep += len(line)
    if keep < len(data):
        try:
            runfiles.truncate(file, keep)
        except OSError as e:
            raise write_error(file, e) from None


# --- the recorder --------------------------------------------------------------------------------


class RunRecorder:
    """Events in, run folders out: the one place that makes a run's folder, keeps it up to date and
    records how the run ended, for the headless CLI, the TUI worker and sweeps alike.

    A run's folder is made by `make_folder(config)` when its Started event arrives (data and model
    are ready, so the run really begins; bad input leaves no folder behind); with `resume`, run 0 goes
    on in the resumed folder. Several runs trained together (a stacked sweep group) are told apart by
    their index; `make_folder` may be a list, run i's folder made by its item i. `resolved[i]` holds facts
    of run i that its caller adds to config.json's resolved part (a search's trial: `study`), written with
    it at the start. Used as a context manager, an exception that ends training is recorded as the error of
    every run that had not finished, and passes on; every writer is closed (its lock released) on exit.
    """

    def __init__(
        self,
        make_folder: Callable[[RunConfig], Path] | Sequence[Callable[[RunConfig], Path]],
        resume: Resume | None = None,
        resolved: Sequence[dict[str, Any]] = (),
    ):
        self.make_folder = make_folder
        self.resume = resume
        self.resolved = resolved
        self.writers: dict[int, RunWriter] = {}
        self.open: set[int] = set()
        """Runs started and not finished."""
        self.system = SystemRecorder()
        """Samples the machine into the folders of the runs started and not finished (fmtui.sysmetrics)."""

    def path(self, run: int = 0) -> Path | None:
        """The run's folder, once it has started."""
        writer = self.writers.get(run)
        return writer.path if writer else None

    def handle(self, event: Event, run: int = 0) -> Path | None:
        """Record one event of a run; return the run's folder (None before it started).

        Raises RunFolderError when the folder cannot be written (`began` False at Started: nothing lost)."""
        if isinstance(event, Started):
            self.writers[run] = self._start(event, run)
            self.open.add(run)
            self.system.add(self.writers[run].path)
            return self.path(run)
        writer = self.writers.get(run)
        if writer is not None:
            if isinstance(event, Finished):
                self.system.remove(writer.path)  # its samples end before its end is written
            writer.handle(event)
            if isinstance(event, Finished):
                self.open.discard(run)
                if not self.open:
                    self.system.stop()
        return self.path(run)

    def _start(self, event: Started, run: int) -> RunWriter:
        resume = self.resume if run == 0 else None
        if resume is not None:
            path = resume.path
        else:
            make = self.make_folder if callable(self.make_folder) else self.make_folder[run]
            try:
                path = make(event.config)
            except OSError as e:
                raise write_error(Path(e.filename or "the runs folder"), e, began=False, doing="creating") from None
        writer = RunWriter(path, event.config, resume, self.resolved[run] if run < len(self.resolved) else None)
        try:
            writer.handle(event)
        except BaseException:
            writer.close()
            raise
        return writer

    def flush(self) -> None:
        """Wait until every file of the events so far is on disk (tests and readers in this process)."""
        for writer in self.writers.values():
            writer.flush()

    def fail(self, message: str) -> None:
        """Record an error that ended the runs still open (the metrics so far stay)."""
        self.system.stop()
        for run in sorted(self.open):
            self.writers[run].fail(message)
        self.open.clear()

    def close(self) -> None:
        self.system.stop()
        for writer in self.writers.values():
            writer.close()

    def __enter__(self) -> RunRecorder:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        try:
            if isinstance(exc, RunFolderError):
                self.fail(exc.short)
            elif isinstance(exc, (Exception, KeyboardInterrupt)):  # not GeneratorExit: a consumer stopped listening
                self.fail(error_message(exc))
        finally:
            self.close()


class RunWriter:
    """Feed it every engine event of one run; it keeps the run folder up to date after each one.

    Started is written at once (a folder that cannot be written fails before training begins); the
    files of an epoch, and the end of the run, go through a writer thread in order (`flush` waits for
    them). The first write that fails stops the writing and is raised at the next event.
    """

    def __init__(self, path: Path, cfg: RunConfig, resume: Resume | None = None, resolved: dict | None = None):
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(self.path, e, began=False, doing="creating") from None
        self.lock = resume.lock if resume is not None else FolderLock(self.path)
        self.config, self.resume = cfg, resume
        self.info: dict[str, Any] = {}
        self.extra = dict(resolved or {})
        """The caller's own facts for config.json's resolved part (RunRecorder's `resolved`)."""
        self.rows: list[dict] = list(resume.checkpoint["metrics"]) if resume else []
        """Metrics rows of the epochs handed to the writer thread."""
        self.saved: list[dict] = list(self.rows)
        """Metrics rows whose line is in metrics.jsonl (what summary.json reports)."""
        started = resume.summary.get("started_at") if resume else None
        self.started_at = started if isinstance(started, str) else now_iso()
        earlier = resume.summary.get("resumed_from", []) if resume else []
        self.resumed_from = [*(earlier if isinstance(earlier, list) else []), resume.epoch] if resume else []
        self.model_saved_for = 0
        """The epoch whose weights model.pt holds (0: none yet)."""
        self.live: dict[str, Any] = {}
        self.curve = StepCurve(0)
        """The step curve's points not yet in losses.jsonl (made anew at Started); guarded by live_lock."""
        self.live_lock = threading.Lock()
        self.live_dirty, self.live_written = False, 0.0
        self.thread: _WriterThread | None = None
        self.error: RunFolderError | None = None
        self.health = Health()
        """The health of the latest epoch or end written (fmtui.health), recorded in summary.json."""

    # -- events (the training thread) --

    def handle(self, event: Event) -> None:
        self._raise_error()
        match event:
            case Started():
                self._started(event)
            case BatchProgress():
                with self.live_lock:
                    self.live.update({k: getattr(event, k) for k in PROGRESS_FIELDS}, gpu_memory=event.gpu_memory)
                    self.curve.add(event.losses)
                    self.live_dirty = True
            case EpochEnd():
                self._epoch(event)
            case Finished():
                self._submit(lambda: self._finish(event))
                self._stop_thread()
                self._raise_error()
                self.close()

    def _started(self, event: Started) -> None:
        self.info = {
            "dataset_title": event.dataset,
            "classes": event.classes,
            "device": event.device,
            "model_summary": event.model,
            "params": event.params,
            "n_train": event.n_train,
            "n_val": event.n_val,
            "n_test": event.n_test,
            "norm_shift": list(event.norm.shift),
            "norm_scale": list(event.norm.scale),
            "threads": event.threads,
            "step": event.step,
            "step_note": event.step_note,
            DATA_FILES: [{"name": n, "size": size, "md5": md5} for n, size, md5 in event.data_files],
            "provenance": provenance(),
        }
        clash = sorted(self.info.keys() & self.extra.keys())
        if clash:
            raise ValueError(f"resolved facts the recorder writes itself: {', '.join(clash)}")
        self.info.update(self.extra)
        resume, epochs = self.resume, event.config.epochs
        first = (resume.epoch if resume else 0) * event.batches_per_epoch
        self.curve = StepCurve(event.batches_per_epoch * epochs, start=first)
        self.live = dict.fromkeys(PROGRESS_FIELDS)
        self.live.update(
            epoch=resume.epoch if resume else 0,
            epochs=epochs,
            batch=0,
            batches=event.batches_per_epoch,
            step=first,
            device=event.device,
            gpu_memory=0,
        )
        try:
            if resume is not None:
                self._reopen(resume, first)
            config = {**self.config.to_dict(), "resolved": self.info}
            if resume is not None:
                earlier = resume.resolved.get("provenance")
                config["resolved"].update(provenance=earlier or self.info["provenance"], resumed=self._resumes())
            self._write(CONFIG, json.dumps(config, indent=2))
            self._write_summary(Status.RUNNING, f"resumed after epoch {resume.epoch}" if resume else "training")
            self._write_live(Status.RUNNING)
        except RunFolderError as e:
            e.began = False
            raise
        self.thread = _WriterThread(self)
        self.thread.start()

    def _resumes(self) -> list[dict]:
        earlier = self.resume.resolved.get("resumed") if self.resume else None
        mine = {"after_epoch": self.resume.epoch, "at": now_iso(), **provenance()} if self.resume else {}
        return [*(earlier if isinstance(earlier, list) else []), mine]

    def _reopen(self, resume: Resume, step: int) -> None:
        """Make the folder say the checkpoint's epoch again: metrics.jsonl holds exactly its rows (cut after
        them, or rewritten when a line is missing: death between checkpoint and metrics), model.pt its weights,
        losses.jsonl the step curve up to its last step (`step`)."""
        cut_losses(self.path / LOSSES, step)
        rows = resume.checkpoint["metrics"]
        file = self.path / METRICS
        try:
            text = runfiles.read_bytes(file)
        except RunError:  # none, or unreadable: written anew below
            text = b""
        lines = text.splitlines(keepends=True)
        try:
            prefix = [json.loads(line) for line in lines[: len(rows)]]
        except ValueError:
            prefix = []
        if prefix == rows and all(line.endswith(b"\n") for line in lines[: len(rows)]):
            try:
                runfiles.truncate(file, sum(len(line) for line in lines[: len(rows)]))
            except OSError as e:
                raise write_error(file, e) from None
        else:
            self._write(METRICS, "".join(json.dumps(r) + "\n" for r in rows))
        self._write(METRICS_CSV, metrics_csv(rows))
        self._write(MODEL, _torch_bytes(resume.checkpoint["model"]))
        self.model_saved_for = resume.epoch

    def _epoch(self, event: EpochEnd) -> None:
        """Copy the checkpoint now (training goes on right after), and hand the epoch's files to the thread."""
        checkpoint = event.checkpoint() if event.checkpoint is not None else None
        files: list[tuple[str, Any]] = []
        if checkpoint is not None:
            files = [(CHECKPOINT, _torch_bytes(checkpoint)), (MODEL, _torch_bytes(checkpoint["model"]))]
        row, rows = event.metrics(), [*self.rows, event.metrics()]
        self.rows = rows
        self._submit(lambda: self._write_epoch(event, files, row, rows))

    def flush(self) -> None:
        """Wait until the files of every event so far are written; raise the error if one failed."""
        if self.thread is not None and self.thread.is_alive():
            done = threading.Event()
            self.thread.jobs.put((done.set, False))
            done.wait()
        self._raise_error()

    def fail(self, message: str) -> None:
        """Record an error that ended the run: the files so far stay, summary.json says `error` and why.

        When even that cannot be written, the folder keeps its last complete epoch and its writer's lock
        is released, which readers take for an interrupted run."""
        self._stop_thread()
        with contextlib.suppress(RunFolderError):
            self._write_summary(Status.ERROR, message)
            self._write_live(Status.ERROR)

    def close(self) -> None:
        """Stop the writer thread (after its pending files) and release the lock."""
        self._stop_thread()
        self.lock.close()

    def _submit(self, job: Callable[[], None]) -> None:
        if self.thread is None:  # never started (a consumer handing events in by hand): write now
            job()
            self._raise_error()
            return
        self.thread.room.acquire()
        self.thread.jobs.put((job, True))

    def _stop_thread(self) -> None:
        thread, self.thread = self.thread, None
        if thread is not None and thread.is_alive():
            thread.jobs.put((None, False))
            thread.join()

    def _raise_error(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    # -- files (the writer thread, or the training thread before it starts and after it ends) --

    def _write_epoch(self, event: EpochEnd, files: list[tuple[str, Any]], row: dict, rows: list[dict]) -> None:
        """One epoch's files in the protocol's order: what metrics.jsonl names is always saved."""
        for name, data in files:
            self._write(name, data)
        if files:
            self.model_saved_for = event.epoch
        if event.results is not None:
            self._write_predictions(event.results)
        self._append(METRICS, json.dumps(row) + "\n")
        self.saved = rows
        self._write(METRICS_CSV, metrics_csv(rows))
        self.health = event.health
        self._write_summary(Status.RUNNING, f"epoch {event.epoch}/{event.epochs}")
        with self.live_lock:
            self.live.update(epoch=event.epoch, batch=self.live.get("batches"))
        self._write_live(Status.RUNNING)
        runfiles.sync_folder(self.path)

    def _write_predictions(self, res: Any) -> None:
        probs, labels = res.probs.contiguous().clone(), res.labels.contiguous().clone()  # own storage, not a view's
        self._write(PREDICTIONS, _torch_bytes({"probs": probs, "labels": labels}))
        self._write(MISLABELED, mislabeled_csv(res, self.info.get("classes", [])))

    def _finish(self, event: Finished) -> None:
        """The end: model.pt stays that of the last complete epoch (never a stopped run's mid-epoch weights);
        a caller without checkpoints (a test's events) gets the final model of a run that was not stopped."""
        done = len(event.history)
        if self.model_saved_for < done and event.status != Status.STOPPED and event.model is not None:
            state = {k: v.detach().cpu() for k, v in event.model.state_dict().items()}
            self._write(MODEL, _torch_bytes(state))
            if event.results is not None:
                self._write_predictions(event.results)
        self.health = event.health
        self._write_summary(event.status, event.message, event.seconds, event.pruned_at)
        self._write_live(event.status)
        runfiles.sync_folder(self.path)

    def _write(self, name: str, data: bytes | str, sync: bool = True) -> None:
        try:
            atomic_write(self.path / name, data, sync=sync)
        except OSError as e:
            raise write_error(self.path / name, e) from None

    def _append(self, name: str, text: str, sync: bool = True) -> None:
        """Append whole lines and flush them to the disk (never through a link; a failed append is cut off)."""
        try:
            runfiles.append_lines(self.path / name, text, sync=sync)
        except OSError as e:
            raise write_error(self.path / name, e) from None

    def _write_summary(
        self, status: Status, message: str, seconds: float | None = None, pruned_at: int | None = None
    ) -> None:
        summary = summarize(self.saved)
        summary.update(
            status=status,
            message=message,
            seconds=seconds if seconds is not None else sum(r["seconds"] for r in self.saved),
            health=self.health.to_dict(),
            started_at=self.started_at,
            updated_at=now_iso(),
        )
        if self.resumed_from:
            summary["resumed_from"] = self.resumed_from
        if pruned_at is not None:
            summary["pruned_at"] = pruned_at
        self._write(SUMMARY, json.dumps(summary, indent=2))

    def _write_live(self, status: Status) -> None:
        """live.json: the latest progress, a heartbeat and who writes (not synced: it is replaced soon); the step
        curve's new lines are appended to losses.jsonl first (not synced either: a view, as live.json is), all of
        them once the run has ended."""
        with self.live_lock:
            live = {"status": status, **self.live}
            curve = self.curve.take(end=status != Status.RUNNING)
            self.live_dirty = False
        if curve:
            self._append(LOSSES, curve, sync=False)
        now = time.time()
        live.update(heartbeat=now, pid=os.getpid(), host=socket.gethostname(), updated_at=now_iso())
        self._write(LIVE, json.dumps(live), sync=False)
        self.live_written = time.monotonic()

    def beat(self) -> None:
        """live.json again if progress came LIVE_INTERVAL ago or more, or nothing came for HEARTBEAT."""
        since = time.monotonic() - self.live_written
        if (self.live_dirty and since >= LIVE_INTERVAL) or since >= HEARTBEAT:
            self._write_live(Status.RUNNING)


class _WriterThread(threading.Thread):
    """Runs a writer's jobs in order and beats its heartbeat; stops at None. A daemon: a process that
    exits does not wait for it (the files of complete epochs are written by then, see RunWriter.close)."""

    def __init__(self, writer: RunWriter):
        super().__init__(name=f"fmtui-writer-{writer.path.name}", daemon=True)
        self.writer = writer
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.room = threading.BoundedSemaphore(PENDING_EPOCHS)
        """Jobs that may wait; the training thread waits for room (a slow disk holds training back)."""

    def run(self) -> None:
        writer = self.writer
        while True:
            try:
                job, counted = self.jobs.get(timeout=LIVE_INTERVAL)
            except queue.Empty:
                job, counted = _quiet, False
            if job is None:
                return
            try:
                if not counted or writer.error is None:  # after a failure, only flush marks (and no files)
                    job()
                if writer.error is None:
                    writer.beat()
            except RunFolderError as e:
                writer.error = e
            except Exception as e:  # never a silent death: the training thread raises it at the next event
                writer.error = RunFolderError(error_message(e), error_message(e))
            finally:
                if counted:
                    self.room.release()


def _quiet() -> None:
    """The job of a quiet moment: nothing but the heartbeat that follows every job."""

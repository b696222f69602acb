"""Run folders as TensorBoard event files, one sub-folder per run, written as the runs grow: each run's
epochs as scalars, its options as text, and its options and final and best metrics for TensorBoard's
HParams view (a sweep compared in one table). They open in TensorBoard, in W&B (`wandb sync`) and in Aim
(`aim convert tensorboard`).

The files are written with tensorboardX (small, no TensorFlow), imported only here.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from fmtui.config import OPTIONS, format_value
from fmtui.errors import ExportError
from fmtui.install_hint import missing_package
from fmtui.runfolder.read import RunRecord
from fmtui.runfolder.writer import summarize
from fmtui.text import plural

SCALARS = {
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "test_loss": "loss/test",
    "train_accuracy": "accuracy/train",
    "val_accuracy": "accuracy/val",
    "test_accuracy": "accuracy/test",
    "lr": "lr",
    "seconds": "seconds/train",
    "eval_seconds": "seconds/eval",
    "samples_per_s": "samples_per_s",
}
"""metrics.jsonl's key -> the scalar's tag (TensorBoard groups charts by the part before '/'); step = epoch."""

BEST = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
"""The best epoch's metrics (summary.json's `best`: by validation accuracy, else test accuracy), written as
`best/<tag>` at step = that epoch, and `best/epoch`: the HParams view shows each tag's last value."""

SESSION_STATUS = {"completed": "STATUS_SUCCESS", "diverged": "STATUS_FAILURE", "error": "STATUS_FAILURE"}
"""summary.json's status -> the HParams session's; a run stopped or interrupted is STATUS_UNKNOWN."""

REQUIREMENT = "tensorboardX"


class TensorBoardExport:
    """Runs exported into dest, one sub-folder and event file each; `update` writes what their folders added
    since the last call (new runs, new epochs, a new best, the end), so a run can be followed as it trains."""

    def __init__(self, dest: Path) -> None:
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            raise ExportError(missing_package(REQUIREMENT, "--tensorboard")) from None
        self.dest = Path(dest)
        self.runs: dict[str, RunEvents] = {}

    def update(self, records: dict[str, RunRecord]) -> list[str]:
        """Write what is new in each run (name -> its record now); one line per run that changed.
        New runs' folders are checked first, all of them, then made: ExportError when one is taken."""
        new = [self.dest / name for name in records if name not in self.runs]
        for folder in new:
            check_free(folder)
        for folder in new:
            make_folder(folder)
        lines = []
        for name, record in records.items():
            events = self.runs.get(name)
            if events is None:
                events = self.runs[name] = RunEvents(self.dest / name, record)
                events.update(record)
                lines.append(f"{record.path} -> {events.folder} ({plural(events.epochs, 'epoch')})")
                continue
            before, was_ended = events.epochs, events.ended
            events.update(record)
            if events.ended and not was_ended:
                lines.append(f"{events.folder}: {record.status} after {plural(events.epochs, 'epoch')}")
            elif events.epochs != before:
                lines.append(f"{events.folder}: epoch {events.epochs} of {record.config.epochs}")
        return lines

    def close(self) -> None:
        for events in self.runs.values():
            events.close()


def check_free(folder: Path) -> None:
    """A run's event file goes into a new or empty folder; ExportError when it is taken."""
    if folder.is_symlink():
        raise ExportError(f"{folder} is a symbolic link; choose a new --tensorboard folder")
    try:
        taken = folder.exists() and (not folder.is_dir() or any(folder.iterdir()))
    except OSError as e:
        raise ExportError(f"cannot read the --tensorboard folder {folder} ({e.strerror or type(e).__name__})") from None
    if taken:
        raise ExportError(f"{folder} is not empty; choose a new --tensorboard folder")


def make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot make the --tensorboard folder {folder} ({e.strerror or type(e).__name__})") from None


class EventFile:
    """An event file written as it is told (tensorboardX's own writer, without SummaryWriter's thread and
    queue, whose flush does not wait for what is queued): each update is on disk when `flush` returns."""

    def __init__(self, folder: Path) -> None:
        from tensorboardX.event_file_writer import EventsWriter

        self.writer = EventsWriter(str(folder / "events"))  # events.out.tfevents.<time>.<host>

    def add(self, summary: Any, step: int | None, walltime: float | None) -> None:
        from tensorboardX.proto.event_pb2 import Event

        event = Event(summary=summary, wall_time=time.time() if walltime is None else walltime)
        if step is not None:
            event.step = step
        self.writer.write_event(event)

    def add_scalar(self, tag: str, value: float, step: int, walltime: float | None) -> None:
        from tensorboardX.summary import scalar

        self.add(scalar(tag, value), step, walltime)

    def add_text(self, tag: str, text: str, step: int, walltime: float | None) -> None:
        from tensorboardX.summary import text as text_summary

        self.add(text_summary(tag, text), step, walltime)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class RunEvents:
    """One run's event file, appended to as its folder grows and flushed after each update, so TensorBoard
    (which re-reads event files every few seconds) shows each epoch soon after the run wrote it."""

    def __init__(self, folder: Path, record: RunRecord) -> None:
        self.folder = folder
        self.writer = EventFile(folder)
        self.epochs = 0
        """metrics.jsonl lines written as scalars."""
        self.best_epoch: int | None = None
        self.ended = False
        self._seen: tuple | None = None
        """The record's metrics and summary (the objects) and its status at the last update."""
        start = _walltimes(record)[0]
        self.writer.add_text("config", _config_text(record), 0, start)
        self.writer.add(session_start(record, start), None, start)

    def update(self, record: RunRecord) -> None:
        """Write what the record adds; nothing (not even a flush, which syncs the file) when it is unchanged:
        the run readers hand back the very same parsed files while a folder does not change."""
        seen = (record.metrics, record.summary, record.status)
        if self._seen and all(a is b for a, b in zip(seen[:2], self._seen[:2])) and seen[2] == self._seen[2]:
            return
        self._seen = seen
        rows = record.metrics
        if len(rows) < self.epochs:  # a resume cut the metrics back: write again (TensorBoard drops later steps)
            self.epochs, self.best_epoch = 0, None
        walls = _walltimes(record)
        for row, wall in zip(rows[self.epochs :], walls[self.epochs + 1 :]):
            for key, tag in SCALARS.items():
                if row.get(key) is not None:
                    self.writer.add_scalar(tag, row[key], row["epoch"], wall)
        self.epochs = len(rows)
        self._best(rows, walls)
        if record.status != "running" and not self.ended:
            self.ended = True
            self.writer.add(session_end(record.status, walls[-1]), None, walls[-1])
        self.writer.flush()

    def _best(self, rows: list[dict], walls: list[float | None]) -> None:
        """The best epoch's metrics, written again when a later epoch becomes the best."""
        summary = summarize(rows)
        epoch = summary.get("best_epoch")
        if epoch is None or epoch == self.best_epoch:
            return
        self.best_epoch, wall = epoch, walls[epoch] if epoch < len(walls) else None
        for key in BEST:
            if summary["best"].get(key) is not None:
                self.writer.add_scalar(f"best/{SCALARS[key]}", summary["best"][key], epoch, wall)
        self.writer.add_scalar("best/epoch", epoch, epoch, wall)

    def close(self) -> None:
        self.writer.close()


def hparams(record: RunRecord) -> dict[str, Any]:
    """The run's options as HParams values: numbers, yes/no as booleans, text; a list as typed (512,256)."""
    values = {}
    for name in OPTIONS:
        value = getattr(record.config, name)
        if isinstance(value, (bool, int, float, str)):
            values[name] = value
        elif value is not None:
            values[name] = format_value(value)
    return values


def session_start(record: RunRecord, start: float | None) -> Any:
    """The HParams plugin's session start: the run's options (TensorBoard builds its table from these)."""
    from tensorboardX.proto.plugin_hparams_pb2 import SessionStartInfo

    info = SessionStartInfo(start_time_secs=start or 0.0)
    for name, value in hparams(record).items():
        if isinstance(value, bool):
            info.hparams[name].bool_value = value
        elif isinstance(value, (int, float)):
            info.hparams[name].number_value = value
        else:
            info.hparams[name].string_value = value
    return _plugin_summary("_hparams_/session_start_info", session_start_info=info)


def session_end(status: str, end: float | None) -> Any:
    from tensorboardX.proto.api_pb2 import Status
    from tensorboardX.proto.plugin_hparams_pb2 import SessionEndInfo

    info = SessionEndInfo(status=Status.Value(SESSION_STATUS.get(status, "STATUS_UNKNOWN")), end_time_secs=end or 0.0)
    return _plugin_summary("_hparams_/session_end_info", session_end_info=info)


def _plugin_summary(tag: str, **content: Any) -> Any:
    """A Summary with no value, only the HParams plugin's data (as TensorBoard's own hparams API writes it)."""
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

    data = HParamsPluginData(version=0, **content).SerializeToString()
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="hparams", content=data))
    return Summary(value=[Summary.Value(tag=tag, metadata=metadata)])


def _why(e: OSError) -> str:
    return e.strerror or type(e).__name__


def _config_text(record: RunRecord) -> str:
    """The run's options and status as a Markdown code block (TensorBoard's Text tab)."""
    text = json.dumps({**record.config.to_dict(), "status": record.status}, indent=2)
    return "\n".join("    " + line for line in text.splitlines())


def _walltimes(record: RunRecord) -> list[float | None]:
    """When the run started, then when each epoch ended (start + training and evaluation time so far)."""
    started = record.summary.get("started_at")
    try:
        start = datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError):  # no summary, or Python 3.10 and an offset without a colon
        try:
            start = datetime.strptime(started, "%Y-%m-%dT%H:%M:%S%z").timestamp()
        except (TypeError, ValueError):
            return [None] * (len(record.metrics) + 1)
    times, t = [start], start
    for row in record.metrics:
        t += (row.get("seconds") or 0.0) + (row.get("eval_seconds") or 0.0)
        times.append(t)
    return times

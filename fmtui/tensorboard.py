"""Run folders as TensorBoard event files, one sub-folder per run: they open in TensorBoard, in W&B
(`wandb sync DIR`, or `sync_tensorboard=True`) and in Aim (`aim convert tensorboard --logdir DIR`).

The files are written with tensorboardX (the `tensorboard` extra: small, no TensorFlow), imported only here.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from fmtui.errors import ExportError
from fmtui.runfolder.read import RunRecord
from fmtui.text import safe_text

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

INSTALL_HINT = "--tensorboard needs the tensorboard extra: pip install 'fmtui[tensorboard]' (it adds tensorboardX)"


def export_tensorboard(runs: dict[str, RunRecord], dest: Path) -> list[Path]:
    """Write each run's epoch metrics under dest/<name>; return the folders. Checks every target first."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ExportError(INSTALL_HINT) from None
    folders = {name: dest / name for name in runs}
    for folder in folders.values():
        try:
            if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
                raise ExportError(f"{safe_text(str(folder))} is not empty; choose a new --tensorboard folder")
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # /proc/x, a file's sub-folder, no permission, a full disk: one line
            raise ExportError(
                f"--tensorboard {safe_text(str(dest))}: cannot make {safe_text(str(folder))} ({_why(e)})"
            ) from None
    for name, record in runs.items():
        try:
            with SummaryWriter(str(folders[name])) as writer:
                writer.add_text("config", _config_text(record), 0, walltime=_walltimes(record)[0])
                for row, walltime in zip(record.metrics, _walltimes(record)[1:]):
                    for key, tag in SCALARS.items():
                        if row.get(key) is not None:
                            writer.add_scalar(tag, row[key], row["epoch"], walltime=walltime)
        except OSError as e:
            raise ExportError(f"cannot write into {safe_text(str(folders[name]))} ({_why(e)})") from None
    return list(folders.values())


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

"""Resuming a run: check that its folder can go on, take the writer's lock, load its checkpoint.

Nothing here unpickles: checkpoints are loaded with `torch.load(weights_only=True)` and checked field by
field, so a truncated file, a pickle of anything or another program's tensors are refused in one line
(RunFolderRefused) and the folder is left as it was. The recorder then goes on writing the folder
(fmtui.recorder.RunRecorder(resume=...)) and the engine goes on training (engine.train(resume=...)).
"""

from __future__ import annotations

import json
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmtui.config import ConfigError, RunConfig
from fmtui.recorder import STALE_AFTER, FolderLock, RunFolderRefused
from fmtui.report import plural
from fmtui.runs import RunError, read_run


@dataclass
class Resume:
    """A run folder to continue: its config (with the epochs to reach), its checkpoint, and the writer's
    lock, taken before anything was read. Close it if it is not handed to a RunRecorder."""

    path: Path
    config: RunConfig
    checkpoint: dict[str, Any] = field(repr=False)
    lock: FolderLock = field(repr=False)
    summary: dict[str, Any] = field(default_factory=dict)
    resolved: dict[str, Any] = field(default_factory=dict)

    @property
    def epoch(self) -> int:
        """The last complete epoch, where training goes on."""
        return self.checkpoint["epoch"]

    def close(self) -> None:
        self.lock.close()

    def __enter__(self) -> Resume:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_resume(path: Path, epochs: int | None = None, **changes: Any) -> Resume:
    """Check that a run folder can go on, and take it: RunFolderRefused (one line) when it cannot.

    `epochs` is the total to reach (default: the run's own); `changes` may move it to another device,
    thread count or data folder (numbers then match the uninterrupted run only on the same device).
    """
    path = Path(path)
    try:
        record = read_run(path)
        cfg = record.config.replace(**{k: v for k, v in changes.items() if v is not None})
        cfg.validate()
    except ConfigError as e:
        raise RunFolderRefused(f"{path}/config.json no longer loads: {e}") from None
    except RunError as e:  # the reader's one line already names the file and why
        raise RunFolderRefused(str(e)) from None
    summary = record.summary if isinstance(record.summary, dict) else {}
    _refuse_if_written_elsewhere(path)
    lock = FolderLock(path)
    try:
        checkpoint = load_checkpoint(path / "checkpoint.pt")
        done, total = checkpoint["epoch"], epochs or cfg.epochs
        if summary.get("status") == "diverged":
            raise RunFolderRefused(f"{path} diverged ({summary.get('message')}); resuming would diverge again")
        if epochs is not None and epochs <= done:
            raise RunFolderRefused(f"--epochs {epochs}: {path} has done {plural(done, 'epoch')} already; give more")
        if total <= done:
            raise RunFolderRefused(
                f"{path} has done all its {plural(done, 'epoch')}; give --epochs N (more than {done})"
            )
        return Resume(path, cfg.replace(epochs=total), checkpoint, lock, summary, record.resolved)
    except BaseException:
        lock.close()
        raise


def _refuse_if_written_elsewhere(path: Path) -> None:
    """A writer on another host holds no lock here that flock could see: a fresh heartbeat says it lives."""
    try:
        live = json.loads((path / "live.json").read_text())
        other_host = live["host"] != socket.gethostname()
        fresh = live["status"] == "running" and time.time() - float(live["heartbeat"]) < STALE_AFTER
    except (OSError, ValueError, TypeError, KeyError):
        return
    if other_host and fresh:
        raise RunFolderRefused(f"{path} is being written by pid {live.get('pid')} on {live['host']}")


def load_checkpoint(file: Path) -> dict[str, Any]:
    """A run's checkpoint.pt, loaded without unpickling anything (weights_only) and checked: RunFolderRefused
    when it is missing, truncated, not a checkpoint, or one of a stacked sweep."""
    import torch

    if not file.is_file():
        raise RunFolderRefused(f"{file.parent} has no checkpoint.pt (it ended before its first epoch, or is older)")
    try:
        with warnings.catch_warnings():  # torch warns about what it refuses: the one line below says it
            warnings.simplefilter("ignore")
            checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated zip, a pickle of anything: never unpickled, always refused
        reason = next(iter(str(e).strip().splitlines()), type(e).__name__)[:120]
        raise RunFolderRefused(f"{file} is not a readable checkpoint (truncated or not one: {reason})") from None
    problem = checkpoint_problem(checkpoint)
    if problem:
        raise RunFolderRefused(f"{file} is not a fmtui checkpoint ({problem})")
    if checkpoint.get("stacked") is not None:
        raise RunFolderRefused(
            f"{file.parent} was trained in a stacked sweep; only single runs resume (its weights are in model.pt)"
        )
    return checkpoint


def checkpoint_problem(c: Any) -> str | None:
    """What makes c no checkpoint that `engine.train(resume=...)` can go on from (None: nothing)."""
    import torch

    def tensors(d: Any) -> bool:
        return isinstance(d, dict) and bool(d) and all(isinstance(v, torch.Tensor) for v in d.values())

    if not isinstance(c, dict):
        return f"a {type(c).__name__}, not a dict"
    if c.get("format") != 1:
        return f"format {c.get('format')!r}, expected 1"
    epoch = c.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        return f"epoch {epoch!r}"
    if not tensors(c.get("model")):
        return "no model weights"
    rows = c.get("metrics")
    if not isinstance(rows, list) or [r.get("epoch") if isinstance(r, dict) else None for r in rows] != list(
        range(1, epoch + 1)
    ):
        return f"its metrics are not those of epochs 1 to {epoch}"
    if not all(isinstance(r.get("seconds"), (int, float)) for r in rows):
        return "its metrics have no times"
    rng = c.get("rng")
    if not isinstance(rng, dict) or not all(isinstance(rng.get(k), torch.Tensor) for k in ("torch", "generator")):
        return "no random number generator states"
    if c.get("stacked") is None and not (isinstance(c.get("optimizer"), dict) and "param_groups" in c["optimizer"]):
        return "no optimizer state"
    if c.get("scheduler") is not None and not isinstance(c["scheduler"], dict):
        return "a schedule that is not a state dict"
    return None

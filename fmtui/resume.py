"""Resuming a run: check that its folder can go on, take the writer's lock, load its checkpoint, and check
that the data it would train on is the data it trained on.

Nothing here unpickles: checkpoints are loaded with `torch.load(weights_only=True)` and checked field by
field (fmtui.runfolder.tensors), so a truncated file, a pickle of anything or another program's tensors are
refused in one line (RunFolderRefused) and the folder is left as it was. A run that another host's process
was writing is taken over only when asked (`take_over`, the CLI's --take-over). fmtui.session then trains it
on, and its recorder goes on writing the folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmtui.config import RunConfig
from fmtui.errors import ConfigError, RunError, RunFolderRefused
from fmtui.runfolder.liveness import refuse_if_written_elsewhere
from fmtui.runfolder.read import read_run
from fmtui.runfolder.schema import CHECKPOINT, CONFIG, DATA_FILES, Status
from fmtui.runfolder.tensors import load_checkpoint
from fmtui.runfolder.writer import FolderLock
from fmtui.text import plural, safe_text


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


def open_resume(path: Path, epochs: int | None = None, *, take_over: bool = False, **changes: Any) -> Resume:
    """Check that a run folder can go on, and take it: RunFolderRefused (one line) when it cannot.

    `epochs` is the total to reach (default: the run's own); `changes` may move it to another device,
    thread count or data folder (numbers then match the uninterrupted run only on the same device).
    `take_over`: the run's last writer was on another host and never recorded an end; the user says it is gone.
    """
    path = Path(path)
    shown = safe_text(str(path))
    try:
        record = read_run(path)
        cfg = record.config.replace(**{k: v for k, v in changes.items() if v is not None})
        cfg.validate()
    except ConfigError as e:
        raise RunFolderRefused(f"{shown}/{CONFIG} no longer loads: {e}") from None
    except RunError as e:  # the reader's one line already names the file and why
        raise RunFolderRefused(safe_text(str(e))) from None
    summary = record.summary if isinstance(record.summary, dict) else {}
    refuse_if_written_elsewhere(path, take_over)
    lock = FolderLock(path)
    try:
        checkpoint = load_checkpoint(path / CHECKPOINT)
        done, total = checkpoint["epoch"], epochs or cfg.epochs
        if summary.get("status") == Status.DIVERGED:
            message = safe_text(summary.get("message"))
            raise RunFolderRefused(f"{shown} diverged ({message}); resuming would diverge again")
        if epochs is not None and epochs <= done:
            raise RunFolderRefused(f"--epochs {epochs}: {shown} has done {plural(done, 'epoch')} already; give more")
        if total <= done:
            raise RunFolderRefused(
                f"{shown} has done all its {plural(done, 'epoch')}; give --epochs N (more than {done})"
            )
        return Resume(path, cfg.replace(epochs=total), checkpoint, lock, summary, record.resolved)
    except BaseException:
        lock.close()
        raise


def data_problem(resume: Resume, files: tuple[tuple[str, int, str], ...], n_train: int, n_test: int) -> str | None:
    """Why the data loaded now is not the data the run trained on (None when it is): the files' names, sizes
    and md5s recorded in config.json (DATA_FILES), or, for a folder written before they were, the split sizes."""
    recorded = resume.resolved.get(DATA_FILES)
    if isinstance(recorded, list) and recorded:
        then = {(f.get("name"), f.get("size"), f.get("md5")) for f in recorded if isinstance(f, dict)}
        now = set(files)
        if then != now:
            changed = sorted({str(n) for n, _, _ in then ^ now})
            return f"its data files differ from those it trained on ({', '.join(map(safe_text, changed))})"
        return None
    before = resume.resolved.get("n_train"), resume.resolved.get("n_val"), resume.resolved.get("n_test")
    if all(isinstance(n, int) for n in before):
        if (before[0] + before[1], before[2]) != (n_train, n_test):
            return (
                f"it trained on {before[0] + before[1]:,} training and {before[2]:,} test images, "
                f"the data now has {n_train:,} and {n_test:,}"
            )
    return None


def check_data(resume: Resume, files: tuple[tuple[str, int, str], ...], n_train: int, n_test: int) -> None:
    """RunFolderRefused (one line) when the data to train on is not the data the run trained on."""
    problem = data_problem(resume, files, n_train, n_test)
    if problem:
        raise RunFolderRefused(
            f"cannot resume {safe_text(str(resume.path))}: {problem}; give the same data with --data-dir"
        )

"""What a writer of run folders needs besides its events: new folder names, the writer's lock, the summary and
metrics table it derives from the rows, and the one-line words for a write that failed. fmtui.recorder turns
engine events into files with these. Standard library only.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
import socket
import time
from datetime import datetime
from pathlib import Path

from fmtui.config import RunConfig, format_value
from fmtui.errors import RunFolderError, RunFolderRefused
from fmtui.runfolder import files
from fmtui.runfolder.liveness import lock_holder_text
from fmtui.runfolder.schema import LOCK, STAMP_FORMAT, TABLE_FIELDS
from fmtui.text import safe_text

try:
    import fcntl
except ImportError:  # no flock (Windows): liveness falls back to live.json's heartbeat
    fcntl = None  # type: ignore[assignment]

CAUSES = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.ENAMETOOLONG: "name too long",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ELOOP: "refused a symbolic link",
}


def write_error(path: Path, exc: OSError, began: bool = True, doing: str = "writing") -> RunFolderError:
    """`disk full while writing runs/x/checkpoint.pt` (and, for the summary, `... writing checkpoint.pt`)."""
    cause = CAUSES.get(exc.errno or 0) or (exc.strerror or type(exc).__name__).lower()
    shown = safe_text(str(path))
    return RunFolderError(f"{cause} while {doing} {shown}", f"{cause} while {doing} {safe_text(path.name)}", began)


def now_iso() -> str:
    """Local time as ISO 8601 with a colon in the offset: 2026-11-27T12:00:00+01:00."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def new_run_dir(base: Path, cfg: RunConfig) -> Path:
    """base/<date-time>-<dataset>-<model>-<norm>-lr<lr>[-N], created and unique."""
    stamp = time.strftime(STAMP_FORMAT)
    return _new_dir(base, f"{stamp}-{cfg.dataset}-{cfg.model}-{cfg.norm}-lr{format_value(cfg.lr)}")


def new_sweep_dir(base: Path) -> Path:
    """base/sweep-<date-time>[-N], created and unique (two sweeps started in the same second get two)."""
    return _new_dir(base, f"sweep-{time.strftime(STAMP_FORMAT)}")


def _new_dir(base: Path, name: str) -> Path:
    """Create base/name, or base/name-1, -2, ... when it exists: never a folder someone else made."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    base.mkdir(parents=True, exist_ok=True)
    for i in range(1000):
        path = base / (name if i == 0 else f"{name}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a new folder {name} in {base}")


def summarize(rows: list[dict]) -> dict:
    """Final and best metrics of a list of epoch rows; best by validation accuracy when there is one."""
    if not rows:
        return {"epochs_done": 0}
    key = "val_accuracy" if rows[-1].get("val_accuracy") is not None else "test_accuracy"
    best = max(rows, key=lambda r: r[key])
    last = rows[-1]
    return {
        "epochs_done": len(rows),
        "final": {k: last.get(k) for k in TABLE_FIELDS},
        "best_by": key,
        "best_epoch": best["epoch"],
        "best": {k: best.get(k) for k in TABLE_FIELDS},
    }


def metrics_csv(rows: list[dict]) -> str:
    """metrics.csv: the rows as a table (TABLE_FIELDS)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=TABLE_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


class FolderLock:
    """The writer's flock on <folder>/.lock, held while it writes; the kernel drops it when the process
    ends, even by kill -9, so a reader that can take it knows the writer is gone.

    The file is opened without following a link (a .lock linked to another file is refused, and a dangling
    link does not create its target), and read-only: the lock needs no write access, and a file held open for
    writing would keep the mount from turning read-only under a run. The holder's pid and host are written
    once, through a second descriptor of the same file, for people (readers ask the kernel who holds it,
    fmtui.runfolder.liveness)."""

    def __init__(self, folder: Path, began: bool = False):
        path = folder / LOCK
        try:
            self.fd: int | None = os.open(path, os.O_RDONLY | os.O_CREAT | files.NOFOLLOW | files.CLOEXEC, 0o666)
        except OSError as e:
            raise write_error(path, e, began) from None
        if fcntl is None:
            return
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.close()
            raise RunFolderRefused(f"{safe_text(str(folder))} is being written by {lock_holder_text(path)}") from None
        except OSError:  # a file system without flock: liveness falls back to the heartbeat
            return
        try:
            self._note(path)
        except OSError as e:
            self.close()
            raise write_error(path, e, began) from None

    def _note(self, path: Path) -> None:
        """Write who holds the lock into it, through a descriptor of the very file that is locked."""
        assert self.fd is not None
        fd = os.open(path, os.O_WRONLY | files.NOFOLLOW | files.CLOEXEC)
        try:
            if (os.fstat(fd).st_ino, os.fstat(fd).st_dev) != (os.fstat(self.fd).st_ino, os.fstat(self.fd).st_dev):
                raise OSError(errno.ESTALE, "replaced while it was locked", str(path))
            os.ftruncate(fd, 0)
            os.write(fd, (json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n").encode())
        finally:
            os.close(fd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

"""Run folders: what a training run leaves behind (written by fmtui.recorder), read back and checked.

    .lock            held (flock) by the process writing the run, for its whole life
    config.json      the RunConfig plus what the engine resolved (device, parameters, normalization)
    metrics.jsonl    one JSON object per finished epoch, appended (and metrics.csv, the same as a table)
    summary.json     status (running / completed / stopped / diverged / error), message, final and best metrics, health
    live.json        the writer's latest progress and heartbeat (pid, host), while it trains
    model.pt         the state_dict of the last complete epoch, loadable with torch.load(weights_only=True)
    predictions.pt   test-set probabilities and labels, for the error browser without retraining
    mislabeled.csv   wrong test predictions, most confident first

`read_run` is the one reader: every consumer (the Runs pane, `fmtui runs`, eval) gets either a
RunRecord whose files were checked (types, ranges, JSON shapes, files that are folders) or a RunError whose
message is one line naming the file. `RunsFolder` follows a runs folder cheaply (a directory listing and
a few stats per second), re-reading a file only when its (mtime, size, inode) changed. `liveness` tells a
run whose writer is gone (`interrupted`) from one still training. None of this needs torch.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import secrets
import socket
import stat
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmtui.config import OPTIONS, ConfigError, RunConfig, applies, format_value, parse_field
from fmtui.events import Health

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: liveness falls back to pids and heartbeats
    fcntl = None  # type: ignore[assignment]

METRIC_FIELDS = (
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "test_loss",
    "test_accuracy",
    "seconds",
    "eval_seconds",
    "samples_per_s",
    "lr",
)
STATUSES = ("running", "completed", "stopped", "diverged", "error")
"""What summary.json may say; a reader adds `interrupted` (running, writer gone) and `broken` (unreadable)."""
STALE_AFTER = 600.0
"""Seconds after which a run whose writer cannot be asked directly (another host: its heartbeat; an old
folder without live.json or .lock: its last write) is taken for dead. Generous: an epoch can be long."""
MAX_BYTES = {"config.json": 1 << 20, "summary.json": 1 << 20, "live.json": 1 << 20, "metrics.jsonl": 256 << 20}
"""Larger files are refused unread (a run writes a few kB; 256 MiB of metrics is over 500,000 epochs)."""
MAX_EPOCH = 10_000_000
"""Epoch numbers above this are no run's (the CLI allows 100,000 epochs)."""
RUN_MARKERS = frozenset({"config.json", "metrics.jsonl", "model.pt", "predictions.pt", ".lock", "live.json"})
"""A folder holding any of these is a run folder (readable or broken); others may be sweep folders."""


def default_runs_dir() -> Path:
    """$FMTUI_RUNS_DIR, else ./runs."""
    return Path(os.environ.get("FMTUI_RUNS_DIR") or "runs")


def atomic_write(path: Path, data: bytes | str, *, sync: bool = True) -> None:
    """Write to a temporary file beside path, then rename over it: readers never see half a file, and a
    failed write (a full disk) leaves the old file as it was.

    The file is created with mode 0666 minus the umask, like any file a program creates (mkstemp's 0600
    would hide run folders from colleagues on a shared machine). sync=True flushes it to the disk before
    the rename, so that after a crash the name holds either the old or the new content.
    """
    raw = data.encode() if isinstance(data, str) else data
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}"
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"no free temporary name beside {path}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def summarize(rows: list[dict]) -> dict:
    """Final and best metrics of a list of epoch rows; best by validation accuracy when there is one."""
    if not rows:
        return {"epochs_done": 0}
    key = "val_accuracy" if rows[-1].get("val_accuracy") is not None else "test_accuracy"
    best = max(rows, key=lambda r: r[key])
    last = rows[-1]
    return {
        "epochs_done": len(rows),
        "final": {k: last.get(k) for k in METRIC_FIELDS},
        "best_by": key,
        "best_epoch": best["epoch"],
        "best": {k: best.get(k) for k in METRIC_FIELDS},
    }


# --- what a reader can say about a folder --------------------------------------------------------------


class RunError(ValueError):
    """A run folder, or one of its files, that cannot be read: str(e) is one line naming the file."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class Liveness:
    """Whether the process writing a run folder is alive, and how that was found out."""

    alive: bool
    why: str


@dataclass
class RunRecord:
    """A run folder as read back from disk and checked (no torch needed)."""

    path: Path
    config: RunConfig
    resolved: dict = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    live: dict = field(default_factory=dict)
    """live.json: the writer's latest progress and heartbeat ({} when absent or unreadable)."""
    writer: Liveness | None = None
    """Whether its writer lives; asked only of runs whose summary says `running` (or has none yet)."""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        """summary.json's status, except that a `running` run whose writer is gone is `interrupted`."""
        status = self.summary.get("status", "running")
        if status == "running" and self.writer is not None and not self.writer.alive:
            return "interrupted"
        return status

    @property
    def epochs_done(self) -> int:
        """Complete epochs: the lines of metrics.jsonl (each names an epoch whose weights are saved)."""
        return len(self.metrics)

    @property
    def final_accuracy(self) -> float | None:
        return self.metrics[-1]["test_accuracy"] if self.metrics else None

    @property
    def best_row(self) -> dict | None:
        """The epoch with the best test accuracy (the first of equals)."""
        return max(self.metrics, key=lambda r: r["test_accuracy"]) if self.metrics else None

    @property
    def health(self) -> Health:
        """summary.json's health (fmtui.health): ok for a run written before fmtui judged health."""
        saved = self.summary.get("health") or {}
        state, hint = saved.get("state"), saved.get("hint")
        return Health(state, hint if isinstance(hint, str) else "") if isinstance(state, str) and state else Health()

    @property
    def message(self) -> str:
        """One line on how the run stands: summary.json's message, or why it counts as interrupted."""
        if self.status == "interrupted" and self.writer is not None:
            return f"interrupted after epoch {self.epochs_done} of {self.config.epochs} ({self.writer.why})"
        return str(self.summary.get("message", ""))


@dataclass(frozen=True)
class BrokenRun:
    """A run folder that cannot be read; `reason` names the file inside it ("config.json: empty file")."""

    path: Path
    reason: str

    @property
    def name(self) -> str:
        return self.path.name

    status = "broken"

    @classmethod
    def of(cls, folder: Path, error: RunError) -> BrokenRun:
        try:
            inside = error.path.relative_to(folder)
        except ValueError:
            inside = error.path
        return cls(folder, error.reason if inside == Path(".") else f"{inside}: {error.reason}")


Run = RunRecord | BrokenRun


# --- reading and checking files -------------------------------------------------------------------------


Stamp = tuple[int, int, int]


class FileCache:
    """Parsed files keyed by path, re-read only when their (mtime_ns, size, inode) changed.

    A file that did not parse is remembered too (its RunError is raised again until the file changes),
    so following a folder with a broken run costs no more than following a good one."""

    def __init__(self) -> None:
        self.entries: dict[Path, tuple[Stamp, Any]] = {}

    def load(self, file: Path, parse: Callable[[Path, bytes], Any]) -> Any:
        """The parsed file, or None when there is none; RunError when it is no regular file or does not parse."""
        return self._cached(file, lambda st, before: parse(file, _read_bytes(file)))

    def load_metrics(self, file: Path) -> list[dict] | None:
        """metrics.jsonl's rows, like load(), except that a file that only grew (appended, as a live writer
        does) is read from where the last read ended: a long run costs one new line per epoch, not all."""
        appended = self._cached(
            file, lambda st, before: _read_metrics(file, st, before if isinstance(before, Appended) else None)
        )
        return None if appended is None else appended.rows

    def _cached(self, file: Path, read: Callable[[os.stat_result, Any], Any]) -> Any:
        """file's entry, read again by read(its stat, the entry's previous value) only when its stamp changed."""
        st = _stat(file)
        if st is None:
            self.entries.pop(file, None)
            return None
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        hit = self.entries.get(file)
        if hit is None or hit[0] != key:
            try:
                value = read(st, hit[1] if hit is not None else None)
            except RunError as e:
                value = e
            hit = self.entries[file] = (key, value)
        if isinstance(hit[1], RunError):
            raise hit[1]
        return hit[1]

    def forget(self, keep: Callable[[Path], bool]) -> None:
        """Drop the entries of files for which keep(path) is false (folders that disappeared)."""
        self.entries = {p: v for p, v in self.entries.items() if keep(p)}


def _stat(file: Path) -> os.stat_result | None:
    """A run file's stat, None when it does not exist; RunError when it is a folder, no regular file or huge."""
    try:
        st = os.stat(file)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise RunError(file, f"cannot be read ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise RunError(file, "a folder, not a file")
    if not stat.S_ISREG(st.st_mode):  # a fifo would block the reader forever
        raise RunError(file, "not a regular file")
    if st.st_size > MAX_BYTES.get(file.name, 1 << 20):
        raise RunError(file, f"too large for a run's file ({st.st_size:,} bytes)")
    return st


def _read_bytes(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as e:
        raise RunError(file, f"cannot be read ({e.strerror})") from None


def _kind(value: Any) -> str:
    """How a JSON value reads in a sentence: 'a list', 'a string ('85')', 'a number (5)'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({_short(repr(value))})"
    if isinstance(value, str):
        return f"a string ({_short(value)!r})"
    return "a list" if isinstance(value, list) else "an object"


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _text(file: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RunError(file, "not UTF-8 text") from None


def _loads(file: Path, text: str, where: str = "") -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        at = f"line {e.lineno}, column {e.colno}" if not where else where
        raise RunError(file, f"not valid JSON ({e.msg} at {at})") from None
    except (ValueError, RecursionError):
        raise RunError(file, f"not valid JSON{f' ({where})' if where else ''}") from None


def parse_object(file: Path, data: bytes) -> dict:
    """A file holding one JSON object."""
    text = _text(file, data)
    if not text.strip():
        raise RunError(file, "empty file")
    value = _loads(file, text)
    if not isinstance(value, dict):
        raise RunError(file, f"{_kind(value)}, not a JSON object")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


DEFAULTS = RunConfig()


def _config_value(file: Path, name: str, value: Any) -> Any:
    """One config.json field, checked for its type and then by the option's own parser (its range)."""
    if name == "data_dir":
        if value is not None and not isinstance(value, str):
            raise RunError(file, f"data_dir is {_kind(value)}, expected a folder name")
        return value
    default = getattr(DEFAULTS, name)
    if isinstance(default, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(default, tuple):
        ok, expected = isinstance(value, list) and all(map(_is_int, value)), "a list of integers"
    elif isinstance(default, int):
        ok, expected = _is_int(value), "an integer"
    elif isinstance(default, float):
        ok, expected = _is_number(value), "a number"
    else:
        ok, expected = isinstance(value, str), "a string"
    if not ok:
        raise RunError(file, f"{name} is {_kind(value)}, expected {expected}")
    text = format_value(value) if isinstance(value, (bool, list)) else str(value)
    try:
        parsed = parse_field(name, text)
    except ConfigError as e:
        raise RunError(file, f"{name}: {e.reason}") from None
    if isinstance(default, tuple):
        return tuple(value)
    return float(value) if isinstance(default, float) else parsed if isinstance(default, str) else value


def parse_config(file: Path, data: bytes) -> tuple[RunConfig, dict]:
    """config.json: the RunConfig (each field checked as the CLI would check it) and the resolved facts."""
    raw = parse_object(file, data)
    names = [f.name for f in dataclasses.fields(RunConfig)]
    config = RunConfig(**{n: _config_value(file, n, raw[n]) for n in names if n in raw})
    try:
        config.validate()
    except ConfigError as e:
        raise RunError(file, str(e)) from None
    resolved = raw.get("resolved", {})
    if not isinstance(resolved, dict):
        raise RunError(file, f"resolved is {_kind(resolved)}, expected an object")
    return config, resolved


def read_run_config(path: Path) -> RunConfig:
    """The RunConfig of a run's config.json, `path` naming the file or its run folder; RunError if it cannot."""
    file = path / "config.json" if path.is_dir() else path
    if _stat(file) is None:
        raise RunError(file, "no such file")
    return parse_config(file, _read_bytes(file))[0]


ROW_REQUIRED = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy")
ROW_NUMBERS = ("train_loss", "val_loss", "test_loss", "seconds", "eval_seconds", "samples_per_s", "lr")
ROW_ACCURACIES = ("train_accuracy", "val_accuracy", "test_accuracy")


def _check_row(row: Any, previous: int) -> str | None:
    """What is wrong with one metrics.jsonl row (None when nothing): epochs count up, numbers are numbers."""
    if not isinstance(row, dict):
        return f"is {_kind(row)}, not a JSON object"
    missing = [k for k in ROW_REQUIRED if k not in row]
    if missing:
        return f"has no {', '.join(missing)}"
    epoch = row["epoch"]
    if not _is_int(epoch) or not 1 <= epoch <= MAX_EPOCH:
        return f"epoch is {_kind(epoch)}, expected a positive integer up to {MAX_EPOCH:,}"
    if epoch <= previous:
        return f"epoch {epoch} does not follow epoch {previous}"
    for key in (*ROW_NUMBERS, *ROW_ACCURACIES):
        value = row.get(key)
        if value is None and key not in ROW_REQUIRED:
            continue
        if not _is_number(value):
            return f"{key} is {_kind(value)}, expected a number"
        if abs(value) > 1e300:  # (NaN passes: a diverged run's loss)
            return f"{key} is {_kind(value)}, too large"
        if key in ROW_ACCURACIES and not 0 <= value <= 100:  # NaN and inf fail too
            return f"{key} is {_short(repr(value))}, expected a percentage from 0 to 100"
    return None


@dataclass(frozen=True)
class Appended:
    """metrics.jsonl as read so far: its rows and where its complete lines end (to read on from there)."""

    rows: list[dict]
    inode: int
    end: int
    """Bytes of complete lines read."""
    lines: int
    last: bytes = b""
    """The last complete line read (with its newline): still there = the file was only appended to."""


def _read_metrics(file: Path, st: os.stat_result, before: Appended | None) -> Appended:
    """Read on from `before` when the file only grew since, else from the start."""
    try:
        with open(file, "rb") as f:
            if before and before.inode == st.st_ino and before.end <= st.st_size:
                f.seek(before.end - len(before.last))
                data = f.read()
                if data.startswith(before.last):
                    return _extend(file, before, data[len(before.last) :])
                f.seek(0)
            return _extend(file, Appended([], st.st_ino, 0, 0), f.read())
    except OSError as e:
        raise RunError(file, f"cannot be read ({e.strerror})") from None


def _extend(file: Path, state: Appended, data: bytes) -> Appended:
    """state plus the checked rows of data's complete lines. A last line without its newline is one a live
    writer is still appending: it is not yet written, not broken, and is left for the next read."""
    complete = data.split(b"\n")[:-1]
    if not complete:
        return state  # nothing new: the same rows, so readers see no change
    rows, n = list(state.rows), state.lines
    for raw in complete:
        n += 1
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RunError(file, f"line {n} is not UTF-8 text") from None
        row = _loads(file, line, where=f"line {n}")
        problem = _check_row(row, rows[-1]["epoch"] if rows else 0)
        if problem:
            raise RunError(
                file, f"line {n} {problem}" if problem.startswith(("is ", "has ")) else f"line {n}: {problem}"
            )
        rows.append(row)
    end = state.end + sum(len(raw) + 1 for raw in complete)
    return Appended(rows, state.inode, end, n, complete[-1] + b"\n")


def parse_metrics(file: Path, data: bytes) -> list[dict]:
    """metrics.jsonl's checked rows, one per complete line (see _extend)."""
    return _extend(file, Appended([], 0, 0, 0), data).rows


SUMMARY_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "message": (lambda v: isinstance(v, str), "a string"),
    "seconds": (lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    "epochs_done": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "final": (lambda v: isinstance(v, dict), "an object"),
    "health": (lambda v: isinstance(v, dict), "an object"),
    "best": (lambda v: isinstance(v, dict), "an object"),
    "started_at": (lambda v: isinstance(v, str), "a string"),
    "updated_at": (lambda v: isinstance(v, str), "a string"),
}


def parse_summary(file: Path, data: bytes) -> dict:
    """summary.json: an object whose status is one of STATUSES; the fields readers use have their types."""
    summary = parse_object(file, data)
    status = summary.get("status")
    if status not in STATUSES:
        what = "no status" if "status" not in summary else f"status {_kind(status)}"
        raise RunError(file, f"{what}; expected one of {', '.join(STATUSES)}")
    for key, (ok, expected) in SUMMARY_TYPES.items():
        if key in summary and summary[key] is not None and not ok(summary[key]):
            raise RunError(file, f"{key} is {_kind(summary[key])}, expected {expected}")
    return summary


def parse_live(file: Path, data: bytes) -> dict:
    """live.json: the fields liveness uses must have their types (else the file is ignored as unreadable)."""
    live = parse_object(file, data)
    pid, heartbeat = live.get("pid"), live.get("heartbeat")
    checks = {"host": isinstance(live.get("host"), str), "pid": _is_int(pid) and 0 < pid < 1 << 31}
    checks["heartbeat"] = _is_number(heartbeat) and 0 <= heartbeat < 1e11  # unix time: seconds since 1970
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise RunError(file, f"no valid {', '.join(bad)}")
    return live


# --- liveness ---------------------------------------------------------------------------------------------


def _lock_held(lock: Path) -> bool | None:
    """Whether some process holds the flock on `lock`; None when that cannot be asked (no file, no flock).

    A shared, non-blocking lock taken and released at once: it fails exactly while the writer holds its
    exclusive lock, and two readers asking at once do not disturb each other."""
    if fcntl is None:
        return None
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # ENOLCK and friends: a file system without flock
        return None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except (OSError, OverflowError):
        return False
    return True


def _age(seconds_since_epoch: float) -> str:
    age = max(time.time() - seconds_since_epoch, 0)
    return f"{age:.0f} s" if age < 120 else f"{age / 60:.0f} min"


def liveness(path: Path, live: dict | None = None) -> Liveness:
    """Whether the process writing the run folder `path` is alive (see the live-run protocol).

    On the writer's host (live.json's `host`, or no live.json at all): its flock on `.lock` is held
    exactly while it lives, even after kill -9; where no lock can be asked, its pid. On another host: a
    heartbeat younger than STALE_AFTER. A folder with neither live.json nor .lock (written before the
    protocol) is alive while its newest file is younger than STALE_AFTER. `live` is live.json when the
    caller has read it already ({} = none)."""
    path = Path(path)
    if live is None:
        try:
            live = parse_live(path / "live.json", _read_bytes(path / "live.json"))
        except RunError:
            live = {}
    host, pid = live.get("host"), live.get("pid")
    writer = f"pid {pid} on {host}" if live else "its writer"
    if live and host != socket.gethostname():
        stale = time.time() - live["heartbeat"] >= STALE_AFTER
        return Liveness(not stale, f"last heartbeat from {writer} {_age(live['heartbeat'])} ago")
    held = _lock_held(path / ".lock")
    if held is not None:
        return Liveness(held, f"{writer} holds its lock" if held else f"{writer} is gone: nobody holds its lock")
    if live:
        alive = _pid_alive(pid)
        return Liveness(alive, f"{writer} is running" if alive else f"{writer} is gone")
    newest = max((_mtime(path / n) for n in ("summary.json", "metrics.jsonl", "config.json")), default=0.0)
    fresh = time.time() - newest < STALE_AFTER
    return Liveness(fresh, f"no live.json or .lock; last written {_age(newest)} ago")


def _mtime(file: Path) -> float:
    try:
        return file.stat().st_mtime
    except OSError:
        return 0.0


# --- the one reader ----------------------------------------------------------------------------------------


def read_run(path: Path, files: FileCache | None = None) -> RunRecord:
    """Read and check a run folder's config.json, metrics.jsonl, summary.json (and live.json, liveness).

    Raises RunError (one line naming the folder or file) when the folder is missing, is no run folder, or
    a file is unreadable, malformed or of the wrong shape. `files` keeps parsed files between calls."""
    path = Path(path)
    files = files if files is not None else FileCache()
    if not path.is_dir():
        raise RunError(path, "not a folder" if path.exists() else "no such folder")
    loaded = files.load(path / "config.json", parse_config)
    if loaded is None:
        raise RunError(path, "not a fmtui run folder (no config.json)")
    config, resolved = loaded
    metrics = files.load_metrics(path / "metrics.jsonl") or []
    summary = files.load(path / "summary.json", parse_summary) or {}
    record = RunRecord(path, config, resolved, metrics, summary)
    if record.summary.get("status", "running") == "running":
        try:
            record.live = files.load(path / "live.json", parse_live) or {}
        except RunError:
            record.live = {}  # a live.json that cannot be read only means no heartbeat to go by
        record.writer = liveness(path, record.live)
    return record


class RunsFolder:
    """A runs folder, followed: `scan()` lists its run folders (and those inside sweep folders, one level
    down) as RunRecord or BrokenRun, newest first.

    Each scan lists the folder and stats each run folder; a folder whose own mtime did not change (files
    are replaced by rename, which changes it) and whose run is neither running nor broken (a file fixed in
    place) is not looked into again; the others' files are stat'ed and read only if they changed. A
    record whose files and liveness did not change is returned as the same object, so a consumer can
    tell what changed with `is`."""

    SETTLE_NS = 2_000_000_000
    """A folder changed this recently may change again within its mtime's granularity: look again."""

    def __init__(self, base: Path) -> None:
        self.base = Path(base)
        self.files = FileCache()
        self.runs: dict[str, tuple[int, Run]] = {}
        """run folder -> (its mtime_ns, its run); keyed by the path as listed (Path objects cost per tick)."""
        self.kinds: dict[str, tuple[int, str]] = {}
        """folder -> (its mtime_ns, "run" | "sweep" | "other")."""
        self.error = ""
        """Why the runs folder itself could not be listed at the last scan ("" when it could, or is absent)."""
        self._listed: list[Run] = []
        """The runs of the last scan as listed, and sorted (newest first): unchanged runs are not sorted again."""
        self._order: list[Run] = []

    def scan(self) -> list[Run]:
        """Every run folder under base, read again only where something changed; [] when base is absent."""
        now = time.time_ns()
        self.error = ""
        try:
            found = self._folders(str(self.base), now, top=True)
        except FileNotFoundError:
            found = []
        except OSError as e:
            self.error = f"cannot list {self.base}: {e.strerror or e}"
            found = []
        runs = [run for folder, mtime in found if (run := self._run(folder, mtime, now)) is not None]
        if len(runs) != len(self.runs):  # runs vanished: forget them and their files
            seen = {str(r.path) for r in runs}
            self.runs = {p: v for p, v in self.runs.items() if p in seen}
            self.kinds = {p: v for p, v in self.kinds.items() if p in seen or os.path.dirname(p) == str(self.base)}
            self.files.forget(lambda p: str(p.parent) in seen)
        if len(runs) != len(self._listed) or any(a is not b for a, b in zip(runs, self._listed)):
            self._listed = runs
            self._order = sorted(runs, key=lambda r: (r.name, str(r.path)), reverse=True)
        return list(self._order)

    def _folders(self, base: str, now: int, top: bool) -> list[tuple[str, int]]:
        """(run folder, its mtime_ns) directly in base, and in base's sweep folders when top."""
        out = []
        with os.scandir(base) as entries:
            for entry in entries:
                if entry.name.startswith(".") or (top and entry.name == "exports"):
                    continue
                try:
                    if not entry.is_dir():
                        continue
                    mtime = entry.stat().st_mtime_ns
                    kind = self._kind(entry.path, mtime, now, top)
                    if kind == "sweep":
                        out.extend(self._folders(entry.path, now, top=False))
                except OSError:
                    continue  # vanished while listing: the next scan will tell
                if kind == "run":
                    out.append((entry.path, mtime))
        return out

    def _kind(self, folder: str, mtime: int, now: int, top: bool) -> str:
        """A run folder (it holds a run's files), a sweep folder (top level, may hold runs) or neither."""
        cached = self.kinds.get(folder)
        if cached is None or cached[0] != mtime or now - mtime < self.SETTLE_NS:
            try:
                names = set(os.listdir(folder))
            except FileNotFoundError:
                raise
            except OSError:
                names = {"config.json"}  # unreadable: listed as a run that says why it cannot be read
            is_run = bool(names & RUN_MARKERS) or names == {"summary.json"}
            cached = self.kinds[folder] = (mtime, "run" if is_run else "sweep" if top else "other")
        return cached[1]

    def _run(self, folder: str, mtime: int, now: int) -> Run | None:
        """The folder's run, re-read unless it is unchanged and not running; None when it vanished."""
        cached = self.runs.get(folder)
        settled = now - mtime >= self.SETTLE_NS
        if cached and cached[0] == mtime and settled and cached[1].status not in ("running", "broken"):
            return cached[1]
        path = Path(folder)
        try:
            run: Run = read_run(path, self.files)
        except RunError as e:
            if not path.exists():
                return None
            run = BrokenRun.of(path, e)
        if cached and _same(cached[1], run):
            run = cached[1]
        self.runs[folder] = (mtime, run)
        return run


def _same(old: Run, new: Run) -> bool:
    """Nothing a reader shows has changed (parsed files come from the cache: unchanged ones are the same objects)."""
    if isinstance(old, BrokenRun) or isinstance(new, BrokenRun):
        return old == new
    return (
        old.config is new.config
        and old.metrics is new.metrics
        and old.summary is new.summary
        and old.status == new.status
    )


def list_runs(base: Path | None = None) -> list[Run]:
    """Every run folder under base and in its sweep folders (one level down), newest first: a RunRecord
    for each readable one, a BrokenRun (with the reason) for the others. [] when base is no folder."""
    base = Path(base) if base else default_runs_dir()
    if not base.is_dir():
        return []
    return RunsFolder(base).scan()


def load_results(path: Path):
    """The saved test predictions of a run as Results (needs torch)."""
    import torch

    from fmtui.results import Results

    file = Path(path) / "predictions.pt"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            saved = torch.load(file, weights_only=True)
        return Results.from_probs(saved["probs"], saved["labels"])
    except Exception as e:  # unpickling, a truncated file, missing keys: all mean "not usable predictions"
        raise RunError(file, f"no readable predictions ({type(e).__name__})") from None


def load_state_dict(file: Path) -> dict:
    """A saved model's state_dict (needs torch): torch.load with weights_only=True, nothing else is ever
    unpickled. RunError naming the file when it is missing, a folder, or not a state_dict of tensors."""
    import torch

    file = Path(file)
    if not file.exists():
        raise RunError(file, "no such file (the run saved no model)")
    if not file.is_file():
        raise RunError(file, "a folder, not a file" if file.is_dir() else "not a regular file")
    if file.stat().st_size == 0:
        raise RunError(file, "empty file")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses
            warnings.simplefilter("ignore")
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError (refused or garbage), EOFError, a zip error: not a saved model
        raise RunError(file, f"not a saved model ({type(e).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RunError(file, "not a saved model (not a state_dict of tensors)")
    return state


EXPORT_RENAMES = {"lr": "epoch_lr"}
"""Metric columns renamed in an export, whose option columns come first: the epoch's lr beside the configured lr."""


def csv_cell(value: Any) -> Any:
    """A CSV cell as summary.csv and exports write it: booleans true/false, lists as 512,256, null as empty."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return "" if value is None else value


def applying(config: RunConfig) -> dict[str, Any]:
    """Every option's value, None where it does not apply to the config's model and optimizer."""
    values = config.to_dict()
    return {f: values[f] if applies(f, config.model, config.optimizer) else None for f in OPTIONS}


def export_runs(records: list[RunRecord], dest: Path) -> tuple[Path, Path]:
    """Write the selected runs' metrics as one CSV (a row per run and epoch) and one JSON file.

    The CSV's columns: run, every option by its config.json name, status, then metrics.csv's columns (the
    epoch's learning rate as epoch_lr, see EXPORT_RENAMES). An option that does not apply to the run's model
    (hidden sizes and activation of a softmax regression, fmtui.config.applies) is left empty (null in JSON).

    Raises OSError when dest cannot be made or written (a full or read-only disk)."""
    dest.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{len(records)}-runs"
    metric_names = {f: EXPORT_RENAMES.get(f, f) for f in METRIC_FIELDS}
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["run", *OPTIONS, "status", *metric_names.values()], lineterminator="\n")
    writer.writeheader()
    for r in records:
        options = {f: csv_cell(v) for f, v in applying(r.config).items()}
        for row in r.metrics:
            metrics = {metric_names[k]: csv_cell(row.get(k)) for k in METRIC_FIELDS}
            writer.writerow({"run": r.name, **options, "status": r.status, **metrics})
    csv_path, json_path = dest / f"{stem}.csv", dest / f"{stem}.json"
    atomic_write(csv_path, out.getvalue())
    atomic_write(
        json_path,
        json.dumps(
            [
                {
                    "run": r.name,
                    "path": str(r.path),
                    "config": {**r.config.to_dict(), **applying(r.config)},
                    "status": r.status,
                    "summary": r.summary,
                    "metrics": r.metrics,
                }
                for r in records
            ],
            indent=2,
        ),
    )
    return csv_path, json_path

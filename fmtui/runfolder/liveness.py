"""The one answer to "who writes this run folder, and is it alive?", for the readers (`fmtui runs`, the Runs
pane, watch), for `x` (may that process be signalled?) and for resume (may this process take the folder?).

On the writer's host, the kernel knows: the writer holds an exclusive flock on `.lock` for its whole life
(the kernel drops it when the process ends, even by kill -9), and /proc/locks names the pid that holds it,
which is checked against the pid live.json names before any signal is sent. A writer that holds its lock
but has not beaten its heartbeat for QUIET_AFTER seconds is shown as paused (SIGSTOP). On another host only
live.json's heartbeat can tell: younger than STALE_AFTER means alive; dated more than STALE_AFTER into the
future is stale too (clock skew). A folder written before the live protocol (no live.json, no .lock) is
alive while its newest file is younger than STALE_AFTER. Standard library only.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from fmtui.errors import RunError, RunFolderRefused, StopRefused
from fmtui.runfolder import files
from fmtui.runfolder.parse import parse_live
from fmtui.runfolder.schema import CONFIG, LIVE, LOCK, METRICS, QUIET_AFTER, STALE_AFTER, SUMMARY, Status
from fmtui.text import safe_text

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: liveness falls back to pids and heartbeats
    fcntl = None  # type: ignore[assignment]

PROC_LOCKS = Path("/proc/locks")
"""The kernel's table of file locks (Linux): who holds the flock on a run's .lock."""


@dataclass(frozen=True)
class Writer:
    """The process that writes (or wrote) a run folder, as live.json and the folder's owner tell."""

    pid: int | None
    host: str | None
    user: str | None = None

    @property
    def here(self) -> bool:
        """Whether it runs on this machine (only then can it be signalled, or its lock be asked)."""
        return self.host == socket.gethostname()

    def describe(self) -> str:
        """`pid 4242 on gpu-box, user ana` (what is known of it; the host name made safe to show)."""
        who = f"pid {self.pid}" if self.pid else "a process"
        who += f" on {safe_text(self.host)}" if self.host else ""
        return who + (f", user {safe_text(self.user)}" if self.user else "")


def read_live(path: Path) -> dict:
    """A run folder's live.json, checked; {} when there is none or it cannot be read (no heartbeat to go by)."""
    try:
        return parse_live(path / LIVE, files.read_bytes(path / LIVE))
    except RunError:
        return {}


def writer_of(path: Path, live: dict | None = None) -> Writer:
    """Who writes the run folder `path`: live.json's pid and host (`live` when already read), the owner's name."""
    live = read_live(path) if live is None else live
    return Writer(live.get("pid"), live.get("host"), _owner(path))


def _owner(path: Path) -> str | None:
    try:
        import pwd

        return pwd.getpwuid(path.stat().st_uid).pw_name
    except (ImportError, KeyError, OSError):
        return None


# --- the lock ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockState:
    """What the kernel says of a run's .lock: held or not (None: cannot be asked), and by which pid (None:
    unknown, as where there is no /proc/locks)."""

    held: bool | None
    holder: int | None = None


def lock_state(lock: Path) -> LockState:
    """Whether some process holds the flock on `lock`, and which one (by the kernel's lock table).

    The probe is a shared, non-blocking lock taken and released at once: it fails exactly while the writer
    holds its exclusive lock, and two readers asking at once do not disturb each other. The lock file is
    opened without following a link: a .lock that is a link is no writer's lock (held None)."""
    if fcntl is None:
        return LockState(None)
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NONBLOCK | files.NOFOLLOW | files.CLOEXEC)
    except OSError:
        return LockState(None)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return LockState(True, _holder(os.fstat(fd)))
    except OSError:  # ENOLCK and friends: a file system without flock
        return LockState(None)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return LockState(False)
    finally:
        os.close(fd)


def _holder(st: os.stat_result) -> int | None:
    """The pid that holds an exclusive flock on the file of `st`, from /proc/locks; None when unknown (no such
    table, or not exactly one holder in it). Lines read `1: FLOCK  ADVISORY  WRITE 4242 fe:00:2146507 0 EOF`
    (waiters have `->` after the number)."""
    try:
        table = PROC_LOCKS.read_text()
    except OSError:
        return None
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    pids = set()
    for line in table.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[1:4] == ["FLOCK", "ADVISORY", "WRITE"] and parts[5] == where:
            pids.add(parts[4])
    if len(pids) != 1:
        return None
    pid = pids.pop()
    return int(pid) if pid.isdigit() and int(pid) > 0 else None


# --- alive or not -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Liveness:
    """Whether the process writing a run folder is alive, and how that was found out (`why`, one line)."""

    alive: bool
    why: str
    quiet: float | None = None
    """Seconds since its last heartbeat, when it holds its lock yet has been silent for QUIET_AFTER (paused?)."""


def age_text(seconds: float) -> str:
    """`42 s`, `10 min`, `5 h`, `3650 days`."""
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h" if seconds < 172800 else f"{seconds / 86400:.0f} days"


def heartbeat_note(live: dict, now: float | None = None) -> tuple[bool, str]:
    """(stale, how old the heartbeat is): older than STALE_AFTER, or dated more than that ahead, is stale."""
    age = (time.time() if now is None else now) - live["heartbeat"]
    if age <= -STALE_AFTER:
        return True, f"dated {age_text(-age)} ahead (clock skew?)"
    return age >= STALE_AFTER, f"{age_text(age)} ago"


def liveness(path: Path, live: dict | None = None) -> Liveness:
    """Whether the process writing the run folder `path` is alive (see the module's docstring). `live` is
    live.json when the caller has read it already ({} = none)."""
    path = Path(path)
    live = read_live(path) if live is None else live
    writer = Writer(live.get("pid"), live.get("host")) if live else None
    who = writer.describe() if writer else "its writer"
    if writer is not None and not writer.here:
        stale, when = heartbeat_note(live)
        return Liveness(not stale, f"last heartbeat from {who} {when}")
    lock = lock_state(path / LOCK)
    if lock.held is not None:
        if not lock.held:
            return Liveness(False, f"{who} is gone: nobody holds its lock")
        quiet = time.time() - live["heartbeat"] if live else None
        if quiet is not None and quiet >= QUIET_AFTER:
            return Liveness(True, f"no heartbeat for {age_text(quiet)} from {who} (paused?)", quiet)
        return Liveness(True, f"{who} holds its lock")
    if writer is not None:
        alive = _pid_alive(live["pid"])
        return Liveness(alive, f"{who} is running" if alive else f"{who} is gone")
    newest = max((_mtime(path / n) for n in (SUMMARY, METRICS, CONFIG)), default=0.0)
    fresh = time.time() - newest < STALE_AFTER
    return Liveness(fresh, f"no live.json or .lock; last written {age_text(time.time() - newest)} ago")


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


def _mtime(file: Path) -> float:
    try:
        return os.lstat(file).st_mtime
    except OSError:
        return 0.0


# --- what may be done to a folder's writer ---------------------------------------------------------------------


def stoppable(path: Path) -> Writer:
    """The process writing the run folder `path`, when it may be asked to stop from here: on this host, holding
    the folder's lock by the kernel's lock table, and the very pid that live.json names (a pid written in a
    file proves nothing: anyone can write one). StopRefused (one line) says why not."""
    path = Path(path)
    name = safe_text(path.name)
    live = read_live(path)
    if not live:
        raise StopRefused(f"{name} has no readable live.json: no process to ask")
    writer = writer_of(path, live)
    if not writer.here:
        raise StopRefused(f"{name} is written by {writer.describe()}: stop it there, signals do not cross machines")
    lock = lock_state(path / LOCK)
    if lock.held is not True:
        raise StopRefused(f"{name}: no process holds its lock, so {writer.describe()} no longer writes it")
    if lock.holder is None:
        raise StopRefused(f"{name}: cannot tell which process holds its lock here; not signalling pid {writer.pid}")
    if lock.holder != writer.pid:
        raise StopRefused(
            f"{name}: its lock is held by pid {lock.holder}, not by pid {writer.pid} that live.json names; "
            "not signalling either"
        )
    return writer


def stop_writer(path: Path) -> tuple[int, str]:
    """Ask the process writing the run folder `path` to stop after its current batch (once `stoppable` has made
    sure it is that process): SIGINT, as Ctrl+C, or SIGTERM where it ignores SIGINT (see `stop_signal`).
    Returns the pid and the signal's name; StopRefused says why not."""
    path = Path(path)
    writer = stoppable(path)
    assert writer.pid is not None
    sig = stop_signal(writer.pid, safe_text(path.name))
    try:
        os.kill(writer.pid, sig)
    except PermissionError:
        raise StopRefused(f"cannot stop {safe_text(path.name)}: pid {writer.pid} belongs to another user") from None
    except ProcessLookupError:
        raise StopRefused(f"{safe_text(path.name)}: pid {writer.pid} has just ended") from None
    return writer.pid, sig.name


def stop_signal(pid: int, name: str = "the run") -> signal.Signals:
    """SIGINT, unless the process ignores it, then SIGTERM: fmtui stops after its batch on either, but keeps a
    signal ignored that was ignored when it started, and `cmd &` in a script (nohup'd or not) starts it with
    SIGINT ignored (POSIX). A process that ignores both is refused: a signal it drops would stop nothing."""
    ignored = ignored_signals(pid)
    for sig in (signal.SIGINT, signal.SIGTERM):
        if sig not in ignored:
            return sig
    raise StopRefused(f"cannot stop {name}: pid {pid} ignores SIGINT and SIGTERM")


def ignored_signals(pid: int) -> set[int]:
    """The signals the process ignores (SigIgn of /proc/PID/status); none known where /proc has no such file."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return set()
    mask = next((int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigIgn:")), 0)
    return {n for n in range(1, mask.bit_length() + 1) if mask >> (n - 1) & 1}


def refuse_if_written_elsewhere(path: Path, take_over: bool = False) -> None:
    """RunFolderRefused when live.json says another host's process was writing the folder and never recorded
    an end: its lock cannot be seen from here, so only `take_over` (the user's word that it is gone) lets
    this process write the folder. A heartbeat still fresh is named, one far in the future too (clock skew)."""
    live = read_live(path)
    writer = Writer(live.get("pid"), live.get("host")) if live else None
    if take_over or writer is None or writer.here or live.get("status") != Status.RUNNING:
        return
    stale, when = heartbeat_note(live)
    state = "gone quiet" if stale else "may still be training"
    raise RunFolderRefused(
        f"{safe_text(str(path))} was being written by {writer.describe()} (last heartbeat {when}), which "
        f"{state}; resume it there, or give --take-over if that process is gone"
    )


def lock_holder_text(lock: Path) -> str:
    """`pid 123 on host` for a lock another process holds (the kernel's holder, else what .lock says)."""
    holder = lock_state(lock).holder
    if holder is not None:
        return f"pid {holder} on {safe_text(socket.gethostname())}"
    try:
        import json

        info = json.loads(files.read_bytes(lock) or b"{}")
        return f"pid {int(info['pid'])} on {safe_text(info['host'])}"
    except (RunError, ValueError, TypeError, KeyError):
        return "another process"

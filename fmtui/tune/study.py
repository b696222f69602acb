"""Optuna's side of a study: its storage, creating or joining it, claiming trials, failing the trials of dead workers.

Storage: a journal file in the study's folder by default (Optuna's JournalFileBackend: appends under a lock
file, no server, works on NFS), or any URL Optuna takes (sqlite:///..., postgresql://..., mysql://...).

Workers never train the same trial: Optuna hands each trial to one process. They also never start more trials
than planned: a worker counts the study's trials and asks for a new one while it holds the study folder's
claim lock (a flock on `.claim`), so two workers that share the folder cannot both take the last slot.

Dead workers: each worker holds a flock on its own folder `.workers/<host>-<pid>-<id>/` and beats a heartbeat
into its live.json there (the run folder's own protocol, read by fmtui.runfolder.liveness: the kernel drops the
flock when the process dies, even by SIGKILL; on another host the heartbeat stops). Before it claims a trial,
a worker fails every RUNNING trial whose worker is dead and queues it again (Optuna's retry callback: the same
parameters, a new trial number), so the study reaches its planned trials. Optuna's own heartbeat is not used:
its JournalStorage has none, and RDBStorage's beats only inside Study.optimize, which cannot cap the trials of a
study shared by several processes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import secrets
import shutil
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fmtui.config import ConfigError
from fmtui.errors import ExitCode, FmtuiError, RunFolderError, RunFolderRefused
from fmtui.runfolder.files import atomic_write
from fmtui.runfolder.liveness import liveness
from fmtui.runfolder.schema import STALE_AFTER
from fmtui.runfolder.writer import FolderLock
from fmtui.tune.space import Space

JOURNAL = "journal.log"
CLAIM_LOCK = ".claim"
WORKERS = ".workers"
META = "fmtui"
"""The study's user attribute holding its definition (what it searches, its trials, sampler and pruner)."""
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
LOCK_GRACE = 30
"""Seconds after which the journal's lock file, with no write to the journal meanwhile, is taken for one a
dead worker left behind and removed (Optuna's own grace period)."""
LOCK_TIMEOUT = 120.0
"""Seconds a worker waits for the journal's lock before it gives up: a locked journal is an error."""
CLAIM_TIMEOUT = 300.0
"""Seconds a worker waits for the claim lock (another worker asks Optuna for a trial meanwhile)."""
HEARTBEAT_EVERY = 30.0
"""Seconds between a worker's heartbeats (readers on another host take STALE_AFTER of silence for death)."""
MAX_RETRY = 3
"""How often a trial whose worker died (or was stopped by a signal) is queued again."""
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("asha", "median", "none")


class StudyError(FmtuiError):
    """A study that cannot be opened or used: one line for the user, and the exit code it means (1 unless said)."""

    exit_code = ExitCode.FAILED


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ConfigError(f"{name!r} is no study name: letters, digits, _ . - (up to 100, not starting with . or -)")
    return name


def storage_label(spec: str) -> str:
    """The storage as it may be shown: a URL's password hidden (postgresql://ana:***@db/x)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", spec)


# --- the storage -------------------------------------------------------------------------------------------


def open_storage(spec: str | None, study_dir: Path) -> Any:
    """The study's storage: `spec` is a URL (`scheme://...`) or a journal file; None = study_dir/journal.log.

    Raises StudyError (exit 1) when it cannot be opened: no such server, a driver not installed, a file that
    cannot be written, a locked journal."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = spec or str(study_dir / JOURNAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental and deprecation warnings: not the user's concern
            if "://" in spec:
                return _rdb(spec)
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalFileBackend

            Path(spec).parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(spec, lock_obj=JournalLock(spec)))
    except StudyError:
        raise
    except Exception as e:  # SQLAlchemy, a driver's import, OSError: one line, whatever the backend
        raise StudyError(f"cannot open the storage {storage_label(spec)}: {_reason(e)}") from None


def _rdb(url: str) -> Any:
    from optuna.storages import RDBStorage

    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    return RDBStorage(url, engine_kwargs=engine_kwargs)


def _reason(e: BaseException) -> str:
    """A library's error in one line: the driver's own message, without SQLAlchemy's background links."""
    text = str(getattr(e, "orig", None) or e).strip().splitlines()
    first = text[0] if text else type(e).__name__
    if isinstance(e, ModuleNotFoundError):
        return f"{e.name} is not installed (pip install {e.name})"
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    return first[:300]


class JournalLock:
    """Optuna's symlink lock on the journal (JournalFileSymlinkLock: NFS-safe), waiting at most LOCK_TIMEOUT.

    Optuna's own acquire waits forever; a lock file left by a worker killed during a write is removed after
    LOCK_GRACE seconds without a write to the journal, as Optuna does. A lock that is still held after
    LOCK_TIMEOUT (a file this user cannot remove, a worker stuck on a dead file server) is an error."""

    def __init__(self, journal: str) -> None:
        from optuna.storages.journal import JournalFileSymlinkLock

        self.inner = JournalFileSymlinkLock(journal)  # for its release (rename, unlink); acquire is ours
        self.journal, self.path = journal, journal + ".lock"

    def acquire(self) -> bool:
        deadline, pause = time.monotonic() + LOCK_TIMEOUT, 0.001
        while True:
            try:
                os.symlink(self.journal, self.path)
                return True
            except FileExistsError:
                pass
            except OSError as e:
                raise StudyError(f"cannot lock the journal {self.journal}: {_reason(e)}") from None
            if self._stale():
                with contextlib.suppress(RuntimeError):
                    self.inner.release()  # Optuna's release: rename, then unlink (another may have done it)
                continue
            if time.monotonic() > deadline:
                raise StudyError(
                    f"the journal {self.journal} is locked: {self.path} has been held for over "
                    f"{LOCK_TIMEOUT:.0f} s (a worker stuck or gone; remove the lock file if no worker runs)"
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.2)

    def _stale(self) -> bool:
        """No write to the lock or the journal for LOCK_GRACE seconds: its holder is gone."""
        try:
            newest = max(os.lstat(self.path).st_mtime, os.stat(self.journal).st_mtime)
        except OSError:
            return False
        return time.time() - newest > LOCK_GRACE

    def release(self) -> None:
        self.inner.release()


# --- samplers, pruners, the study -------------------------------------------------------------------------------


def make_sampler(name: str, space: Space) -> Any:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant_liar is marked experimental
        if name == "tpe":  # constant_liar: workers running at once do not all sample the same region
            return optuna.samplers.TPESampler(constant_liar=True)
        if name == "random":
            return optuna.samplers.RandomSampler()
        return _grid_class()(space.grid())


def _grid_class() -> type:
    import optuna

    class Grid(optuna.samplers.GridSampler):
        """The grid sampler without its stop at the grid's end (Study.stop works inside optimize() only; the
        claim count ends the study here)."""

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            pass

    return Grid


def make_pruner(name: str) -> Any:
    """asha: successive halving at epochs 1, 3, 9, ... (the top third goes on); median: below the median of the
    trials at the same epoch, after 5 trials; none: never."""
    import optuna

    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    return optuna.pruners.NopPruner()


def create_or_join(storage: Any, name: str, meta: dict[str, Any] | None) -> tuple[Any, dict[str, Any], bool]:
    """(study, its definition, created): the study `name`, created with `meta` when it does not exist yet.
    meta None = join only (a StudyError when there is no such study)."""
    import optuna

    try:
        if meta is not None:
            try:
                study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
                study.set_user_attr(META, meta)
                return study, meta, True
            except optuna.exceptions.DuplicatedStudyError:
                pass
        study = optuna.load_study(study_name=name, storage=storage)
        return study, _wait_for_meta(study, name), False
    except StudyError:
        raise
    except KeyError:
        raise StudyError(f"no study {name} in this storage; give its options to create it", exit_code=2) from None
    except Exception as e:
        raise StudyError(f"cannot open the study {name}: {_reason(e)}") from None


def _wait_for_meta(study: Any, name: str, patience: float = 30.0) -> dict[str, Any]:
    """The definition of a study another worker has just created (written right after the study itself)."""
    deadline = time.monotonic() + patience
    while META not in study.user_attrs:
        if time.monotonic() > deadline:
            raise StudyError(f"the study {name} was not made by fmtui tune (it has no {META!r} attribute)", 2)
        time.sleep(0.1)
    meta = study.user_attrs[META]
    parts = [meta.get(k) for k in ("search", "fixed")] if isinstance(meta, dict) else [None]
    if not all(isinstance(p, dict) and all(isinstance(v, str) for v in p.values()) for p in parts):
        raise StudyError(f"the study {name} has a broken {META!r} attribute", 2)
    return meta


def with_sampling(study: Any, sampler: Any, pruner: Any) -> Any:
    """The study with this worker's sampler and pruner (Optuna keeps them per process, not in the storage)."""
    study.sampler, study.pruner = sampler, pruner
    return study


# --- claiming trials --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def claim_lock(study_dir: Path) -> Iterator[None]:
    """The study folder's claim lock: one worker at a time counts the trials and asks for the next."""
    fd = os.open(study_dir / CLAIM_LOCK, os.O_RDONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        deadline, pause = time.monotonic() + CLAIM_TIMEOUT, 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StudyError(f"{study_dir / CLAIM_LOCK} has been locked for {CLAIM_TIMEOUT:.0f} s") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.5)
            except OSError as e:
                if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP):
                    raise
                break  # no flock on this file system: Optuna still hands each trial to one worker
        yield
    finally:
        os.close(fd)  # closing drops the flock


def slots_taken(study: Any) -> tuple[int, bool]:
    """(trials that count toward the plan, whether a trial waits to be run again). A retry (a trial queued
    again for a dead worker's) takes no new slot: it stands in for the one that failed."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    waiting = any(t.state == TrialState.WAITING for t in trials)
    return sum("failed_trial" not in t.system_attrs for t in trials), waiting


def claim(study: Any, planned: int, study_dir: Path, worker: str) -> Any | None:
    """The next trial for this worker (an Optuna Trial), or None when the study has all its trials.

    First fails the trials of dead workers (queued again); a queued trial is taken before a new one."""
    with claim_lock(study_dir):
        fail_stale(study, study_dir)
        taken, waiting = slots_taken(study)
        if taken >= planned and not waiting:
            return None
        trial = study.ask()
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        if waiting:  # a trial queued again: say which one it stands in for
            frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
            if "failed_trial" in frozen.system_attrs:
                trial.set_user_attr("retry_of", frozen.system_attrs["failed_trial"])
        return trial


def fail_stale(study: Any, study_dir: Path) -> list[int]:
    """Fail the RUNNING trials whose worker is dead, queue each again (up to MAX_RETRY times); their numbers.

    A trial names its worker's folder, host and pid. Without the folder (a worker elsewhere, with a storage
    that is not in a shared folder; or one that ended), a worker on this host is asked by its pid, one on
    another host is left alone. A trial that names no worker yet (its worker died between asking for it and
    naming itself) counts as dead after STALE_AFTER seconds."""
    from optuna.trial import TrialState

    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _dead(trial, study_dir) and fail_and_retry(study, trial.number):
            failed.append(trial.number)
    return failed


def _dead(trial: Any, study_dir: Path) -> bool:
    worker = trial.user_attrs.get("worker")
    if not isinstance(worker, str) or "/" in worker or worker.startswith("."):
        started = trial.datetime_start or datetime.now()
        return datetime.now() - started > timedelta(seconds=STALE_AFTER)
    folder = study_dir / WORKERS / worker
    if folder.is_dir():
        return not liveness(folder).alive
    pid = trial.user_attrs.get("pid")
    return trial.user_attrs.get("host") == socket.gethostname() and isinstance(pid, int) and not _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):  # another user's process, or no pid at all
        return pid > 0
    return True


def fail_and_retry(study: Any, number: int) -> bool:
    """Mark trial `number` failed and queue it again; False when another worker finished it first."""
    import optuna
    from optuna.trial import TrialState

    try:
        study.tell(number, state=TrialState.FAIL)
    except (ValueError, optuna.exceptions.UpdateFinishedTrialError):  # finished meanwhile, by another worker
        return False
    retry = (
        getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental (and, from Optuna 4.9, renamed)
        failed = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
        retry(max_retry=MAX_RETRY)(study, failed)
    return True


# --- a worker's presence ----------------------------------------------------------------------------------


class Presence:
    """This worker's folder `.workers/<host>-<pid>-<id>/`: a flock held while it lives, and a heartbeat in its
    live.json every HEARTBEAT_EVERY seconds (what fmtui.runfolder.liveness reads). Removed when the worker ends."""

    def __init__(self, study_dir: Path) -> None:
        self.name = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.name = re.sub(r"[^A-Za-z0-9_.-]", "_", self.name)
        self.path = study_dir / WORKERS / self.name
        self.stopped = threading.Event()
        try:
            self.path.mkdir(parents=True)
            self.lock = FolderLock(self.path)
            self._beat()
        except (OSError, RunFolderError, RunFolderRefused) as e:
            raise StudyError(f"cannot make the worker folder {self.path}: {e}") from None
        self.thread = threading.Thread(target=self._run, name="fmtui-tune-heartbeat", daemon=True)
        self.thread.start()

    def _beat(self) -> None:
        live = {"status": "running", "pid": os.getpid(), "host": socket.gethostname(), "heartbeat": time.time()}
        atomic_write(self.path / "live.json", json.dumps(live), sync=False)

    def _run(self) -> None:
        while not self.stopped.wait(HEARTBEAT_EVERY):
            with contextlib.suppress(OSError):
                self._beat()

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.lock.close()
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> Presence:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

"""The one reader of run folders: every consumer (the Runs pane, `fmtui runs`, watch, eval, export, resume)
gets either a RunRecord whose files were checked (types, ranges, JSON shapes, files that are folders or
links) or a RunError whose message is one line naming the file. `RunsFolder` follows a runs folder cheaply
(a directory listing and a few stats per second), re-reading a file only when its (mtime, size, inode)
changed. None of this needs torch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmtui.config import RunConfig
from fmtui.errors import RunError
from fmtui.events import Health
from fmtui.runfolder import files as safe
from fmtui.runfolder.liveness import Liveness, liveness
from fmtui.runfolder.parse import (
    Appended,
    Check,
    check_loss,
    parse_config,
    parse_live,
    parse_summary,
    read_appended,
    read_metrics,
)
from fmtui.runfolder.schema import CONFIG, EXPORTS, LIVE, LOCK, METRICS, RUN_MARKERS, SUMMARY, Status
from fmtui.text import safe_text


def default_runs_dir() -> Path:
    """$FMTUI_RUNS_DIR, else ./runs."""
    return Path(os.environ.get("FMTUI_RUNS_DIR") or "runs")


@dataclass
class RunRecord:
    """A run folder as read back from disk and checked (no torch needed). Its `message` and `health` are made
    safe to show (fmtui.text.safe_text); its `name` and config strings are shown through safe_text by each view."""

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
    def status(self) -> Status:
        """summary.json's status, except that a `running` run whose writer is gone is `interrupted`."""
        status = Status(self.summary.get("status", Status.RUNNING))
        if status == Status.RUNNING and self.writer is not None and not self.writer.alive:
            return Status.INTERRUPTED
        return status

    @property
    def epochs_done(self) -> int:
        """Complete epochs: the lines of metrics.jsonl (each names an epoch whose weights are saved)."""
        return len(self.metrics)

    @property
    def pruned_at(self) -> int | None:
        """The epoch whose report pruned this run (a search's trial, summary.json's pruned_at); None when none did."""
        epoch = self.summary.get("pruned_at")
        return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None

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
        if not isinstance(state, str) or not state:
            return Health()
        return Health(safe_text(state), safe_text(hint) if isinstance(hint, str) else "")

    @property
    def message(self) -> str:
        """One line on how the run stands: summary.json's message, why it counts as interrupted, or that its
        writer holds its lock but has gone quiet (paused?)."""
        if self.status == Status.INTERRUPTED and self.writer is not None:
            return f"interrupted after epoch {self.epochs_done} of {self.config.epochs} ({self.writer.why})"
        if self.status == Status.RUNNING and self.writer is not None and self.writer.quiet is not None:
            return f"{self.writer.why}, at epoch {self.epochs_done} of {self.config.epochs}"
        return safe_text(self.summary.get("message", ""))


@dataclass(frozen=True)
class BrokenRun:
    """A run folder that cannot be read; `reason` names the file inside it ("config.json: empty file")."""

    path: Path
    reason: str

    @property
    def name(self) -> str:
        return self.path.name

    status = Status.BROKEN

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
        return self._cached(file, lambda st, before: parse(file, safe.read_bytes(file)))

    def load_metrics(self, file: Path) -> list[dict] | None:
        """metrics.jsonl's rows, like load(), except that a file that only grew (appended, as a live writer
        does) is read from where the last read ended: a long run costs one new line per epoch, not all."""
        appended = self._cached(
            file, lambda st, before: read_metrics(file, st, before if isinstance(before, Appended) else None)
        )
        return None if appended is None else appended.rows

    def load_losses(self, file: Path) -> list[dict] | None:
        """losses.jsonl's points (fmtui.runfolder.schema.LOSS_FIELDS), read on as load_metrics reads on."""
        return self._appended(file, check_loss)

    def _appended(self, file: Path, check: Check) -> list[dict] | None:
        appended = self._cached(
            file, lambda st, before: read_appended(file, st, before if isinstance(before, Appended) else None, check)
        )
        return None if appended is None else appended.rows

    def load_grown(self, file: Path, read: Callable[[Path, os.stat_result, Any], Any]) -> Any:
        """Another appended file, like load_metrics: `read(file, its stat, the previous value)` reads on from
        where the previous value ended (system.jsonl: fmtui.sysmetrics.read_tail)."""
        return self._cached(file, lambda st, before: read(file, st, before))

    def _cached(self, file: Path, read: Callable[[os.stat_result, Any], Any]) -> Any:
        """file's entry, read again by read(its stat, the entry's previous value) only when its stamp changed."""
        st = safe.stat_file(file)
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


# --- the one reader ----------------------------------------------------------------------------------------


def read_run_config(path: Path) -> RunConfig:
    """The RunConfig of a run's config.json, `path` naming the file or its run folder; RunError if it cannot."""
    file = path / CONFIG if path.is_dir() else path
    if safe.stat_file(file) is None:
        raise RunError(file, "no such file")
    return parse_config(file, safe.read_bytes(file))[0]


def read_run(path: Path, files: FileCache | None = None) -> RunRecord:
    """Read and check a run folder's config.json, metrics.jsonl, summary.json (and live.json, liveness).

    Raises RunError (one line naming the folder or file) when the folder is missing, is no run folder, or
    a file is unreadable, malformed or of the wrong shape. `files` keeps parsed files between calls."""
    path = Path(path)
    files = files if files is not None else FileCache()
    if not path.is_dir():
        raise RunError(path, "not a folder" if path.exists() else "no such folder")
    if safe.is_link(path / LOCK):
        raise RunError(path / LOCK, safe.LINK)  # no writer's lock: whatever it points at decides nothing
    loaded = files.load(path / CONFIG, parse_config)
    if loaded is None:
        raise RunError(path, "not a fmtui run folder (no config.json)")
    config, resolved = loaded
    metrics = files.load_metrics(path / METRICS) or []
    summary = files.load(path / SUMMARY, parse_summary) or {}
    record = RunRecord(path, config, resolved, metrics, summary)
    if record.summary.get("status", Status.RUNNING) == Status.RUNNING:
        try:
            record.live = files.load(path / LIVE, parse_live) or {}
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
                if entry.name.startswith(".") or (top and entry.name == EXPORTS):
                    continue
                try:
                    if not entry.is_dir():
                        continue
                    if entry.is_symlink():  # listed as broken, never followed (a runs folder may be shared)
                        out.append((entry.path, 0))
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
                names = {CONFIG}  # unreadable: listed as a run that says why it cannot be read
            is_run = bool(names & RUN_MARKERS) or names == {SUMMARY}
            cached = self.kinds[folder] = (mtime, "run" if is_run else "sweep" if top else "other")
        return cached[1]

    def _run(self, folder: str, mtime: int, now: int) -> Run | None:
        """The folder's run, re-read unless it is unchanged and not running; None when it vanished."""
        cached = self.runs.get(folder)
        settled = now - mtime >= self.SETTLE_NS
        if cached and cached[0] == mtime and settled and cached[1].status not in (Status.RUNNING, Status.BROKEN):
            return cached[1]
        path = Path(folder)
        if os.path.islink(folder):
            return BrokenRun(path, "a symbolic link to a folder (fmtui never follows one out of a runs folder)")
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
        and _quiet(old) == _quiet(new)
    )


def _quiet(run: RunRecord) -> bool:
    """Its writer holds the lock but has gone quiet (its message says so)."""
    return run.writer is not None and run.writer.quiet is not None


def list_runs(base: Path | None = None) -> list[Run]:
    """Every run folder under base and in its sweep folders (one level down), newest first: a RunRecord
    for each readable one, a BrokenRun (with the reason) for the others. [] when base is no folder."""
    base = Path(base) if base else default_runs_dir()
    if not base.is_dir():
        return []
    return RunsFolder(base).scan()

"""`fmtui export`: the runs it is given, read once or followed as they train (run folders, and folders of
runs, a sweep's or a runs folder, whose new runs are picked up as they appear), written as a CSV table (the
Runs pane's columns, fmtui.runfolder.export) and/or TensorBoard files (fmtui.tensorboard).

Following costs a few stat calls a second: unchanged files are not read again (fmtui.runfolder.read.FileCache,
fmtui.runfolder.read.RunsFolder), and a run's metrics.jsonl is read from where the last read ended.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fmtui import signals
from fmtui.errors import ExitCode, ExportError, print_error
from fmtui.headless.folders import folder_problem
from fmtui.runfolder.export import runs_csv
from fmtui.runfolder.files import atomic_write
from fmtui.runfolder.read import BrokenRun, FileCache, RunError, RunRecord, RunsFolder, read_run
from fmtui.runfolder.schema import CONFIG, SUMMARY
from fmtui.text import plural, safe_text

if TYPE_CHECKING:
    from fmtui.tensorboard import TensorBoardExport

POLL_S = 1.0
"""How often a followed run's folder is looked at."""
QUIET_S = 15.0
"""A followed folder of runs is done when all its runs have ended and none ended (or changed) for this long:
a sweep starts its next run within a second or two of the last one's end (its data is loaded already)."""


class RunSources:
    """The runs in the paths given, by the name each is exported as: a run folder's own name, or
    `<folder>/<run>` (and `<folder>/<sweep>/<run>`) for the runs in a folder of runs."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = [Path(p) for p in paths]
        self.files = {p: FileCache() for p in self.paths if (p / CONFIG).is_file()}
        """Run folders, each with its file cache; the other paths are folders of runs."""
        self.folders = {p: RunsFolder(p) for p in self.paths if p not in self.files}
        self.gone: dict[Path, str] = {}
        """Run folders that could not be read again while followed (vanished, broken): why."""
        self.skipped: set[Path] = set()
        self.scans = 0

    def scan(self) -> tuple[dict[str, RunRecord], list[str]]:
        """Every readable run now (name -> record), and a line for each run newly found broken or gone.
        ValueError when two runs would be exported under one name, or (at the first scan) a run folder given
        cannot be read."""
        runs: dict[str, RunRecord] = {}
        notes: list[str] = []
        for path in self.paths:
            for record in self._read(path, notes):
                name = path.name if path in self.files else str(Path(path.name) / record.path.relative_to(path))
                same = runs.setdefault(name, record)
                if same is not record and same.path.resolve() != record.path.resolve():
                    raise ValueError(f"two runs would both be exported as {name}; export them one at a time")
        self.scans += 1
        return runs, notes

    def _read(self, path: Path, notes: list[str]) -> list[RunRecord]:
        if path in self.gone:
            return []
        if path in self.files:
            try:
                return [read_run(path, self.files[path])]
            except RunError as e:
                if not self.scans:  # named on the command line and unreadable: an error, as for any input
                    raise
                self.gone[path] = str(e)
                notes.append(safe_text(f"Stopped following {path}: {e.reason}"))
                return []
        records = []
        for run in self.folders[path].scan():
            if isinstance(run, BrokenRun):
                if run.path not in self.skipped:
                    self.skipped.add(run.path)
                    notes.append(safe_text(f"Skipped {run.path}: {run.reason}"))
            else:
                records.append(run)
        return records

    def empty(self) -> list[Path]:
        """The folders of runs that hold no run (readable or not) at the last scan."""
        return [p for p, folder in self.folders.items() if not folder.runs]

    def ended(self, runs: dict[str, RunRecord]) -> bool:
        """Every run has ended, and every folder of runs holds one."""
        return not self.empty() and all(r.status != "running" for r in runs.values())

    def done(self, runs: dict[str, RunRecord]) -> bool:
        """Every run has ended, and none in a folder of runs ended (or changed) within QUIET_S."""
        if not self.ended(runs):
            return False
        in_folders = [r for r in runs.values() if r.path not in self.files]
        return not in_folders or _newest_change(in_folders) < time.time() - QUIET_S


def _newest_change(records: list[RunRecord]) -> float:
    """When the newest of these runs' summary.json was written (each run's last write)."""
    newest = 0.0
    for record in records:
        try:
            newest = max(newest, os.stat(record.path / SUMMARY).st_mtime)
        except OSError:
            continue
    return newest


STDOUT = Path("-")
"""`--csv -`: the CSV goes to stdout (and the lines that would go there, to stderr)."""


def run_export(
    paths: list[Path], tensorboard_dir: Path | None = None, follow: bool = False, csv_file: Path | None = None
) -> int:
    """Export the runs as TensorBoard event files (one line per run) and/or one CSV table; with follow, go on
    writing the event files as the runs add epochs until all have ended, or a signal comes (one line per
    change). The event files are closed either way; the CSV is written last, from what was read last."""
    for path in paths:  # as `fmtui runs` says it
        if not path.is_dir():
            raise RunError(path, "not a folder" if path.exists() else "no such folder")
    if csv_file is not None and csv_file != STDOUT:
        check_csv_target(csv_file)
    say = Say(err=csv_file == STDOUT)
    sources, exporter = RunSources(paths), None
    with signals.stopping(after="") if follow else nullcontext(signals.Stop()) as stop:
        try:
            if tensorboard_dir is not None:
                from fmtui.tensorboard import TensorBoardExport

                exporter = TensorBoardExport(tensorboard_dir)
            runs, waiting = _step(sources, exporter, follow, say), False
            while follow and not sources.done(runs) and not stop.event.wait(POLL_S):
                runs = _step(sources, exporter, follow, say)
                if sources.ended(runs) != waiting:  # said once: the quiet wait would look like a hang
                    waiting = not waiting
                    if waiting and not sources.done(runs):
                        click.echo(f"All runs have ended; waiting {QUIET_S:g} s for another to start", err=True)
        except (ValueError, ExportError) as e:  # RunError is a ValueError too
            raise click.UsageError(safe_text(str(e))) from None
        finally:
            if exporter is not None:
                exporter.close()
    code = _write_csv(csv_file, runs, say) if csv_file is not None else ExitCode.OK
    if stop.is_set():
        click.echo(f"Stopped following; {plural(len(runs), 'run')} exported up to the epochs shown", err=True)
        return stop.exit_code
    if follow:
        say(f"Done: {plural(len(runs), 'run')} ended, all exported")
    return code


class Say:
    """export's lines: on stdout, or on stderr when stdout carries the CSV."""

    def __init__(self, err: bool) -> None:
        self.err = err

    def __call__(self, line: str) -> None:
        click.echo(safe_text(line), err=self.err)


def check_csv_target(path: Path) -> None:
    """Refuse a --csv FILE that cannot be written, before any run is read (one line, exit 2): a symbolic
    link (fmtui writes through none), a folder, something other than a regular file, a file not writable, or a
    folder it cannot be made in. Missing folders on its path are made."""
    problem = csv_problem(path)
    if problem:
        raise click.BadParameter(problem, param_hint="'--csv'")


def csv_problem(path: Path) -> str | None:
    """Why the CSV cannot be written at path, in a few words; None if it can (a file there is replaced)."""
    if path.is_symlink():
        return f"{path} is a symbolic link; fmtui writes no file through a link: name another file"
    if path.is_dir():
        return f"{path} is a folder; name a file in it, such as {path / 'runs.csv'}"
    if path.exists() and not path.is_file():
        return f"{path} is not a regular file; name a file"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path} is not writable (permission denied)"
    folder = path.parent
    problem = folder_problem(folder)
    if problem:
        return problem
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):  # what the write will do: a file beside it (root passes access())
            pass
    except OSError as e:
        return f"cannot write in {folder} ({e.strerror or type(e).__name__})"
    return None


def _write_csv(path: Path, runs: dict[str, RunRecord], say: Say) -> int:
    """The runs' metrics as CSV (the Runs pane's columns), each run under the name it is exported as; a line
    says where and how much. A write that fails now (a full disk) is one line and exit 1."""
    text = runs_csv(list(runs.items()))
    rows = text.count("\n") - 1
    if path == STDOUT:
        click.echo(text, nl=False)
        return ExitCode.OK
    try:
        atomic_write(path, text)
    except OSError as e:  # atomic_write refuses a symbolic link made since the check (ELOOP)
        print_error(f"cannot write the CSV {path} ({e.strerror or type(e).__name__})")
        return ExitCode.FAILED
    say(f"CSV: {path} ({plural(rows, 'row')}: {plural(len(runs), 'run')}, one row per epoch)")
    return ExitCode.OK


def _step(sources: RunSources, exporter: TensorBoardExport | None, follow: bool, say: Say) -> dict[str, RunRecord]:
    """Read the sources and write what changed; the first time, a folder that holds no run is an error
    (or, when following, waited for)."""
    first = not sources.scans
    runs, notes = sources.scan()
    _echo(notes, err=True)
    for path in sources.empty() if first else []:
        if not follow:
            raise ValueError(f"{path} is not a fmtui run folder and holds none")
        click.echo(safe_text(f"{path} holds no run yet: waiting for one (Ctrl+C ends)"), err=True)
    if first and not runs and not follow:
        raise ValueError("no readable run to export")
    for line in exporter.update(runs) if exporter is not None else []:
        say(line)
    return runs


def _echo(lines: list[str], err: bool = False) -> None:
    for line in lines:
        click.echo(safe_text(line), err=err)

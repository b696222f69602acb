"""Where a headless command may write: checked before any data is loaded or training time is spent."""

from __future__ import annotations

import os
from pathlib import Path

import click

from fmtui.config import RunConfig
from fmtui.runfolder.read import default_runs_dir
from fmtui.runfolder.writer import new_run_dir


def check_out(out: Path | None, runs_dir: Path | None = None) -> None:
    """Refuse a destination that cannot take new runs, before any data is loaded or training time is spent:
    an --out that is not a folder, not empty, has a name too long or cannot be written; without --out, a
    runs folder (--runs-dir, $FMTUI_RUNS_DIR or ./runs) that cannot be made or written."""
    if out is not None:
        problem = folder_problem(out, must_be_empty=True)
        if problem:
            raise click.BadParameter(problem, param_hint="'--out'")
        return
    problem = folder_problem(runs_dir or default_runs_dir())
    if problem and runs_dir is not None:
        raise click.BadParameter(problem, param_hint="'--runs-dir'")
    if problem:
        raise click.UsageError(f"the runs folder {problem}; choose another with --runs-dir or --out")


def folder_problem(path: Path, must_be_empty: bool = False) -> str | None:
    """Why runs cannot be written into the folder `path` (made if missing), in a few words; None if they can."""
    existing = next(p for p in (path, *path.parents) if os.path.lexists(p))  # the folder to create it in
    limit = _pathconf(existing, "PC_NAME_MAX", 255)
    long = next((part for part in path.parts if len(os.fsencode(part)) > limit), None)
    if long is not None:
        shown = long if len(long) <= 40 else long[:40] + "..."
        return f"the name {shown!r} is {len(os.fsencode(long))} bytes long; names may have at most {limit}"
    if not existing.is_dir():
        return f"{existing} is not a folder"
    try:
        if existing == path and must_be_empty and any(path.iterdir()):
            return f"{path} is not empty; choose a new folder"
    except OSError as e:
        return f"{path} cannot be read ({e.strerror or type(e).__name__})"
    if not os.access(existing, os.W_OK | os.X_OK):
        why = "on a read-only file system" if _read_only(existing) else "not writable (permission denied)"
        return f"{path} is {why}" if existing == path else f"{path} cannot be made: {existing} is {why}"
    return None


def _pathconf(path: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(path, name)
    except (OSError, ValueError, AttributeError):  # not every system or file system answers
        return default


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def prepare_out(out: Path | None, runs_dir: Path | None, cfg: RunConfig) -> Path:
    if out is None:
        return new_run_dir(runs_dir or default_runs_dir(), cfg)
    out.mkdir(parents=True, exist_ok=True)
    return out

"""`fmtui runs [RUNS_DIR]`: every run folder in a runs folder, one line (or JSON object) each."""

from __future__ import annotations

from pathlib import Path

import click

from fmtui.errors import ExitCode, RunError, UsageError
from fmtui.report import json_line, run_facts, runs_table
from fmtui.runfolder.read import RunsFolder
from fmtui.text import safe_text


def run_list(runs_dir: Path, *, json_mode: bool = False) -> int:
    """`fmtui runs`: one line (or JSON object) per run folder, oldest first (the newest by the prompt)."""
    if not runs_dir.is_dir():
        raise RunError(runs_dir, "not a folder" if runs_dir.exists() else "no such folder")
    folder = RunsFolder(runs_dir)
    runs = list(reversed(folder.scan()))
    if folder.error:
        raise UsageError(folder.error)
    keys = [str(r.path.relative_to(runs_dir)) for r in runs]
    if json_mode:
        for run, key in zip(runs, keys):
            click.echo(json_line("run_folder", run_facts(run, key)))
    elif runs:
        click.echo(runs_table(runs, keys))
    else:
        click.echo(f"no runs in {safe_text(str(runs_dir))}", err=True)
    return ExitCode.OK

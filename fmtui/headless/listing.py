"""`fmtui runs [RUNS_DIR]`: every run folder in a runs folder, one line (or JSON object) each."""

from __future__ import annotations

from pathlib import Path

import click

from fmtui.errors import ExitCode, RunError, UsageError
from fmtui.report import json_line, run_facts, runs_table
from fmtui.runfolder.read import RunsFolder
from fmtui.runquery import Query, start_time
from fmtui.text import safe_text


def run_list(runs_dir: Path, *, json_mode: bool = False, query: Query | None = None) -> int:
    """`fmtui runs`: one line (or JSON object) per run folder, oldest first by when it started (the newest by
    the prompt; the Runs pane's order, upside down); with a query (`--filter`, fmtui.runquery), only the runs
    that match it."""
    if not runs_dir.is_dir():
        raise RunError(runs_dir, "not a folder" if runs_dir.exists() else "no such folder")
    folder = RunsFolder(runs_dir)
    runs = sorted(reversed(folder.scan()), key=start_time)
    if folder.error:
        raise UsageError(folder.error)
    keys = [str(r.path.relative_to(runs_dir)) for r in runs]
    if query:
        kept = [i for i, (run, key) in enumerate(zip(runs, keys)) if query.matches(run, key)]
        runs, keys = [runs[i] for i in kept], [keys[i] for i in kept]
    if json_mode:
        for run, key in zip(runs, keys):
            click.echo(json_line("run_folder", run_facts(run, key)))
    elif runs:
        click.echo(runs_table(runs, keys))
    else:
        match = f" match {query.text}" if query else ""
        click.echo(safe_text(f"no runs in {runs_dir}{match}"), err=True)
    return ExitCode.OK

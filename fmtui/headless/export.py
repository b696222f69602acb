"""`fmtui export --tensorboard DIR RUN...`: run folders (or folders of runs) as TensorBoard event files."""

from __future__ import annotations

from pathlib import Path

import click

from fmtui.errors import ExitCode
from fmtui.runfolder.read import BrokenRun, RunRecord, list_runs, read_run
from fmtui.runfolder.schema import CONFIG
from fmtui.text import plural, safe_text


def run_export(paths: list[Path], tensorboard_dir: Path) -> int:
    """Export run folders (or folders of runs, such as a sweep's) as TensorBoard event files, one line per run."""
    from fmtui.tensorboard import export_tensorboard

    runs: dict[str, RunRecord] = {}
    try:
        for path in paths:
            records = [read_run(path)] if (path / CONFIG).is_file() else list_runs(path)
            if not records:
                raise ValueError(f"{path} is not a fmtui run folder and holds none")
            for broken in [r for r in records if isinstance(r, BrokenRun)]:
                click.echo(safe_text(f"Skipped {broken.path}: {broken.reason}"), err=True)
            for record in [r for r in records if isinstance(r, RunRecord)]:
                name = str(Path(path.name) / record.path.relative_to(path))
                if runs.setdefault(name, record).path.resolve() != record.path.resolve():
                    raise ValueError(f"two runs would both be exported as {name}; export them one at a time")
        if not runs:
            raise ValueError("no readable run to export")
        folders = export_tensorboard(runs, tensorboard_dir)
    except ValueError as e:  # RunError and ExportError are ValueErrors too
        raise click.UsageError(safe_text(str(e))) from None
    for record, folder in zip(runs.values(), folders):
        click.echo(safe_text(f"{record.path} -> {folder} ({plural(len(record.metrics), 'epoch')})"))
    return ExitCode.OK

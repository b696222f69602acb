"""`fmtui sweep`: a grid of runs trained headless (fmtui.sweep, stacked where they can be), one line (or JSON
object) per finished run, then the ranked table. Every run, failed ones too, is in the table and in
summary.csv/.json with its status; a failed run makes the sweep exit 1 naming it."""

from __future__ import annotations

from pathlib import Path

import click

from fmtui import signals
from fmtui.config import RunConfig
from fmtui.errors import ConfigError, ExitCode, print_error
from fmtui.events import BatchProgress
from fmtui.headless.folders import check_out
from fmtui.headless.reporters import Lines, lines_for
from fmtui.report import format_table, run_json, summary_json, sweep_failed, sweep_header, sweep_line, sweep_stopped
from fmtui.runfolder.read import default_runs_dir
from fmtui.runfolder.schema import Status
from fmtui.runfolder.writer import new_sweep_dir
from fmtui.text import plural


def run_sweep_cli(
    configs: list[RunConfig], *, out: Path | None, runs_dir: Path | None, json_mode: bool, stacked: bool | None = None
) -> int:
    """Train a grid headless: one line (or JSON object) per finished run, then the ranked table."""
    from fmtui.sweep import Tally, rank, run_sweep, varying_fields

    check_out(out, runs_dir)
    _check_sweep_input(configs, stacked)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    sweep_dir = out or new_sweep_dir(runs_dir or default_runs_dir())
    varying = varying_fields(configs)
    if not json_mode:
        click.echo(
            sweep_header(len(configs), varying, configs[0].summary(configs), sweep_dir, _together(configs, stacked))
        )
    rows: list[dict] = []
    tally = Tally(configs)
    unsaved = None  # why summary.csv could not be written (a full disk, ...); the sweep goes on
    with signals.stopping() as stop, lines_for(json_mode, unit=" of the sweep") as lines:
        bar = SweepBar(lines, len(configs))
        try:
            for i, path, ev in run_sweep(configs, sweep_dir, should_stop=stop.reason, stacked=stacked):
                run = tally.add(i, path, ev)
                bar.event(i, ev, finished=run is not None)
                if run is not None:
                    rows.append(run.summary_row(varying))
                    unsaved = _write_summary(sweep_dir, rows)
                    lines.echo(run_json(rows[-1]) if json_mode else sweep_line(len(rows), len(configs), rows[-1]))
        except KeyboardInterrupt:
            stop.set()
    ranked, by = rank(rows)
    if json_mode:
        click.echo(summary_json(ranked, by, sweep_dir))
    elif rows:
        click.echo(format_table(ranked, by, varying))
        if not unsaved:
            click.echo(f"Summary: {sweep_dir / 'summary.csv'}")
    if unsaved:
        print_error(unsaved)
    if stop.is_set():
        finished = sum(r.status in (Status.COMPLETED, Status.DIVERGED) for r in tally.runs)
        click.echo(sweep_stopped(finished, len(configs)), err=True)
        return stop.exit_code
    failed = [row for row in rows if row["status"] == Status.ERROR]
    if failed:
        click.echo(sweep_failed(failed, len(configs), sweep_dir / "summary.csv"), err=True)
    return ExitCode.FAILED if failed or unsaved else ExitCode.OK


class SweepBar:
    """The sweep's progress bar (on stderr, where it is a terminal): runs done, and how far the runs training
    now have come (a stacked group trains several at once), as a share of the whole sweep."""

    def __init__(self, lines: Lines, runs: int):
        self.lines, self.runs, self.done = lines, runs, 0
        self.training: dict[int, float] = {}
        """The share of its batches each run in training has done."""

    def event(self, i: int, ev: object, finished: bool) -> None:
        info = ""
        if finished:
            self.training.pop(i, None)
            self.done += 1
        elif isinstance(ev, BatchProgress):
            self.training[i] = ((ev.epoch - 1) * ev.batches + ev.batch) / (ev.epochs * ev.batches)
            info = f"training {plural(len(self.training), 'run')}: epoch {ev.epoch}/{ev.epochs} · batch {ev.batch}/{ev.batches}"
        else:
            return
        done = f"Sweep: {self.done}/{self.runs} runs done"
        self.lines.show(done, self.done + sum(self.training.values()), self.runs, info)


def _write_summary(sweep_dir: Path, rows: list[dict]) -> str | None:
    """Write summary.csv and .json; None, or why they could not be written (one line)."""
    from fmtui.sweep import write_summary

    try:
        write_summary(sweep_dir, rows)
    except OSError as e:
        return f"cannot write the sweep summary in {sweep_dir} ({e.strerror or type(e).__name__})"
    return None


def _check_sweep_input(configs: list[RunConfig], stacked: bool | None) -> None:
    """Fail on missing data, devices or memory before any folder is made."""
    from fmtui import engine
    from fmtui.data import load_dataset
    from fmtui.resources import check_memory
    from fmtui.stacking import groups

    try:
        data = {(c.dataset, c.data_dir): load_dataset(c.dataset, c.data_dir) for c in configs}
        devices = {c.device: engine.resolve_device(c.device) for c in configs}
        for group in groups(configs, stacked):
            cfg = configs[group[0]]
            ds = data[cfg.dataset, cfg.data_dir]
            images = len(ds.y_train), len(ds.y_test)
            check_memory(cfg, ds.shape, len(ds.classes), images, devices[cfg.device], len(group))
    except ConfigError as e:
        raise click.UsageError(str(e)) from None


def _together(configs: list[RunConfig], stacked: bool | None) -> int:
    """How many of the configs train stacked (in groups of two or more)."""
    from fmtui.stacking import groups

    return sum(len(g) for g in groups(configs, stacked) if len(g) > 1)

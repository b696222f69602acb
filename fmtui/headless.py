"""Headless consumers of the engine: epoch lines (the lecture's format), a Rich progress bar, or JSON.

`run_training` owns the things a script cares about: the run folder, Ctrl+C (stop after the current
batch, keep the metrics, exit 130), one-line errors and exit codes (fmtui.report.ExitCode).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from fmtui.config import ConfigError, RunConfig
from fmtui.events import BatchProgress, EpochEnd, Event, Finished, Started
from fmtui.recorder import RunRecorder, new_run_dir, new_sweep_dir
from fmtui.report import (
    ExitCode,
    closing_line,
    epoch_line,
    error_line,
    error_message,
    eval_diverged,
    eval_note,
    eval_text,
    event_json,
    format_table,
    header_line,
    health_line,
    lr_find_header,
    lr_find_json,
    lr_find_text,
    printable,
    run_facts,
    run_json,
    runs_table,
    summary_json,
    sweep_header,
    sweep_line,
    sweep_stopped,
)
from fmtui.runs import RunError, RunsFolder, atomic_write, default_runs_dir, load_state_dict, read_run


class Reporter:
    """Plain lines: header, one line per epoch, a closing line. Used when stdout is not a terminal."""

    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.health = "ok"
        """The health state last reported: its hint is printed once, when the state changes."""

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def handle(self, ev: Event, run_dir: Path | None) -> None:
        match ev:
            case Started():
                self.print(header_line(ev))
            case EpochEnd():
                self.print(epoch_line(ev))
                if ev.health.state != self.health and not ev.health.ok:
                    self.print(health_line(ev.health))
                self.health = ev.health.state


class JsonReporter(Reporter):
    def handle(self, ev: Event, run_dir: Path | None) -> None:
        self.print(json.dumps(event_json(ev, run_dir)))


class RichReporter(Reporter):
    """Epoch lines plus a live progress bar with loss, samples/s and ETA (stdout is a terminal)."""

    def __enter__(self) -> RichReporter:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            transient=True,
        )
        self.progress.__enter__()
        self.task = None
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def print(self, text: str) -> None:
        self.progress.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def handle(self, ev: Event, run_dir: Path | None) -> None:
        match ev:
            case Started():
                self.task = self.progress.add_task("Epoch 1", total=ev.batches_per_epoch * ev.config.epochs, info="")
            case BatchProgress():
                self.progress.update(
                    self.task,
                    completed=(ev.epoch - 1) * ev.batches + ev.batch,
                    description=f"Epoch {ev.epoch}/{ev.epochs}",
                    info=f"loss {ev.loss:.4f}  acc {ev.accuracy:.1f}%  {ev.samples_per_s:,.0f} samples/s",
                )
            case EpochEnd():
                self.progress.update(self.task, completed=ev.epoch * (self.progress.tasks[0].total // ev.epochs))
        super().handle(ev, run_dir)


@contextmanager
def stop_on_sigint() -> Iterator[threading.Event]:
    """First Ctrl+C sets the event (the engine stops after the current batch); a second one aborts."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nStopping after the current batch (Ctrl+C again to abort)...", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def make_reporter(json_mode: bool) -> Reporter:
    if json_mode:
        return JsonReporter()
    return RichReporter() if sys.stdout.isatty() else Reporter()


def check_out(out: Path | None) -> None:
    """Refuse an --out folder that already holds something, before any training time is spent."""
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise click.BadParameter(f"{out} is not empty; choose a new folder", param_hint="'--out'")


def prepare_out(out: Path | None, runs_dir: Path | None, cfg: RunConfig) -> Path:
    if out is None:
        return new_run_dir(runs_dir or default_runs_dir(), cfg)
    out.mkdir(parents=True, exist_ok=True)
    return out


def run_training(
    cfg: RunConfig,
    *,
    out: Path | None = None,
    runs_dir: Path | None = None,
    json_mode: bool = False,
    reporter: Reporter | None = None,
) -> int:
    """Train headless, write the run folder, report; return the exit code."""
    from fmtui import engine
    from fmtui.data import DataError

    check_out(out)
    recorder = RunRecorder(lambda c: prepare_out(out, runs_dir, c))
    with stop_on_sigint() as stop, reporter or make_reporter(json_mode) as rep:
        try:
            with recorder:
                for ev in engine.train(cfg, should_stop=stop.is_set):
                    rep.handle(ev, recorder.handle(ev))
        except ConfigError as e:
            raise click.UsageError(str(e)) from None
        except DataError as e:
            raise _data_error(e) from None
        except KeyboardInterrupt as e:
            return _abort(e, recorder.path(), ExitCode.INTERRUPTED)
        except Exception as e:  # device errors (CUDA out of memory, ...): one line, metrics kept
            return _abort(e, recorder.path(), ExitCode.FAILED, debug=True)
    return _closing(ev, recorder.path(), json_mode)


def _data_error(e: Exception) -> click.ClickException:
    err = click.ClickException(str(e))
    err.exit_code = ExitCode.USAGE
    return err


def _abort(exc: BaseException, run_dir: Path | None, code: ExitCode, debug: bool = False) -> ExitCode:
    """An error ended the run (the recorder has written it into the run folder): say so, in one line."""
    if debug and os.environ.get("FMTUI_DEBUG"):
        raise exc
    click.echo(error_line(error_message(exc), run_dir), err=True)
    return code


def _closing(ev: Finished, run_dir: Path | None, json_mode: bool) -> ExitCode:
    if not json_mode:
        click.echo(closing_line(ev, run_dir), err=ev.status != "completed")
    return ExitCode.of_status(ev.status)


def run_lr_find(cfg: RunConfig, *, out: Path | None = None, json_mode: bool = False, **search: Any) -> int:
    """`fmtui --no-ui lr-find`: the LR range test (fmtui.lrfind) on fresh weights; print the suggestion, write the
    curve as CSV (out, else RUNS_DIR/lr-find/<date>-<config>.csv). Exit 0 with a suggestion, 1 without one (or
    when the device fails), 130 when stopped by Ctrl+C (the curve so far is written)."""
    from fmtui import lrfind
    from fmtui.data import DataError

    start, end = search.get("start_lr", lrfind.START_LR), search.get("end_lr", lrfind.END_LR)
    if start >= end:
        raise click.UsageError(f"--start-lr {start:g} must be below --end-lr {end:g}")
    with stop_on_sigint() as stop:
        try:
            for ev in lrfind.lr_find(cfg, should_stop=stop.is_set, **search):
                if isinstance(ev, lrfind.Started) and not json_mode:
                    click.echo(lr_find_header(ev))
            path = out or _curve_path(default_runs_dir() / "lr-find", cfg)
            _write_curve(path, ev)
        except ConfigError as e:
            raise click.UsageError(str(e)) from None
        except DataError as e:
            raise _data_error(e) from None
        except KeyboardInterrupt as e:
            return _abort(e, None, ExitCode.INTERRUPTED)
        except Exception as e:  # the device failed, or the curve could not be written: one line
            return _abort(e, None, ExitCode.FAILED, debug=True)
    click.echo(json.dumps(lr_find_json(ev, path)) if json_mode else lr_find_text(ev, path))
    if ev.status == "stopped":
        return ExitCode.INTERRUPTED
    return ExitCode.OK if ev.suggested_lr is not None else ExitCode.FAILED


def _curve_path(base: Path, cfg: RunConfig) -> Path:
    """base/<date-time>-<dataset>-<model>-<norm>[-N].csv: a file that does not exist yet."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{time.strftime('%Y%m%d-%H%M%S')}-{cfg.dataset}-{cfg.model}-{cfg.norm}")
    return next(p for i in range(10**6) if not (p := base / f"{stem}{f'-{i}' if i else ''}.csv").exists())


def _write_curve(path: Path, ev: Any) -> None:
    """The finder's curve as CSV: step, lr, loss, smoothed (one row per step)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["step", "lr", "loss", "smoothed"])
    writer.writerows([i, lr, loss, s] for i, (lr, loss, s) in enumerate(zip(ev.lrs, ev.losses, ev.smoothed), 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, buf.getvalue())


def run_eval(run_dir: Path, *, device: str | None = None, data_dir: Path | None = None, json_mode: bool = False) -> int:
    """Evaluate a run folder's model.pt on the test split; print loss and accuracy (and the recorded one).

    Exit codes: 0 evaluated (an interrupted or running run too: model.pt holds its last complete epoch);
    1 the run diverged (its weights are not a trained model) or the evaluation failed on the device;
    2 no such folder, not a run, or a file of it broken (one line naming the file). model.pt is only ever
    loaded with weights_only=True."""
    from fmtui import engine
    from fmtui.data import DataError

    try:
        record = read_run(run_dir)
        if record.status == "interrupted" and not (run_dir / "model.pt").exists():
            raise RunError(run_dir, f"{record.message}, before it saved a model (no model.pt)")
        load_state_dict(run_dir / "model.pt")  # checked here, so that what fails is named
        note = eval_note(record.status, record.message, record.epochs_done)
        if note and not json_mode:
            click.echo(note, err=True)
        results, seconds = engine.evaluate_saved(
            record.config, run_dir / "model.pt", device=device, data_dir=str(data_dir) if data_dir else None
        )
    except (RunError, ConfigError) as e:  # ConfigError: model.pt does not fit config.json, no such device
        raise _bad_run(e) from None
    except DataError as e:
        raise _data_error(e) from None
    except Exception as e:  # the device failed (out of memory, ...): one line
        return _abort(e, None, ExitCode.FAILED, debug=True)
    diverged = record.status == "diverged" or not math.isfinite(results.loss)
    recorded = record.final_accuracy
    if json_mode:
        click.echo(
            json.dumps(
                {
                    "run_dir": str(run_dir),
                    "status": record.status,
                    "epochs_done": record.epochs_done,
                    "diverged": diverged,
                    "test_loss": results.loss if math.isfinite(results.loss) else None,
                    "test_accuracy": results.accuracy,
                    "recorded_test_accuracy": recorded,
                    "seconds": seconds,
                }
            )
        )
    else:
        click.echo(eval_text(record.config.summary(), results.loss, results.accuracy, recorded))
    if diverged:
        if not json_mode:
            click.echo(eval_diverged(record.message if record.status == "diverged" else ""), err=True)
        return ExitCode.FAILED
    return ExitCode.OK


def _bad_run(e: Exception) -> click.ClickException:
    """A run folder that cannot be used: one line (folder names made printable), exit 2, no usage hint."""
    return _data_error(ValueError(printable(str(e))))


def run_list(runs_dir: Path, *, json_mode: bool = False) -> int:
    """`fmtui --no-ui runs`: one line (or JSON object) per run folder, oldest first (the newest by the prompt)."""
    if not runs_dir.is_dir():
        raise _bad_run(RunError(runs_dir, "not a folder" if runs_dir.exists() else "no such folder"))
    folder = RunsFolder(runs_dir)
    runs = list(reversed(folder.scan()))
    if folder.error:
        raise _bad_run(ValueError(folder.error))
    keys = [str(r.path.relative_to(runs_dir)) for r in runs]
    if json_mode:
        for run, key in zip(runs, keys):
            click.echo(json.dumps(run_facts(run, key)))
    elif runs:
        click.echo(runs_table(runs, keys))
    else:
        click.echo(f"no runs in {printable(str(runs_dir))}", err=True)
    return ExitCode.OK


def run_sweep_cli(
    configs: list[RunConfig], *, out: Path | None, runs_dir: Path | None, json_mode: bool, stacked: bool = True
) -> int:
    """Train a grid headless: one line (or JSON object) per finished run, then the ranked table."""
    from fmtui.config import cli_name
    from fmtui.sweep import Tally, rank, run_sweep, varying_fields, write_summary

    check_out(out)
    _check_sweep_input(configs)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    sweep_dir = out or new_sweep_dir(runs_dir or default_runs_dir())
    varying = varying_fields(configs)
    if not json_mode:
        click.echo(sweep_header(len(configs), varying, configs[0].summary(), sweep_dir, _together(configs, stacked)))
    rows: list[dict] = []
    tally = Tally(configs)
    with stop_on_sigint() as stop:
        try:
            for i, path, ev in run_sweep(configs, sweep_dir, should_stop=stop.is_set, stacked=stacked):
                run = tally.add(i, path, ev)
                if run is not None:
                    rows.append(run.summary_row(varying))
                    write_summary(sweep_dir, rows)
                    click.echo(run_json(rows[-1]) if json_mode else sweep_line(len(rows), len(configs), rows[-1]))
        except KeyboardInterrupt:
            stop.set()
    ranked, by = rank(rows)
    if json_mode:
        click.echo(summary_json(ranked, by, sweep_dir))
    elif rows:
        click.echo(format_table(ranked, by, [cli_name(f) for f in varying]))
        click.echo(f"Summary: {sweep_dir / 'summary.csv'}")
    if stop.is_set():
        click.echo(sweep_stopped(len(rows), len(configs)), err=True)
        return ExitCode.INTERRUPTED
    return ExitCode.OK


def _check_sweep_input(configs: list[RunConfig]) -> None:
    """Fail on missing data or devices before any folder is made."""
    from fmtui import engine
    from fmtui.data import DataError, load_dataset

    try:
        for dataset, data_dir in {(c.dataset, c.data_dir) for c in configs}:
            load_dataset(dataset, data_dir)
        for device in {c.device for c in configs}:
            engine.resolve_device(device)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    except DataError as e:
        raise _data_error(e) from None


def _together(configs: list[RunConfig], stacked: bool) -> int:
    """How many of the configs train stacked (in groups of two or more)."""
    from fmtui.batched import batch_groups

    return sum(len(g) for g in batch_groups(configs) if len(g) > 1) if stacked else 0

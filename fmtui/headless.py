"""Headless consumers of the engine: epoch lines (the lecture's format), a Rich progress bar, or JSON.

`run_training` (and `resume_training`) own the things a script cares about: the run folder, signals
(Ctrl+C, SIGTERM, SIGHUP, SIGQUIT: stop after the current batch, keep the finished epochs, exit 128 +
the signal's number), one-line errors and exit codes (fmtui.report.ExitCode).
"""

from __future__ import annotations

import csv
import io
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
from fmtui.recorder import RunFolderError, RunFolderRefused, RunRecorder, new_run_dir, new_sweep_dir
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
    json_line,
    lr_find_header,
    lr_find_json,
    lr_find_text,
    plural,
    printable,
    run_facts,
    run_json,
    runs_table,
    summary_json,
    sweep_failed,
    sweep_header,
    sweep_line,
    sweep_stopped,
)
from fmtui.runs import (
    BrokenRun,
    RunError,
    RunsFolder,
    atomic_write,
    default_runs_dir,
    list_runs,
    load_state_dict,
    read_run,
)


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
        self.print(event_json(ev, run_dir))


class RichReporter(Reporter):
    """Epoch lines plus a live progress bar with loss, samples/s and ETA (stdout is a terminal).

    The bar, its percentage and its ETA cover the whole run; the text before it says where in the epoch the
    run is ("Epoch 2/3 · batch 422/938"), so no count mixes an epoch's label with the run's batches."""

    def __enter__(self) -> RichReporter:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}% of the run"),
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
                    description=f"Epoch {ev.epoch}/{ev.epochs} · batch {ev.batch}/{ev.batches}",
                    info=f"loss {ev.loss:.4f}  acc {ev.accuracy:.1f}%  {ev.samples_per_s:,.0f} samples/s",
                )
            case EpochEnd():
                self.progress.update(self.task, completed=ev.epoch * (self.progress.tasks[0].total // ev.epochs))
        super().handle(ev, run_dir)


STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
"""Signals that stop a headless run after the current batch: Ctrl+C, kill, a dropped SSH session, Ctrl+\\."""


def signal_label(signum: int) -> str:
    return "Ctrl+C" if signum == signal.SIGINT else signal.Signals(signum).name


class Stop:
    """What the signals asked for: nothing yet; stop after the current batch (the first one); abort (the
    second one raises KeyboardInterrupt); a third one ends the process at once, as if unhandled."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        """The signal that stopped the run, then the one that aborted it (None: none came)."""
        self.aborting = False

    def is_set(self) -> bool:
        return self.event.is_set()

    def set(self, signum: int = signal.SIGINT) -> None:
        self.signum = self.signum or signum
        self.event.set()

    def reason(self) -> str | bool:
        """The engine's stop check: False goes on; True (Ctrl+C) stops; a signal's name stops and says so."""
        if not self.event.is_set():
            return False
        return True if self.signum in (None, signal.SIGINT) else signal_label(self.signum)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.of_signal(self.signum or signal.SIGINT)

    def handler(self, signum: int, frame: Any) -> None:
        label = signal_label(signum)
        if self.aborting:  # the third signal: die of it, as if there were no handler
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if self.event.is_set():
            self.aborting, self.signum = True, signum
            raise KeyboardInterrupt(f"aborted by a second {label}")
        self.set(signum)
        again = "Ctrl+C again" if signum == signal.SIGINT else f"{label} or Ctrl+C again"
        print(f"\n{label}: stopping after the current batch ({again} to abort)...", file=sys.stderr, flush=True)


@contextmanager
def stop_on_signals() -> Iterator[Stop]:
    """Stop (after the current batch) on the first of STOP_SIGNALS; abort on the second.

    A signal that was ignored when the process started stays ignored: under `nohup` a run keeps training
    when the terminal hangs up. Outside the main thread no handler can be installed: only `set` stops.
    """
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {}
    for name in STOP_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) != signal.SIG_IGN:
            previous[signum] = signal.signal(signum, stop.handler)
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


stop_on_sigint = stop_on_signals
"""The old name (sweeps use it): Ctrl+C and the other stop signals alike."""


def make_reporter(json_mode: bool) -> Reporter:
    if json_mode:
        return JsonReporter()
    return RichReporter() if sys.stdout.isatty() else Reporter()


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


def run_training(
    cfg: RunConfig,
    *,
    out: Path | None = None,
    runs_dir: Path | None = None,
    json_mode: bool = False,
    reporter: Reporter | None = None,
    progress_interval: float = 0.1,
) -> int:
    """Train headless, write the run folder, report; return the exit code."""
    check_out(out)
    recorder = RunRecorder(lambda c: prepare_out(out, runs_dir, c))
    return _train(cfg, recorder, reporter or make_reporter(json_mode), json_mode, interval=progress_interval)


def resume_training(
    run_dir: Path,
    *,
    epochs: int | None = None,
    json_mode: bool = False,
    reporter: Reporter | None = None,
    progress_interval: float = 0.1,
    **changes: Any,
) -> int:
    """Go on training an interrupted, stopped or completed run in its own folder (fmtui.recorder.open_resume
    says which can); `epochs` is the total to reach. Return the exit code."""
    from fmtui.resume import open_resume

    try:
        resume = open_resume(run_dir, epochs, **changes)
    except (RunFolderRefused, RunFolderError) as e:  # a folder we may not write is bad input: nothing trained
        raise _usage_line(str(e)) from None
    with resume:
        recorder = RunRecorder(lambda c: resume.path, resume=resume)
        rep = reporter or make_reporter(json_mode)
        return _train(resume.config, recorder, rep, json_mode, resume, interval=progress_interval)


def _train(
    cfg: RunConfig,
    recorder: RunRecorder,
    reporter: Reporter,
    json_mode: bool,
    resume: Any = None,
    interval: float = 0.1,
) -> int:
    """The events of one run into its recorder and the reporter (progress every `interval` seconds); signals
    stop it; errors become one line."""
    from fmtui import engine
    from fmtui.data import DataError

    checkpoint = resume.checkpoint if resume is not None else None
    with stop_on_signals() as stop, reporter as rep:
        try:
            with recorder:
                for ev in engine.train(cfg, should_stop=stop.reason, resume=checkpoint, progress_interval=interval):
                    rep.handle(ev, recorder.handle(ev))
                    if isinstance(ev, Started) and ev.resumed_from and not json_mode:
                        rep.print(f"Resumed {recorder.path()} after epoch {ev.resumed_from} of {cfg.epochs}")
        except RunFolderRefused as e:  # another writer took the folder first
            raise _usage_line(str(e)) from None
        except ConfigError as e:
            if resume is not None:  # the folder, not an option, is to blame
                raise _usage_line(f"cannot resume {resume.path}: {e}") from None
            raise click.UsageError(str(e)) from None
        except DataError as e:
            raise _data_error(e) from None
        except KeyboardInterrupt as e:
            return _abort(e, recorder.path(), stop.exit_code)
        except RunFolderError as e:  # the disk is full, read-only, ...: after training began, a failure
            return _abort(e, recorder.path() if e.began else None, ExitCode.FAILED if e.began else ExitCode.USAGE)
        except Exception as e:  # device errors (CUDA out of memory, ...): one line, metrics kept
            return _abort(e, recorder.path(), ExitCode.FAILED, debug=True)
    return _closing(ev, recorder.path(), json_mode, stop)


def _data_error(e: Exception) -> click.ClickException:
    err = click.ClickException(str(e))
    err.exit_code = ExitCode.USAGE
    return err


def _usage_line(message: str) -> click.ClickException:
    """Bad input that is no misuse of an option: one line, exit 2, no pointer to --help."""
    err = click.ClickException(message)
    err.exit_code = ExitCode.USAGE
    return err


def _abort(exc: BaseException, run_dir: Path | None, code: ExitCode, debug: bool = False) -> ExitCode:
    """An error ended the run (the recorder has written it into the run folder): say so, in one line."""
    if debug and os.environ.get("FMTUI_DEBUG"):
        raise exc
    click.echo(error_line(error_message(exc), run_dir), err=True)
    return code


def _closing(ev: Finished, run_dir: Path | None, json_mode: bool, stop: Stop) -> ExitCode:
    if not json_mode:
        click.echo(closing_line(ev, run_dir), err=ev.status != "completed")
    return stop.exit_code if ev.status == "stopped" else ExitCode.of_status(ev.status)


def run_lr_find(
    cfg: RunConfig, *, out: Path | None = None, runs_dir: Path | None = None, json_mode: bool = False, **search: Any
) -> int:
    """`fmtui lr-find`: the LR range test (fmtui.lrfind) on fresh weights; print the suggestion, write the
    curve as CSV (out, else RUNS_DIR/lr-find/<date>-<config>.csv). Exit 0 with a suggestion, 1 without one (or
    when the device fails), 128 + the signal when stopped by Ctrl+C or another stop signal (the curve so far is
    written)."""
    from fmtui import lrfind
    from fmtui.data import DataError

    start, end = search.get("start_lr", lrfind.START_LR), search.get("end_lr", lrfind.END_LR)
    if start >= end:
        raise click.UsageError(f"--start-lr {start:g} must be below --end-lr {end:g}")
    with stop_on_signals() as stop:
        try:
            for ev in lrfind.lr_find(cfg, should_stop=stop.is_set, **search):
                if isinstance(ev, lrfind.Started):
                    started = ev
                    if not json_mode:
                        click.echo(lr_find_header(ev))
            path = out or _curve_path((runs_dir or default_runs_dir()) / "lr-find", cfg)
            _write_curve(path, ev)
        except ConfigError as e:
            raise click.UsageError(str(e)) from None
        except DataError as e:
            raise _data_error(e) from None
        except KeyboardInterrupt as e:
            return _abort(e, None, ExitCode.INTERRUPTED)
        except Exception as e:  # the device failed, or the curve could not be written: one line
            return _abort(e, None, ExitCode.FAILED, debug=True)
    click.echo(lr_find_json(started, ev, path) if json_mode else lr_find_text(ev, path))
    if ev.status == "stopped":
        return stop.exit_code
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
        if record.status == "diverged" and not (run_dir / "model.pt").exists():
            return _diverged_without_model(record, run_dir, json_mode)
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
        fields = {"run_dir": str(run_dir), "status": record.status, "epochs_done": record.epochs_done}
        fields |= {"diverged": diverged, "test_loss": results.loss if math.isfinite(results.loss) else None}
        click.echo(
            json_line(
                "eval",
                fields | {"test_accuracy": results.accuracy, "recorded_test_accuracy": recorded, "seconds": seconds},
            )
        )
    else:
        click.echo(eval_text(record.config.summary(), results.loss, results.accuracy, recorded))
    if diverged:
        if not json_mode:
            if record.status == "diverged":
                click.echo(eval_diverged(record.message, record.epochs_done), err=True)
            else:
                click.echo(eval_diverged(""), err=True)
        return ExitCode.FAILED
    return ExitCode.OK


def _diverged_without_model(record: Any, run_dir: Path, json_mode: bool) -> int:
    """A run that diverged before its first complete epoch saved no weights: say so (exit 1), nothing to load."""
    if json_mode:
        facts = {"run_dir": str(run_dir), "status": "diverged", "epochs_done": record.epochs_done, "diverged": True}
        nothing = {"test_loss": None, "test_accuracy": None, "recorded_test_accuracy": None, "seconds": None}
        click.echo(json_line("eval", facts | nothing))
    else:
        click.echo(eval_diverged(record.message, 0), err=True)
    return ExitCode.FAILED


def _bad_run(e: Exception) -> click.ClickException:
    """A run folder that cannot be used: one line (folder names made printable), exit 2, no usage hint."""
    return _data_error(ValueError(printable(str(e))))


def run_list(runs_dir: Path, *, json_mode: bool = False) -> int:
    """`fmtui runs`: one line (or JSON object) per run folder, oldest first (the newest by the prompt)."""
    if not runs_dir.is_dir():
        raise _bad_run(RunError(runs_dir, "not a folder" if runs_dir.exists() else "no such folder"))
    folder = RunsFolder(runs_dir)
    runs = list(reversed(folder.scan()))
    if folder.error:
        raise _bad_run(ValueError(folder.error))
    keys = [str(r.path.relative_to(runs_dir)) for r in runs]
    if json_mode:
        for run, key in zip(runs, keys):
            click.echo(json_line("run_folder", run_facts(run, key)))
    elif runs:
        click.echo(runs_table(runs, keys))
    else:
        click.echo(f"no runs in {printable(str(runs_dir))}", err=True)
    return ExitCode.OK


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
        click.echo(sweep_header(len(configs), varying, configs[0].summary(), sweep_dir, _together(configs, stacked)))
    rows: list[dict] = []
    tally = Tally(configs)
    unsaved = None  # why summary.csv could not be written (a full disk, ...); the sweep goes on
    with stop_on_sigint() as stop:
        try:
            for i, path, ev in run_sweep(configs, sweep_dir, should_stop=stop.is_set, stacked=stacked):
                run = tally.add(i, path, ev)
                if run is not None:
                    rows.append(run.summary_row(varying))
                    unsaved = _write_summary(sweep_dir, rows)
                    click.echo(run_json(rows[-1]) if json_mode else sweep_line(len(rows), len(configs), rows[-1]))
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
        click.echo(f"Error: {unsaved}", err=True)
    if stop.is_set():
        click.echo(
            sweep_stopped(sum(r.status in ("completed", "diverged") for r in tally.runs), len(configs)), err=True
        )
        return ExitCode.INTERRUPTED
    failed = [row for row in rows if row["status"] == "error"]
    if failed:
        click.echo(sweep_failed(failed, len(configs), sweep_dir / "summary.csv"), err=True)
    return ExitCode.FAILED if failed or unsaved else ExitCode.OK


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
    from fmtui.data import DataError, load_dataset
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
    except DataError as e:
        raise _data_error(e) from None


def _together(configs: list[RunConfig], stacked: bool | None) -> int:
    """How many of the configs train stacked (in groups of two or more)."""
    from fmtui.stacking import groups

    return sum(len(g) for g in groups(configs, stacked) if len(g) > 1)


def run_export(paths: list[Path], tensorboard_dir: Path) -> int:
    """Export run folders (or folders of runs, such as a sweep's) as TensorBoard event files, one line per run."""
    from fmtui.runs import RunRecord
    from fmtui.tensorboard import ExportError, export_tensorboard

    runs: dict[str, RunRecord] = {}
    try:
        for path in paths:
            records = [read_run(path)] if (path / "config.json").is_file() else list_runs(path)
            if not records:
                raise ValueError(f"{path} is not a fmtui run folder and holds none")
            for broken in [r for r in records if isinstance(r, BrokenRun)]:
                click.echo(printable(f"Skipped {broken.path}: {broken.reason}"), err=True)
            for record in [r for r in records if not isinstance(r, BrokenRun)]:
                name = str(Path(path.name) / record.path.relative_to(path))
                if runs.setdefault(name, record).path.resolve() != record.path.resolve():
                    raise ValueError(f"two runs would both be exported as {name}; export them one at a time")
        if not runs:
            raise ValueError("no readable run to export")
        folders = export_tensorboard(runs, tensorboard_dir)
    except (ValueError, ExportError) as e:  # RunError is a ValueError too
        raise click.UsageError(printable(str(e))) from None
    for record, folder in zip(runs.values(), folders):
        click.echo(f"{record.path} -> {folder} ({plural(len(record.metrics), 'epoch')})")
    return ExitCode.OK

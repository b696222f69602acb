"""Headless consumers of the engine: epoch lines (the lecture's format), a Rich progress bar, or JSON.

`run_training` owns the things a script cares about: the run folder, Ctrl+C (stop after the current
batch, keep the metrics, exit 130), one-line errors and exit codes (0 ok, 1 diverged/failed, 2 bad input).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from fmtui.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from fmtui.config import ConfigError, RunConfig
from fmtui.runs import RunWriter, default_runs_dir, new_run_dir, read_run


def epoch_line(ev: Any) -> str:
    """`Epoch [1/5], Loss: 0.7866, Accuracy: 74.73%, Test Loss: 0.5817, Test Accuracy: 79.18%` (+ val, time)."""
    line = (
        f"Epoch [{ev.epoch}/{ev.epochs}], Loss: {ev.train_loss:.4f}, Accuracy: {ev.train_accuracy:.2f}%, "
        f"Test Loss: {ev.test_loss:.4f}, Test Accuracy: {ev.test_accuracy:.2f}%"
    )
    if ev.val_accuracy is not None:
        line += f", Val Loss: {ev.val_loss:.4f}, Val Accuracy: {ev.val_accuracy:.2f}%"
    return line + f", Time: {ev.seconds:.2f}s"


def header_line(ev: Any) -> str:
    cfg = ev.config
    split = f"{ev.n_train:,} train" + (f" / {ev.n_val:,} val" if ev.n_val else "") + f" / {ev.n_test:,} test"
    return (
        f"{ev.dataset} ({split}) on {ev.device} | {ev.model}, {ev.params:,} parameters | "
        f"{ev.norm.describe()} | {cfg.optimizer} lr {cfg.lr:g}, batch {cfg.batch_size}, {_plural(cfg.epochs, 'epoch')}"
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def event_json(ev: Any, run_dir: Path | None) -> dict:
    """One JSON object per event, for --json."""
    kind = type(ev).__name__
    if kind == "Started":
        return {
            "event": "started",
            "config": ev.config.to_dict(),
            "dataset": ev.dataset,
            "device": ev.device,
            "model": ev.model,
            "params": ev.params,
            "n_train": ev.n_train,
            "n_val": ev.n_val,
            "n_test": ev.n_test,
            "batches_per_epoch": ev.batches_per_epoch,
            "norm": ev.norm.describe(),
            "run_dir": str(run_dir),
        }
    if kind == "BatchProgress":
        return {
            "event": "progress",
            **{
                k: getattr(ev, k)
                for k in (
                    "epoch",
                    "epochs",
                    "batch",
                    "batches",
                    "loss",
                    "accuracy",
                    "samples_per_s",
                    "elapsed",
                    "eta",
                    "step",
                )
            },
        }
    if kind == "EpochEnd":
        return {"event": "epoch", **ev.metrics()}
    return {
        "event": "finished",
        "status": ev.status,
        "message": ev.message,
        "seconds": ev.seconds,
        "epochs_done": len(ev.history),
        "run_dir": str(run_dir),
        "final": ev.history[-1].metrics() if ev.history else None,
    }


class Reporter:
    """Plain lines: header, one line per epoch, a closing line. Used when stdout is not a terminal."""

    def __init__(self, out=None):
        self.out = out or sys.stdout

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def handle(self, ev: Any, run_dir: Path | None) -> None:
        kind = type(ev).__name__
        if kind == "Started":
            self.print(header_line(ev))
        elif kind == "EpochEnd":
            self.print(epoch_line(ev))


class JsonReporter(Reporter):
    def handle(self, ev: Any, run_dir: Path | None) -> None:
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

    def handle(self, ev: Any, run_dir: Path | None) -> None:
        kind = type(ev).__name__
        if kind == "Started":
            self.task = self.progress.add_task("Epoch 1", total=ev.batches_per_epoch * ev.config.epochs, info="")
        elif kind == "BatchProgress":
            done = (ev.epoch - 1) * ev.batches + ev.batch
            self.progress.update(
                self.task,
                completed=done,
                description=f"Epoch {ev.epoch}/{ev.epochs}",
                info=f"loss {ev.loss:.4f}  acc {ev.accuracy:.1f}%  {ev.samples_per_s:,.0f} samples/s",
            )
        elif kind == "EpochEnd":
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
    writer: RunWriter | None = None
    run_dir: Path | None = None
    with stop_on_sigint() as stop, reporter or make_reporter(json_mode) as rep:
        try:
            for ev in engine.train(cfg, should_stop=stop.is_set):
                if writer is None:  # Started: data and model are ready, so the run really begins
                    run_dir = prepare_out(out, runs_dir, cfg)
                    writer = RunWriter(run_dir, cfg)
                writer.handle(ev)
                rep.handle(ev, run_dir)
        except (ConfigError, DataError) as e:
            raise (click.UsageError(str(e)) if isinstance(e, ConfigError) else _data_error(e)) from None
        except KeyboardInterrupt:
            return _abort(writer, run_dir, "aborted by a second Ctrl+C")
        except Exception as e:  # device errors (CUDA out of memory, ...): one line, metrics kept
            return _abort(writer, run_dir, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", debug=e)
    return _closing(ev, run_dir, json_mode)


def _data_error(e: Exception) -> click.ClickException:
    err = click.ClickException(str(e))
    err.exit_code = EXIT_USAGE
    return err


def _abort(writer: RunWriter | None, run_dir: Path | None, message: str, debug: Exception | None = None) -> int:
    if writer is not None:
        writer.fail(message)
    if debug is not None and os.environ.get("FMTUI_DEBUG"):
        raise debug
    where = f"; metrics so far are in {run_dir}" if run_dir else ""
    click.echo(f"Error: {message}{where}", err=True)
    return EXIT_INTERRUPTED if "Ctrl+C" in message else EXIT_FAILED


def _closing(ev: Any, run_dir: Path | None, json_mode: bool) -> int:
    code = {"completed": EXIT_OK, "stopped": EXIT_INTERRUPTED}.get(ev.status, EXIT_FAILED)
    if not json_mode:
        label = {"completed": "Done", "stopped": "Stopped", "diverged": "Diverged"}[ev.status]
        text = ev.message[0].upper() + ev.message[1:]
        if ev.status == "diverged":
            text = f"{text}; try a smaller --lr or a normalization"
        click.echo(f"{label}: {text}. Run saved in {run_dir}", err=ev.status != "completed")
    return code


def run_eval(run_dir: Path, *, device: str | None = None, data_dir: Path | None = None, json_mode: bool = False) -> int:
    """Load a run folder's model and evaluate it on the test split; print loss and accuracy."""
    from fmtui import engine
    from fmtui.data import DataError

    try:
        record = read_run(run_dir)
        if not (run_dir / "model.pt").is_file():
            raise ValueError(f"{run_dir} has no model.pt (the run saved no model)")
        results, seconds = engine.evaluate_saved(
            record.config, run_dir / "model.pt", device=device, data_dir=str(data_dir) if data_dir else None
        )
    except ValueError as e:  # ConfigError is a ValueError too
        raise click.UsageError(str(e)) from None
    except DataError as e:
        raise _data_error(e) from None
    recorded = record.metrics[-1]["test_accuracy"] if record.metrics else None
    if json_mode:
        click.echo(
            json.dumps(
                {
                    "run_dir": str(run_dir),
                    "test_loss": results.loss,
                    "test_accuracy": results.accuracy,
                    "recorded_test_accuracy": recorded,
                    "seconds": seconds,
                }
            )
        )
    else:
        note = f" (recorded at training: {recorded:.2f}%)" if recorded is not None else ""
        click.echo(
            f"{record.config.summary()}\nTest Loss: {results.loss:.4f}, Test Accuracy: {results.accuracy:.2f}%{note}"
        )
    return EXIT_OK


def run_sweep_cli(
    configs: list[RunConfig], *, out: Path | None, runs_dir: Path | None, json_mode: bool, stacked: bool = True
) -> int:
    """Train a grid headless: one line (or JSON object) per finished run, then the ranked table."""
    import time

    from fmtui import engine
    from fmtui.data import DataError, load_dataset
    from fmtui.sweep import format_table, rank, run_sweep, varying_fields, write_summary

    check_out(out)
    try:  # fail on missing data or devices before any folder is made
        for dataset, data_dir in {(c.dataset, c.data_dir) for c in configs}:
            load_dataset(dataset, data_dir)
        for device in {c.device for c in configs}:
            engine.resolve_device(device)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    except DataError as e:
        raise _data_error(e) from None
    sweep_dir = out or (runs_dir or default_runs_dir()) / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    sweep_dir.mkdir(parents=True, exist_ok=True)
    varying = varying_fields(configs)
    if not json_mode:
        from fmtui.batched import batch_groups

        together = sum(len(g) for g in batch_groups(configs) if len(g) > 1) if stacked else 0
        note = f"; {together} of them train together as stacked models" if together else ""
        click.echo(
            f"Sweep of {_plural(len(configs), 'run')} over {', '.join(varying) or 'one config'} "
            f"({configs[0].summary()}) into {sweep_dir}{note}"
        )
    rows: list[dict] = []
    with stop_on_sigint() as stop:
        try:
            for run in run_sweep(
                configs, sweep_dir, should_stop=stop.is_set, on_event=lambda *a: None, stacked=stacked
            ):
                rows.append(run.summary_row(varying))
                write_summary(sweep_dir, rows)
                _sweep_line(len(rows), len(configs), rows[-1], json_mode)
        except KeyboardInterrupt:
            stop.set()
    if json_mode:
        ranked, by = rank(rows)
        click.echo(json.dumps({"event": "summary", "ranked_by": by, "sweep_dir": str(sweep_dir), "runs": ranked}))
    elif rows:
        click.echo(format_table(rows, varying))
        click.echo(f"Summary: {sweep_dir / 'summary.csv'}")
    if stop.is_set():
        click.echo(f"Stopped after {_plural(len(rows), 'run')} of {len(configs)}; finished runs are kept.", err=True)
        return EXIT_INTERRUPTED
    return EXIT_OK


def _sweep_line(i: int, n: int, row: dict, json_mode: bool) -> None:
    if json_mode:
        click.echo(json.dumps({"event": "run", **row}))
        return
    acc = "-" if row["test_accuracy"] is None else f"{row['test_accuracy']:.2f}%"
    status = "" if row["status"] == "completed" else f" [{row['status']}]"
    click.echo(
        f"[{i}/{n}] {row['varying'] or row['run']}: test accuracy {acc}, test loss "
        f"{row['test_loss'] if row['test_loss'] is None else format(row['test_loss'], '.4g')}, "
        f"{row['seconds']:.1f}s{status}"
    )

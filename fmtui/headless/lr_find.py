"""`fmtui lr-find`: the learning-rate range test (fmtui.lrfind), its suggestion printed and its curve written as
CSV. Signals stop it as they stop training (fmtui.signals): the curve so far is written, exit 128 + signal."""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path
from typing import Any

import click

from fmtui import signals
from fmtui.config import RunConfig
from fmtui.errors import ConfigError, ExitCode, FmtuiError
from fmtui.headless.reporters import lines_for
from fmtui.headless.train import failed
from fmtui.report import lr_find_header, lr_find_json, lr_find_text
from fmtui.runfolder.files import atomic_write
from fmtui.runfolder.read import default_runs_dir
from fmtui.runfolder.schema import Status


def run_lr_find(
    cfg: RunConfig, *, out: Path | None = None, runs_dir: Path | None = None, json_mode: bool = False, **search: Any
) -> int:
    """`fmtui lr-find`: the LR range test (fmtui.lrfind) on fresh weights; print the suggestion, write the
    curve as CSV (out, else RUNS_DIR/lr-find/<date>-<config>.csv). Exit 0 with a suggestion, 1 without one (or
    when the device fails), 128 + the signal when stopped by Ctrl+C or another stop signal (the curve so far is
    written)."""
    from fmtui import lrfind

    start, end = search.get("start_lr", lrfind.START_LR), search.get("end_lr", lrfind.END_LR)
    if start >= end:
        raise click.UsageError(f"--start-lr {start:g} must be below --end-lr {end:g}")
    with signals.stopping() as stop, lines_for(json_mode) as lines:
        try:
            for ev in lrfind.lr_find(cfg, should_stop=stop.reason, **search):
                if isinstance(ev, lrfind.Started):
                    started = ev
                    if not json_mode:
                        lines.echo(lr_find_header(ev))
                elif isinstance(ev, lrfind.Progress) and ev.lrs:
                    info = f"lr {ev.lrs[-1]:.2g} · smoothed loss {ev.smoothed[-1]:.4g}"
                    lines.show(f"lr finder · step {ev.step}/{ev.steps}", ev.step, ev.steps, info)
            path = out or _curve_path((runs_dir or default_runs_dir()) / "lr-find", cfg)
            _write_curve(path, ev)
        except ConfigError as e:
            raise click.UsageError(str(e)) from None
        except FmtuiError:  # missing or broken data: one line, exit 2 (fmtui.cli)
            raise
        except KeyboardInterrupt as e:  # a second signal
            return failed(e, None, stop.exit_code)
        except Exception as e:  # the device failed, or the curve could not be written: one line
            return failed(e, None, ExitCode.FAILED, debug=True)
    click.echo(lr_find_json(started, ev, path) if json_mode else lr_find_text(ev, path))
    if ev.status == Status.STOPPED:
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

"""How a headless command is shown: plain lines on stdout (a run's epoch lines in the lecture's format, a sweep's
line per run, the lr finder's result), a Rich progress bar on stderr while stderr is a terminal, or one JSON
object per event (--json, fmtui.events_schema) and nothing on stderr but errors.

The bar goes to stderr so that `fmtui train --no-ui > log` (or `| tee log`) still shows it while the log gets
the lines; when stdout is that same terminal, the lines are printed through the bar's console, above it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, TextIO

from fmtui.events import BatchProgress, EpochEnd, Event, Started
from fmtui.report import epoch_line, event_json, header_line, health_line


def stderr_is_terminal() -> bool:
    """Whether a progress bar can be drawn: stderr is a terminal (stdout may be a file or a pipe)."""
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (OSError, ValueError):  # closed
        return False


def same_terminal(a: TextIO, b: TextIO) -> bool:
    """Both streams are one terminal (the same device): what one prints lands among the other's lines."""
    try:
        return a.isatty() and b.isatty() and os.path.samestat(os.fstat(a.fileno()), os.fstat(b.fileno()))
    except (OSError, ValueError, AttributeError):  # no descriptor (a StringIO), closed
        return False


class Lines:
    """A command's lines on stdout, and no progress bar (stderr is no terminal, or --json)."""

    def __init__(self, out: TextIO | None = None):
        self.out = out or sys.stdout

    def __enter__(self) -> Lines:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def echo(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def show(self, description: str, completed: float, total: float, info: str = "") -> None:
        """Where the work stands (drawn by ProgressBar only)."""


class ProgressBar(Lines):
    """Lines on stdout with a live Rich progress bar on stderr (a terminal) below them; the bar is cleared at
    the end. `show` moves it: a description, a bar with its percentage, `info` and the time left."""

    def __init__(self, out: TextIO | None = None, unit: str = ""):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        super().__init__(out)
        self.shared = same_terminal(self.out, sys.stderr)
        """stdout is the bar's terminal: its lines go through the bar's console, above the bar."""
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn(f"{{task.percentage:>3.0f}}%{unit}"),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
            redirect_stdout=self.shared,  # a print to a stdout that is no terminal stays there
        )
        self.task = self.progress.add_task("Starting", total=None, info="", start=False)

    def __enter__(self) -> ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def echo(self, text: str) -> None:
        if self.shared:
            self.progress.console.print(text, highlight=False, markup=False, soft_wrap=True)
        else:
            super().echo(text)

    def show(self, description: str, completed: float, total: float, info: str = "") -> None:
        if not self.progress.tasks[0].started:
            self.progress.start_task(self.task)
        self.progress.update(self.task, description=description, completed=completed, total=total, info=info)


def lines_for(json_mode: bool, unit: str = "") -> Lines:
    """A progress bar on stderr when it is a terminal, except for --json; plain lines otherwise."""
    return ProgressBar(unit=unit) if not json_mode and stderr_is_terminal() else Lines()


class Reporter:
    """A training run shown as plain lines: header, one line per epoch, a health hint when it changes."""

    def __init__(self, out: TextIO | None = None, lines: Lines | None = None):
        self.lines = lines or Lines(out)
        self.health = "ok"
        """The health state last reported: its hint is printed once, when the state changes."""

    @property
    def out(self) -> TextIO:
        return self.lines.out

    def __enter__(self) -> Reporter:
        self.lines.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.lines.__exit__(*exc)

    def print(self, text: str) -> None:
        self.lines.echo(text)

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
    """One JSON line per event on stdout; nothing on stderr."""

    def handle(self, ev: Event, run_dir: Path | None) -> None:
        self.print(event_json(ev, run_dir))


class RichReporter(Reporter):
    """Epoch lines on stdout plus a live progress bar on stderr with loss, samples/s and ETA (stderr is a
    terminal).

    The bar, its percentage and its ETA cover the whole run; the text before it says where in the epoch the
    run is ("Epoch 2/3 · batch 422/938"), so no count mixes an epoch's label with the run's batches."""

    def __init__(self, out: TextIO | None = None):
        super().__init__(lines=ProgressBar(out, unit=" of the run"))
        self.total = 0

    @property
    def progress(self):
        """The Rich Progress that draws the bar."""
        return self.lines.progress

    def handle(self, ev: Event, run_dir: Path | None) -> None:
        match ev:
            case Started():
                self.total = ev.batches_per_epoch * ev.config.epochs
                self.lines.show("Epoch 1", 0, self.total)
            case BatchProgress():
                self.lines.show(
                    f"Epoch {ev.epoch}/{ev.epochs} · batch {ev.batch}/{ev.batches}",
                    (ev.epoch - 1) * ev.batches + ev.batch,
                    self.total,
                    f"loss {ev.loss:.4f}  acc {ev.accuracy:.1f}%  {ev.samples_per_s:,.0f} samples/s",
                )
            case EpochEnd():
                task = self.progress.tasks[0]
                self.lines.show(task.description, ev.epoch * (self.total // ev.epochs), self.total, task.fields["info"])
        super().handle(ev, run_dir)


def make_reporter(json_mode: bool) -> Reporter:
    """JSON lines for --json; epoch lines with a progress bar on stderr when it is a terminal; plain lines."""
    if json_mode:
        return JsonReporter()
    return RichReporter() if stderr_is_terminal() else Reporter()

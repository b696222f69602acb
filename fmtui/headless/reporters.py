"""How a headless run is shown: plain epoch lines (the lecture's format), the same with a Rich progress bar on
a terminal, or one JSON object per event (--json, fmtui.events_schema)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from fmtui.events import BatchProgress, EpochEnd, Event, Started
from fmtui.report import epoch_line, event_json, header_line, health_line


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


def make_reporter(json_mode: bool) -> Reporter:
    if json_mode:
        return JsonReporter()
    return RichReporter() if sys.stdout.isatty() else Reporter()

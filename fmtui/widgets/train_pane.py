"""The Train pane: Start / Stop, progress with ETA, the machine's CPU, memory and GPUs, live loss and accuracy
charts, the epoch log.

The log shows the headless mode's own lines (fmtui.headless), so the TUI and `fmtui --no-ui train` agree. The
system lines are read from the run folder's system.jsonl as its writer appends to it (fmtui.sysmetrics), the same
for a run trained here and a watched one.

The pane only displays: the app owns the training worker and hands each engine event down through
the `show_*` methods; Start and Stop post `Button.Pressed`, which the app turns into actions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import RenderableType
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Button, Static

from fmtui.errors import RunError
from fmtui.report import epoch_line, fmt_duration, fmt_rate, header_line, outcome
from fmtui.runfolder.read import FileCache
from fmtui.runfolder.schema import SYSTEM
from fmtui.sysmetrics import read_tail
from fmtui.text import safe_text
from fmtui.widgets.charts import BatchLossChart, EpochChart
from fmtui.widgets.epoch_log import EpochLog
from fmtui.widgets.system_view import SystemView

if TYPE_CHECKING:
    from fmtui.config import RunConfig
    from fmtui.events import BatchProgress, EpochEnd, Finished, Started
    from fmtui.messages import ExperimentProgress

SYSTEM_POLL = 1.0
"""Seconds between two looks at the shown run's system.jsonl (its writer samples every 2 s)."""


class RunProgress(Widget):
    """A one-line progress bar with its percentage, of fixed size: an update repaints it and nothing else.

    (Textual's ProgressBar re-runs the screen's layout on every update: ~28 ms of UI time measured per
    progress event, time the training thread then waits for on the GIL.)
    """

    DEFAULT_CSS = "RunProgress { width: 30; height: 1; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.total: int | None = None
        self.done = 0

    def update(self, *, total: int | None | object = ..., progress: int | None = None) -> None:
        """Like ProgressBar.update: total None = waiting (pulse), progress = steps done."""
        if total is not ...:
            self.total = total  # type: ignore[assignment]
        if progress is not None:
            self.done = progress
        self.refresh()

    def render(self) -> RenderableType:
        from rich.progress_bar import ProgressBar as Bar
        from rich.table import Table

        grid = Table.grid(padding=(0, 1))
        grid.add_row(
            Bar(total=self.total, completed=self.done, width=max(self.size.width - 6, 4)),
            "" if not self.total else f"{100 * self.done // self.total:3d}%",
        )
        return grid


class TrainPane(Widget, can_focus=True):
    """Controls, progress and charts of one training run at a time; keys choose the charts' scales."""

    BINDINGS = [
        Binding("l", "toggle_log", "log/linear"),
        Binding("a", "toggle_pinned", "acc 0-100"),
    ]

    PHASES = ("idle", "starting", "running", "stopping", "finished", "failed")
    """A run's life here: starting (data and model load), running, stopping (Stop pressed: the batch
    ends), then finished (completed, stopped or diverged: the engine's Finished) or failed (an error)."""

    busy: reactive[bool] = reactive(False)
    """The app has a job on, a run, the lecture experiment, the lr finder or a watch (Start off, Stop on); set by
    FmtuiApp's watcher of its activity."""
    ready: reactive[bool] = reactive(True)
    """The Model pane holds a valid configuration (Start may be enabled)."""
    phase: reactive[str] = reactive("idle")
    """Where this pane's run is: one of PHASES."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.run_dir: Path | None = None
        """The run's folder, once the engine has started it (None while starting: no folder yet)."""
        self.system_file: Path | None = None
        """The system.jsonl followed while the run shown trains (None: none is)."""
        self._system_files = FileCache()
        self._system_shown: object = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="train-controls"):
            yield Button("Start", id="start", variant="success", compact=True)
            yield Button("Stop", id="stop", variant="error", compact=True, disabled=True)
            yield Static("", id="train-state", markup=False)  # names from run folders are data, not markup
        with Horizontal(id="train-progress"):
            yield RunProgress(id="progress")
            yield Static("", id="train-stats", markup=False)
        yield Static("", id="train-message", markup=False)
        system = SystemView(id="train-system")
        system.display = False  # until the run's first sample
        yield system
        with Grid(id="train-charts"):
            yield EpochChart("loss per epoch", id="loss-chart")
            yield EpochChart("accuracy % per epoch", accuracy=True, id="accuracy-chart")
            yield BatchLossChart("train loss by step", id="batch-chart")
            yield EpochLog(id="train-log", max_lines=1000)

    # --- state from the app ---------------------------------------------------------------------

    def on_mount(self) -> None:
        self.query_one(EpochLog).border_title = "epoch log"
        self.set_interval(SYSTEM_POLL, self.poll_system)

    def validate_phase(self, phase: str) -> str:
        if phase not in self.PHASES:
            raise ValueError(f"unknown phase {phase!r}")
        return phase

    def watch_busy(self) -> None:
        self._update_buttons()

    def watch_ready(self) -> None:
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.query_one("#start", Button).disabled = self.busy or not self.ready
        self.query_one("#stop", Button).disabled = not self.busy

    def show_config(self, cfg: RunConfig | None, error: str | None = None) -> None:
        """The configuration Start would train, or why Start is disabled."""
        self.ready = cfg is not None
        if not self.busy:
            text = f"ready: {cfg.summary()}" if cfg is not None else f"fix the Model pane: {error}"
            self.query_one("#train-state", Static).update(text)

    # --- engine events ----------------------------------------------------------------------------

    def show_starting(self, cfg: RunConfig, doing: str = "loading data and model…") -> None:
        """A new run: clear the charts and the message, then wait for what it is `doing` (a watch: its folder)."""
        self.show_starting_blank()
        self.query_one("#train-state", Static).update(f"starting: {cfg.summary()}")
        self.query_one("#train-stats", Static).update(doing)
        self._message("")

    def show_starting_blank(self) -> None:
        """Forget the previous run: charts, progress and run folder."""
        self.phase, self.run_dir = "starting", None
        self._follow_system(None)
        for chart in self.query(EpochChart):
            chart.clear()
        self.query_one(BatchLossChart).clear()
        self.query_one("#progress", RunProgress).update(total=None, progress=0)

    def show_started(self, ev: Started, run_dir: Path, writer: str = "") -> None:
        """The run began; `writer` names the process that trains it when it is another one (a watched run)."""
        self.run_dir = run_dir
        self._follow_system(Path(run_dir) / SYSTEM)
        classes = len(ev.classes)
        self.query_one("#accuracy-chart", EpochChart).chance = 100 / classes if classes else None
        for chart in (self.query_one("#loss-chart", EpochChart), self.query_one(BatchLossChart)):
            chart.chance = math.log(classes) if classes > 1 else None  # the loss of guessing: ln 10 = 2.30
        batch = self.query_one(BatchLossChart)
        batch.empty_note = "none recorded yet" if writer else ""  # a watched run's: from its losses.jsonl
        batch.mark_dirty()
        if self.phase != "stopping":
            self.phase = "running"
        self.query_one("#progress", RunProgress).update(total=ev.batches_per_epoch * ev.config.epochs, progress=0)
        state = f"{ev.model} · {ev.params:,} params · {ev.device}"
        self.query_one("#train-state", Static).update(f"watching {writer} · {state}" if writer else state)
        self.query_one("#train-stats", Static).update("first batches…")
        log = self.query_one(EpochLog)
        log.write(f"run folder {run_dir}" + (f", trained by {writer}" if writer else ""))
        log.write(header_line(ev))

    def show_progress(self, ev: BatchProgress, curve: Sequence[tuple[int, float]] | None = None) -> None:
        """Where the run is; `curve`: its step-loss points so far (TrainingProgress.curve), else the event's own."""
        self.query_one("#progress", RunProgress).update(progress=ev.step)
        gpu = f" · GPU mem {ev.gpu_memory / 2**20:,.0f} MiB" if ev.gpu_memory else ""
        self.query_one("#train-stats", Static).update(
            f"epoch {ev.epoch}/{ev.epochs} batch {ev.batch}/{ev.batches} · loss {ev.loss:.4f}"
            f" · acc {ev.accuracy:.1f}%"
            f" · {fmt_rate(ev.samples_per_s)} samples/s · ETA {fmt_duration(ev.eta)}{gpu}",
            layout=False,
        )
        self.query_one(BatchLossChart).add_points(ev.losses if curve is None else curve, ev.loss_every)

    def show_epoch(self, ev: EpochEnd) -> None:
        self.query_one("#loss-chart", EpochChart).add(ev.epoch, train=ev.train_loss, val=ev.val_loss, test=ev.test_loss)
        self.query_one("#accuracy-chart", EpochChart).add(
            ev.epoch, train=ev.train_accuracy, val=ev.val_accuracy, test=ev.test_accuracy
        )
        self.query_one(EpochLog).write(epoch_line(ev))
        if not ev.health.ok:
            self._message(f"{ev.health.state.upper()}: {ev.health.hint}", ev.health.severity)
        elif self.phase == "running":
            self._message("")  # the run recovered: its earlier warning no longer holds

    def show_experiment_starting(self, note: str) -> None:
        """The lecture experiment begins: this pane follows it (its runs are charted in the Runs pane)."""
        self.show_starting_blank()
        self.query_one("#train-state", Static).update(note)
        self.query_one("#train-stats", Static).update("loading data and models…")
        self.query_one(EpochLog).write(note)
        self._message("The lecture experiment is training; pane 5 (Runs) charts its runs; x stops it.")

    def show_experiment(self, message: ExperimentProgress) -> None:
        """The experiment's progress: which runs train now, their epoch, how much is done and the time left."""
        bar = self.query_one("#progress", RunProgress)
        if message.done:
            stopped, failed = self.phase == "stopping", "failed" in message.text.split(":")[0]
            self.phase = "failed" if failed else "finished"
            self.query_one("#train-stats", Static).update("")
            self.query_one(EpochLog).write(message.text)
            if failed:
                self._message(message.text, "error")
            elif stopped:  # its runs ended early: the bar stays where they stopped
                self._message(f"Stopped: {message.text}", "warning")
            else:
                bar.update(total=1000, progress=1000)
                self._message(f"Done: {message.text}", "success")
            return
        bar.update(total=1000, progress=round(message.fraction * 1000))
        if self.phase == "starting":
            self.phase = "running"
        eta = f" · ETA {fmt_duration(message.eta)}" if message.eta is not None else ""
        self.query_one("#train-state", Static).update(f"lecture experiment: {message.group}")
        if self.phase != "stopping":
            self.query_one("#train-stats", Static).update(
                f"epoch {message.epoch}/{message.epochs} · {message.fraction:.0%} of the experiment{eta}"
            )

    def show_stopping(self) -> None:
        """Stop was pressed (a run, or the lecture experiment): the current batch ends."""
        if self.phase in ("starting", "running"):
            self.phase = "stopping"
            self.query_one("#train-stats", Static).update("stopping after this batch…")

    def show_finished(self, ev: Finished) -> None:
        self.phase = "finished"
        self._end_system()
        self.query_one(EpochLog).write(outcome(ev.status, ev.message))
        if ev.status == "completed":
            bar = self.query_one("#progress", RunProgress)
            bar.update(progress=bar.total or 0)
        health = ev.health
        if ev.status == "diverged":
            hint = health.hint if health.state == "diverged" else f"{ev.message}; try a smaller --lr or a normalization"
            self._message(outcome("diverged", hint, "DIVERGED"), "error")
        elif ev.status in ("stopped", "interrupted"):  # interrupted: a watched run whose writer died
            sick = "" if health.ok else f" · {health.state.upper()}: {health.hint}"
            self._message(outcome(ev.status, ev.message) + sick, "warning" if health.ok else health.severity)
        else:
            last = ev.history[-1] if ev.history else None
            acc = f" · test acc {last.test_accuracy:.2f}%" if last else ""
            wrong = f" · {int((ev.results.preds != ev.results.labels).sum()):,} mistakes: press 4" if ev.results else ""
            if health.ok:
                self._message(f"Done: {ev.message}{acc}{wrong}", "success")
            else:
                self._message(f"{health.state.upper()}: {health.hint} · done: {ev.message}{acc}", health.severity)
        self.query_one("#train-stats", Static).update("")

    def show_error(self, message: str) -> None:
        self._end_system()
        self.query_one(EpochLog).write(f"error: {message}")
        self.query_one("#train-stats", Static).update("")
        if self.run_dir is None and self.phase in ("starting", "stopping"):  # the engine never started
            self.query_one("#train-state", Static).update("not started: see the message below")
        self.phase = "failed"
        self._message(f"ERROR: {message}", "error")

    def show_left(self, text: str) -> None:
        """The run shown here is no longer followed (it goes on elsewhere): say so, keep what is shown."""
        self.phase = "finished"
        self._end_system()
        self.query_one(EpochLog).write(text)
        self.query_one("#train-stats", Static).update("")
        self._message(text, "warning")

    # --- system metrics ---------------------------------------------------------------------------

    def poll_system(self) -> None:
        """Show the followed system.jsonl's newest rows if it grew (a stat; new lines only are read)."""
        if self.system_file is None:
            return
        try:
            tail = self._system_files.load_grown(self.system_file, read_tail)
        except RunError:  # a link or a huge file in its place: no system lines, the run is shown all the same
            tail = None
        if tail is None or tail is self._system_shown:
            return
        self._system_shown = tail
        view = self.query_one(SystemView)
        view.show(list(tail.rows))
        view.display = bool(tail.rows)

    def _follow_system(self, file: Path | None) -> None:
        """Follow this system.jsonl (None: none), from its start; the lines shown go until its first rows."""
        self.system_file, self._system_files, self._system_shown = file, FileCache(), None
        view = self.query_one(SystemView)
        view.show([])
        view.display = False
        self.poll_system()

    def _end_system(self) -> None:
        """The run ended (or is no longer followed): its last samples stay on show, nothing more is read."""
        self.poll_system()
        self.system_file = None

    # --- keys -------------------------------------------------------------------------------------

    def action_toggle_log(self) -> None:
        """Flip the loss charts between log and linear axes (they start automatic: log from two decades on)."""
        log = not self.query_one("#loss-chart", EpochChart).drawn_log
        for chart in (self.query_one("#loss-chart", EpochChart), self.query_one(BatchLossChart)):
            chart.log_scale = log
            chart.replot()
        self.notify(f"loss charts: {'log' if log else 'linear'} scale", timeout=2)

    def action_toggle_pinned(self) -> None:
        """Pin the accuracy axis to 0..100 (chance level in view), or let it follow the values again."""
        chart = self.query_one("#accuracy-chart", EpochChart)
        chart.pinned = not chart.pinned
        chart.replot()
        self.notify(f"accuracy axis: {'0 to 100%' if chart.pinned else 'follows the values'}", timeout=2)

    def replot(self) -> None:
        """Redraw every chart now (tests and screenshots call this instead of waiting for a tick)."""
        for chart in self.query(EpochChart):
            chart.replot()
        self.query_one(BatchLossChart).replot()

    def _message(self, text: str, kind: str = "") -> None:
        banner = self.query_one("#train-message", Static)
        banner.update(safe_text(text))  # messages and hints may come from a watched run's folder
        banner.display = bool(text)
        for name in ("error", "warning", "success"):
            banner.set_class(kind == name, f"-{name}")

"""FmtuiApp: five panes over the training engine, one worker thread that trains, handlers that hand data down.

Nothing here imports torch at import time: the engine and the data loader are imported inside the
worker, so the first frame never waits for them. The worker only posts messages (fmtui.messages);
the handlers below pass each one to the pane that shows it, and the panes own what they show.

Stopping has one mechanism: cancelling the "train" worker, whose loop polls `is_cancelled` between
batches. Stop (x) cancels it; quitting does too, as Textual cancels every worker when the app exits,
so the run ends after its batch and its folder is written. Quitting while a run trains asks first.
SIGTERM and SIGHUP (and SIGQUIT, and a SIGINT while nothing trains here) quit without asking, the run's
summary naming the signal; a SIGINT while a run trains stops that run, as x does (another fmtui asks so
when it watches the run).

The footer fits 80 columns on every pane: it shows the keys that work now (Start while idle, Stop while
training); the rest (presets, refresh, ...) are listed by `?` and in the command palette (ctrl+p).

What the app is doing is one value, `activity` (fmtui.activity: idle, training, resuming, the lecture experiment,
the lr finder, watching), set in one place (`become`); the keys, the footer and the Train pane's buttons follow it.

A run that another process trains is watched by the same "train" worker group (fmtui.workers.watch_run),
which posts the same messages from its files alone (no torch: the epochs show at once): the panes show it as a
run trained here, but for its saved predictions and weights, which LiveRuns loads when the Errors pane is
shown (they need torch and the dataset). Stop then asks that process to
stop (SIGINT, after a yes) when it runs on this machine. Watching, resuming and signals are the LiveRuns
controller's (fmtui.app_live), which the app opens on mount and closes on unmount.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Select, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState, get_current_worker

from fmtui.activity import IDLE, Activity, Doing
from fmtui.app_live import LiveRuns
from fmtui.config import RunConfig
from fmtui.messages import (
    EpochFinished,
    ExperimentProgress,
    LrFindFailed,
    LrFindFinished,
    LrFindProgress,
    ResumeRefused,
    RunMessage,
    RunOpenFailed,
    RunResultsLoaded,
    SavedResults,
    TrainingFailed,
    TrainingFinished,
    TrainingProgress,
    TrainingStarted,
)
from fmtui.runfolder.read import RunRecord, default_runs_dir
from fmtui.sweep import lecture_base, lecture_experiment, lecture_plan
from fmtui.text import safe_text
from fmtui.widgets.config_form import PRESETS, ConfigForm
from fmtui.widgets.data_pane import DataPane
from fmtui.widgets.errors_pane import ErrorsPane
from fmtui.widgets.footer import KeysFooter
from fmtui.widgets.runs_pane import RunsPane
from fmtui.widgets.train_pane import TrainPane
from fmtui.workers import NO_WEIGHTS, error_message, run_experiment, run_lr_find, run_training, saved_weights

PANES = {"data": "Data", "model": "Model", "train": "Train", "errors": "Errors", "runs": "Runs"}
PANE_KEYS = Binding.Group("panes", compact=True)

Trainer = Callable[..., None]
"""What the training worker runs: (config, runs folder, post, should_stop) and, to go on with a run,
(None, runs folder, post, should_stop, resume=RUN_DIR, epochs=N or None); posts fmtui.messages."""


class QuitScreen(ModalScreen[bool]):
    """Asks before quitting ends a run in progress: y stops it and quits, n or escape keeps training."""

    DEFAULT_CSS = """
    QuitScreen { align: center middle; }
    QuitScreen > Vertical { width: auto; max-width: 90%; height: auto; border: thick $warning; padding: 1 2; }
    QuitScreen #quit-question { width: auto; text-style: bold; margin-bottom: 1; }
    QuitScreen Horizontal { width: auto; height: auto; }
    QuitScreen Button { margin-right: 2; }
    """
    BINDINGS = [
        Binding("y", "answer(True)", "stop and quit"),
        Binding("n,escape", "answer(False)", "keep training"),
    ]

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"{self.what} is training: stop it and quit? y/n", id="quit-question", markup=False)
            with Horizontal():
                yield Button("y  stop and quit", id="quit-yes", variant="error", compact=True)
                yield Button("n  keep training", id="quit-no", compact=True)

    def action_answer(self, quit_: bool) -> None:
        self.dismiss(quit_)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "quit-yes")


class FmtuiApp(App):
    """Data, Model, Train, Errors and Runs panes; keys 1-5 switch, s starts, x stops."""

    CSS_PATH = "app.tcss"
    TITLE = "fmtui"
    BINDINGS = [
        *(
            Binding(str(i), f"pane('{pane}')", title, group=PANE_KEYS)
            for i, (pane, title) in enumerate(PANES.items(), 1)
        ),
        Binding("s", "start", "start"),
        Binding("x", "stop", "stop"),
        Binding("u", "unwatch", "unwatch"),
        Binding("p", "presets", "presets", show=False),
        Binding("escape", "leave_field", "leave field"),
        Binding("q", "quit", "quit"),
        Binding("question_mark", "keys", "keys", show=False),
    ]

    activity: reactive[Activity] = reactive(IDLE, bindings=True, init=False)
    """What the dashboard is doing (fmtui.activity), changed by `become` only; bindings=True re-checks the keys
    (check_action) when it changes, and watch_activity sets the Train pane's buttons."""
    valid_config: reactive[RunConfig | None] = reactive(None, bindings=True)
    """The Model pane's configuration while it is valid (kept up to date by ConfigForm.Changed)."""

    def __init__(
        self,
        config: RunConfig | None = None,
        runs_dir: Path | None = None,
        trainer: Trainer = run_training,
        *,
        autostart: bool = False,
        watch: Path | None = None,
        signals: bool = False,
    ) -> None:
        """Without arguments, the dashboard `fmtui` opens (so `textual run fmtui.app:FmtuiApp` works too)."""
        super().__init__()
        self.initial_config = config or RunConfig()
        self.runs_dir = runs_dir or default_runs_dir()
        self.trainer = trainer
        self.autostart = autostart
        self._run_name = self._opening = ""
        """The folder of the run training now, and what the run being opened from Runs is (Errors header)."""
        self.watch_at_start = watch
        self.signals = signals
        self.live = LiveRuns(self)
        """Watching, resuming and signals (opened on mount, closed on unmount)."""

    def compose(self) -> ComposeResult:
        panes = {
            "data": DataPane(),
            "model": ConfigForm(self.initial_config),
            "train": TrainPane(),
            "errors": ErrorsPane(),
            "runs": RunsPane(self.runs_dir),
        }
        with TabbedContent(initial="train" if self.watch_at_start else "model"):  # a watch shows its run at once
            for i, (pane, widget) in enumerate(panes.items(), 1):
                with TabPane(f"{i} {PANES[pane]}", id=pane):
                    yield widget
        yield KeysFooter(compact=True)

    def on_mount(self) -> None:
        self.query_one(DataPane).show_config(self.initial_config)
        few = self.no_color or self.console.color_system in ("standard", "windows")
        self.screen.set_class(few, "-few-colors")  # app.tcss: styles that need no colour (reverse, underline)
        self.live.open(signals=self.signals, watch_path=None if self.autostart else self.watch_at_start)
        if self.autostart:
            self.call_after_refresh(self.action_start)

    def on_unmount(self) -> None:
        self.live.close()

    def become(self, activity: Activity) -> None:
        """The one place the activity changes (a job begins or ends)."""
        self.activity = activity

    def watch_activity(self, activity: Activity) -> None:
        self.train_pane.busy = activity.busy

    @property
    def form(self) -> ConfigForm:
        return self.query_one(ConfigForm)

    @property
    def train_pane(self) -> TrainPane:
        return self.query_one(TrainPane)

    # --- actions ------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Start shows while it can start (idle, the form valid: the Train pane's Start button is enabled then
        too), Stop only while training, so the footer never offers a key that cannot work; leave field only
        while a field has the focus."""
        if action == "start":
            return not self.activity.busy and self.valid_config is not None  # hidden, not greyed, when it cannot start
        if action == "stop":
            return self.activity.busy
        if action == "leave_field":
            return isinstance(self.focused, (Input, Select))
        if action == "unwatch":
            return self.activity.doing is Doing.WATCHING
        return True

    def action_pane(self, pane: str) -> None:
        self.query_one(TabbedContent).active = pane
        self._focus_pane(pane)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.tabbed_content.active == event.pane.id:  # not a stale event from an earlier switch
            self._focus_pane(event.pane.id or "")
            if event.pane.id == "errors":
                self.live.errors_shown()  # a watched run's predictions are loaded now (they need torch)

    def _focus_pane(self, pane: str) -> None:
        """Give the pane's keys to the pane: its main widget takes the focus (the form keeps its own).

        Focusing is deferred (as Textual's focus() is) and skipped when another pane became active in
        the meantime: focus left inside a hidden pane would pull its tab back to the front.
        """
        self.call_after_refresh(self._focus_now, pane)

    def _focus_now(self, pane: str) -> None:
        if self.query_one(TabbedContent).active != pane:
            return
        widgets = {"data": DataPane, "errors": ErrorsPane, "train": TrainPane}
        if pane in widgets:
            self.query_one(widgets[pane]).focus()
        elif pane == "runs":
            self.query_one("#runs-table").focus()
        elif pane == "model" and not self.form.has_focus_within:
            # focus left in another pane would pull its tab back: start at the form's first field
            self.form.focus_first_field()

    def action_leave_field(self) -> None:
        """Leave the field for the pane that holds it, so that the pane's keys (l in the Model pane) still work."""
        field = self.focused
        self.set_focus(next((w for w in field.ancestors if getattr(w, "can_focus", False)), None) if field else None)

    def action_keys(self) -> None:
        """Show (or hide) the panel of every key that works here, the ones the footer has no room for too."""
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    async def action_quit(self) -> None:
        """Quit at once when idle or watching (a watched run trains on in its own process); while a run (or the
        lecture experiment) trains here, ask first."""
        if not self.activity.here:
            self.exit()
        elif isinstance(self.screen, QuitScreen):  # asked twice (ctrl+q in the dialog): that is a yes
            self.exit()
        else:
            self.push_screen(QuitScreen(self.activity.what), self._quit_answered)

    def _quit_answered(self, quit_: bool | None) -> None:
        if quit_:
            self.action_stop()
            self.exit()  # Textual cancels the worker as it exits: the run ends after its batch, recorded

    def action_presets(self) -> None:
        self.action_pane("model")
        self.form.open_presets()

    def action_preset(self, name: str) -> None:
        self.action_pane("model")
        self.form.apply_preset(name)

    def action_start(self) -> None:
        cfg, _, error = self.form.read()
        if self.activity.busy or cfg is None:
            self.bell()
            if error:
                self.notify(error, title="fix the Model pane first", severity="warning", markup=False)
            return
        self.become(Activity(Doing.TRAINING))
        self.train_pane.show_starting(cfg)
        self.action_pane("train")
        self.train(cfg)

    def action_stop(self) -> None:
        """Stop after the current batch: the worker's loop sees its cancellation before the next one.
        A watched run's process is asked to stop (after a yes)."""
        if self.activity.watched is not None:
            self.live.ask_to_stop(self.activity.watched)
        elif self.activity.busy:
            self.workers.cancel_group(self, "train")
            self.train_pane.show_stopping()

    def action_lecture(self) -> None:
        """The lecture's experiment: softmax regression, 4 normalizations x lr 0.01 and 1e-5, as 8 runs; with the
        form's batch size and epochs when it holds a softmax regression, else the lecture's (fmtui.sweep)."""
        cfg, _, error = self.form.read()
        if self.activity.busy or cfg is None:
            self.bell()
            self.notify(
                error or "training is running: stop it first",
                title="cannot start the experiment",
                severity="warning",
                markup=False,
            )
            return
        base = lecture_base(cfg)
        configs = lecture_experiment(base)
        self.become(Activity(Doing.EXPERIMENT))
        self.action_pane("runs")
        note = f"lecture experiment: {len(configs)} runs starting, {lecture_plan(cfg)}..."
        self.query_one(RunsPane).show_note(note)
        self.train_pane.show_experiment_starting(note)
        self._experiment(configs)

    def _palette_find_lr(self) -> None:
        self.action_pane("model")
        self.form.action_find_lr()

    def on_config_form_find_lr(self, message: ConfigForm.FindLr) -> None:
        """The learning-rate finder: it trains, so it runs as training does (one at a time, x stops it)."""
        if self.activity.busy:
            self.bell()
            self.notify("training is running: stop it first", title="cannot run the lr finder", severity="warning")
            return
        self.become(Activity(Doing.FINDING_LR))
        self.form.lr_finder.show_starting(message.config)
        self._find_lr(message.config)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield SystemCommand("Start training", "Train the Model pane's configuration (s)", self.action_start)
        yield SystemCommand("Stop training", "Stop after the current batch (x)", self.action_stop)
        form = self.form.config  # read as the palette opens: the label says what L would run now
        plan = lecture_plan(form) if form is not None else "fix the Model pane first"
        yield SystemCommand(
            "Lecture experiment",
            f"Softmax regression: 4 normalizations x lr 0.01, 1e-5; {plan} (L in Runs)",
            self.action_lecture,
        )
        yield SystemCommand(
            "Learning-rate finder", "Suggest a learning rate for the Model pane's config (l)", self._palette_find_lr
        )
        for i, (pane, title) in enumerate(PANES.items(), 1):
            yield SystemCommand(
                f"Show {title}", f"Switch to the {title} pane ({i})", lambda p=pane: self.action_pane(p)
            )
        for name, (title, _) in PRESETS.items():
            yield SystemCommand(f"Preset: {title}", "Fill the Model pane", lambda n=name: self.action_preset(n))
        yield from super().get_system_commands(screen)

    # --- the workers --------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="train")
    def train(self, cfg: RunConfig | None, resume: Path | None = None, epochs: int | None = None) -> None:
        """The training worker: a new run of cfg, or (cfg None) the run folder `resume` goes on to `epochs`."""
        worker = get_current_worker()

        def should_stop() -> object:
            """Cancelled: stop, and say why when a signal was the reason."""
            return worker.is_cancelled and (self.activity.stop_cause or True)

        if resume is None:
            self.trainer(cfg, self.runs_dir, self.post_message, should_stop)
        else:
            self.trainer(None, self.runs_dir, self.post_message, should_stop, resume=resume, epochs=epochs)

    @work(thread=True, exclusive=True, exit_on_error=False, group="train")
    def _experiment(self, configs: list[RunConfig]) -> None:
        worker = get_current_worker()
        run_experiment(configs, self.runs_dir, self.post_message, lambda: worker.is_cancelled)

    @work(thread=True, exclusive=True, exit_on_error=False, group="train")
    def _find_lr(self, cfg: RunConfig) -> None:
        worker = get_current_worker()
        run_lr_find(cfg, self.post_message, lambda: worker.is_cancelled)

    @work(thread=True, exclusive=True, exit_on_error=False, group="open")
    def _open_run(self, record: RunRecord, data_dir: str | None) -> None:
        """Load a past run's saved predictions and its test images, off the UI thread."""
        try:
            from fmtui.data import load_dataset
            from fmtui.runfolder.tensors import load_results

            results = load_results(record.path)  # the small file first: a broken run fails before any data loads
            ds = load_dataset(record.config.dataset, record.config.data_dir or data_dir)
            weights, note = saved_weights(record.path, record.config, ds.shape, len(ds.classes))
            self.post_message(RunResultsLoaded(record.name, results, ds.x_test, ds.classes, weights, note))
        except Exception as exc:  # a broken or foreign run folder: say so, never crash
            self.post_message(RunOpenFailed(f"cannot open {record.name}: {error_message(exc)}"))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Safety net: a worker that died without posting TrainingFailed must not leave Start disabled."""
        if event.worker.group == "train" and event.state == WorkerState.ERROR and self.activity.busy:
            self.post_message(TrainingFailed(error_message(event.worker.error)))

    # --- messages: each goes to the pane that shows it ----------------------------------------------

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id in ("start", "stop"):
            await self.run_action(event.button.id)

    def on_config_form_changed(self, message: ConfigForm.Changed) -> None:
        if not self.screen_stack:  # shutting down: a last read of the form (its timers) finds no screen
            return
        self.valid_config = message.config
        self.train_pane.show_config(message.config, message.error)
        if message.config is not None:
            self.query_one(DataPane).show_config(message.config)

    def _current(self, message: RunMessage) -> bool:
        """The app runs (else shutting down: the worker's last messages find no widgets) and the message is
        not one of a watch that is over (one trained here has watch_id 0)."""
        return self.is_running and message.watch_id in (0, self.activity.watch_id)

    def on_training_started(self, message: TrainingStarted) -> None:
        if not self._current(message):
            return
        if self.activity.doing is Doing.RESUMING:  # the run goes on: show it from its start
            self.become(Activity(Doing.TRAINING, stop_cause=self.activity.stop_cause))
            self.train_pane.show_starting(message.event.config)
            self.query_one(RunsPane).show_note("")
            self.action_pane("train")
        self._run_name = safe_text(message.run_dir.name) if message.run_dir else ""
        if message.watch_id == 0:
            self.live.forget_saved()  # this run's predictions take the Errors pane
        errors = self.query_one(ErrorsPane)
        errors.set_test_split(message.images, message.classes)
        errors.show_weights(None, "training: the weights are drawn at the end of each epoch")
        self.train_pane.show_started(message.event, message.run_dir, message.writer)

    def on_training_progress(self, message: TrainingProgress) -> None:
        if self._current(message):
            self.train_pane.show_progress(message.event, message.curve)

    def on_epoch_finished(self, message: EpochFinished) -> None:
        if self._current(message):
            ev = message.event
            self.train_pane.show_epoch(ev)
            if message.watch_id:  # a watched run's predictions are read from its folder when needed (LiveRuns)
                self.live.epoch_shown(message)
                return
            errors = self.query_one(ErrorsPane)
            errors.show_results(ev.results, f"epoch {ev.epoch}/{ev.epochs} · run {self._run_name}")
            errors.show_weights(ev.weights, message.weights_note or NO_WEIGHTS)

    def on_training_finished(self, message: TrainingFinished) -> None:
        if not self._current(message):
            return
        event = message.event
        self.become(IDLE)
        self.train_pane.show_finished(event)
        epochs = f"epoch {event.history[-1].epoch}/{event.history[-1].epochs}" if event.history else "no epoch"
        self.query_one(ErrorsPane).show_results(event.results, f"{event.status} · {epochs} · run {self._run_name}")
        self.query_one(RunsPane).refresh_runs()
        self._tell(event.message, f"training {event.status}", "error" if event.status == "diverged" else "information")

    def on_training_failed(self, message: TrainingFailed) -> None:
        if self._current(message):
            self.become(IDLE)
            self.train_pane.show_error(message.message)
            self._tell(message.message, "training failed", "error")
            self.query_one(RunsPane).refresh_runs()

    def on_lr_find_progress(self, message: LrFindProgress) -> None:
        if self.is_running:
            self.form.lr_finder.show_progress(message.event)

    def on_lr_find_finished(self, message: LrFindFinished) -> None:
        if self.is_running:
            self.become(IDLE)
            self.form.lr_finder.show_finished(message.event)
            self.form.refresh_bindings()  # `a` (apply) appears in the footer

    def on_lr_find_failed(self, message: LrFindFailed) -> None:
        if self.is_running:
            self.become(IDLE)
            self.form.lr_finder.show_error(message.message)
            self.notify(message.message, title="lr finder failed", severity="error", timeout=8, markup=False)

    def on_experiment_progress(self, message: ExperimentProgress) -> None:
        if not self.is_running:
            return
        runs = self.query_one(RunsPane)
        runs.refresh_runs(select=message.run_dirs)
        runs.show_note(message.text)
        self.train_pane.show_experiment(message)
        if message.done:
            self.become(IDLE)
            self.notify(message.text, title="lecture experiment", markup=False)

    def on_runs_pane_open(self, message: RunsPane.Open) -> None:
        record = message.record
        self.live.forget_saved()  # the opened run's predictions take the Errors pane
        self._opening = safe_text(
            f"{record.status} · epoch {record.epochs_done}/{record.config.epochs} · run {record.name}"
        )
        self._open_run(record, (self.valid_config or self.initial_config).data_dir)

    def on_runs_pane_launch_experiment(self, message: RunsPane.LaunchExperiment) -> None:
        self.action_lecture()

    def on_runs_pane_watch(self, message: RunsPane.Watch) -> None:
        self.live.watch(message.record.path, message.record.config)

    def action_unwatch(self) -> None:
        self.live.unwatch()

    def on_runs_pane_resume(self, message: RunsPane.Resume) -> None:
        self.live.resume(message.record)

    def on_resume_refused(self, message: ResumeRefused) -> None:
        if self.is_running:
            self.live.refused(message)

    def on_run_results_loaded(self, message: RunResultsLoaded) -> None:
        self.action_pane("errors")
        errors = self.query_one(ErrorsPane)
        errors.set_test_split(message.images, message.classes)
        errors.show_results(message.results, f"{self._opening} (saved predictions)")
        errors.show_weights(message.weights, message.weights_note)
        self.notify(
            f"mistakes of {message.name} (from its saved predictions); w: what it learned",
            title="run opened",
            markup=False,
        )

    def on_saved_results(self, message: SavedResults) -> None:
        if self.is_running:
            self.live.saved_loaded(message)

    def on_run_open_failed(self, message: RunOpenFailed) -> None:
        if self._current(message):
            self.notify(message.message, title="run", severity="error", timeout=8, markup=False)  # paths are data

    def _tell(self, text: str, title: str, severity: str) -> None:
        """A toast about the run, unless the Train pane, which already says it, is on screen."""
        if self.query_one(TabbedContent).active != "train":
            self.notify(text, title=title, severity=severity, timeout=8, markup=False)


def make_app(
    config: RunConfig | None = None,
    *,
    runs_dir: Path | None = None,
    autostart: bool = False,
    trainer: Trainer = run_training,
    watch: Path | None = None,
    signals: bool = False,
) -> FmtuiApp:
    """The one factory behind the CLI, the tests and the screenshot script (tests pass a fake `trainer`).

    `watch`: open on this run folder, followed in the Train pane. `signals`: SIGTERM, SIGHUP, SIGQUIT (and
    SIGINT) stop the dashboard as quitting does, naming the signal (the CLI asks for it; tests may)."""
    return FmtuiApp(config, runs_dir, trainer, autostart=autostart, watch=watch, signals=signals)

"""Live runs: watching a run another process trains, stopping it, resuming a run, and quitting cleanly on SIGTERM and
SIGHUP. A controller that FmtuiApp (fmtui.app) owns: opened in the app's on_mount, closed in its on_unmount.

A watched run is followed by a worker of the app's "train" group (fmtui.workers.watch_run) that posts the messages a
run trained here posts, each naming its watch (fmtui.messages.RunMessage.watch_id): the panes show it unchanged, and
the messages of a watch that is over are dropped (FmtuiApp._current). What the app is doing (watching, resuming) is
the app's `activity`, which this controller changes through FmtuiApp.become like every other job.

A watch needs no torch: its worker reads files only, so the Train pane shows the run's epochs at once. What needs
torch and the dataset (the Errors pane's images, the run's saved predictions and weights) is loaded by a second
worker (fmtui.workers.load_saved) only when the Errors pane is shown, and again after each new epoch while it is;
also after the watch ended (a finished run watched with w), until another run's predictions take the Errors pane.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from dataclasses import dataclass
from functools import partial
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING

from textual.widgets import TabbedContent
from textual.worker import get_current_worker

from fmtui import watch
from fmtui.activity import IDLE, Activity, Doing, watching
from fmtui.config import RunConfig
from fmtui.errors import RunError
from fmtui.messages import EpochFinished, ResumeRefused, SavedResults
from fmtui.runfolder.read import RunRecord, read_run
from fmtui.signals import STOP_SIGNALS
from fmtui.text import safe_text
from fmtui.widgets.errors_pane import ErrorsPane
from fmtui.widgets.runs_pane import RunsPane
from fmtui.widgets.yes_no import YesNoScreen
from fmtui.workers import NO_WEIGHTS, TestSplit, load_saved, watch_run

if TYPE_CHECKING:
    from fmtui.app import FmtuiApp

QUIT_SIGNALS = STOP_SIGNALS  # fmtui.signals' list: the same signals in every command
"""Signals that stop the dashboard as quitting does (SIGINT only when no run trains here: else it stops that run,
as x does: it is how another fmtui that watches the run asks it to stop)."""


@dataclass
class Saved:
    """What the Errors pane shows of a watched run: its saved predictions and weights, loaded when needed."""

    path: Path
    config: RunConfig
    data_dir: str | None
    watch_id: int
    epoch: int = 0
    """The newest epoch the watch has shown (0: none yet, nothing saved to load)."""
    epochs: int = 0
    loaded: int = 0
    """The epoch whose files were loaded last (0: none yet)."""
    loading: bool = False
    """A load_saved worker is on its way."""
    split: TestSplit | None = None
    """The test split, once loaded (the dataset is loaded once a watch)."""
    problem: str = ""
    """Why the mistakes cannot be shown (no data here): said once, not tried again."""


class LiveRuns:
    """Watch (enter or w in the Runs pane, `fmtui watch`), unwatch (u), stop a watched run (x), resume (R), and
    signals, for the app that owns it."""

    def __init__(self, app: FmtuiApp) -> None:
        self.app = app
        self._watches = count(1)
        """Numbers for watches: each one's messages carry its own."""
        self._signals: list[int] = []
        """The signals whose handlers `open` installed (removed by `close`)."""
        self.saved: Saved | None = None
        """The watched run whose saved predictions the Errors pane shows when it is shown (None: another run's)."""

    def open(self, *, signals: bool = False, watch_path: Path | None = None) -> None:
        """Install the signal handlers (when asked: the CLI does) and watch `watch_path` once the app has drawn."""
        if signals:
            self._handle_signals()
        if watch_path is not None:
            self.app.call_after_refresh(self._watch_at_start, watch_path)

    def close(self) -> None:
        """Give the signals back (the app is leaving; its workers are cancelled by Textual)."""
        if self._signals:
            loop = asyncio.get_running_loop()
            for signum in self._signals:
                loop.remove_signal_handler(signum)
            self._signals = []

    # --- watching ---------------------------------------------------------------------------------------

    def watch(self, path: Path, config: RunConfig) -> None:
        """Show the run folder `path` in the Train pane as another process trains it (or as it went)."""
        app = self.app
        if app.activity.here and app.train_pane.run_dir == Path(path):
            app.action_pane("train")  # the run this dashboard trains: it is on show already
            return
        if app.activity.here:
            app.bell()
            app.notify("a run trains here: stop it before watching another", severity="warning", markup=False)
            return
        app.workers.cancel_group(app, "train")  # the run watched so far, if any
        activity = watching(path, next(self._watches))
        app.become(activity)
        app.train_pane.show_starting(config, "reading its folder…")
        app.action_pane("train")
        data_dir = (app.valid_config or app.initial_config).data_dir
        self._watch_saved(Saved(Path(path), config, data_dir, activity.watch_id))
        follow = partial(self._follow, Path(path), activity.watch_id)
        app.run_worker(follow, thread=True, exclusive=True, exit_on_error=False, group="train", name="watch")

    def _watch_at_start(self, path: Path) -> None:
        try:
            record = read_run(path)
        except RunError as e:  # checked by the command line; it may have vanished since
            self.app.notify(safe_text(e), title="cannot watch", severity="error", timeout=8, markup=False)
            return
        self.watch(path, record.config)

    def _follow(self, path: Path, watch_id: int) -> None:
        """The watch worker (a thread): the run's messages, each carrying this watch's number."""
        worker = get_current_worker()
        watch_run(path, self.app.post_message, lambda: worker.is_cancelled, watch_id=watch_id)

    def unwatch(self) -> None:
        """Stop following the watched run (it goes on training in its own process)."""
        app = self.app
        if app.activity.watched is None:
            return
        name = app.activity.watched.name
        app.workers.cancel_group(app, "train")
        app.become(IDLE)  # the watch's last messages, still queued, are dropped: their watch is over
        app.train_pane.show_left(f"no longer watching {name}: it goes on in its own process (5 Runs shows it)")

    # --- the Errors pane of a watched run: loaded when shown -----------------------------------------------

    def _watch_saved(self, saved: Saved) -> None:
        """The Errors pane follows this watch from now on (the test split of an earlier watch kept when the same)."""
        before = self.saved
        if before is not None and (before.config.dataset, before.config.data_dir, before.data_dir) == (
            saved.config.dataset,
            saved.config.data_dir,
            saved.data_dir,
        ):
            saved.split = before.split
        self.forget_saved()
        self.saved = saved

    def forget_saved(self) -> None:
        """Another run's predictions take the Errors pane (a run trained here, a past run opened): stop loading."""
        self.saved = None
        self.app.workers.cancel_group(self.app, "saved")

    def epoch_shown(self, message: EpochFinished) -> None:
        """A watched epoch reached the Train pane: its predictions are loaded now if the Errors pane is shown."""
        saved = self.saved
        if saved is not None and message.watch_id == saved.watch_id and message.event.epoch > saved.epoch:
            saved.epoch, saved.epochs = message.event.epoch, message.event.epochs
            self.errors_shown()

    def errors_shown(self) -> None:
        """Load the watched run's newest saved predictions and weights, if the Errors pane is shown and they are
        not loaded yet (one load at a time: a newer epoch is loaded after it)."""
        saved, app = self.saved, self.app
        if saved is None or saved.loading or saved.problem or saved.loaded >= saved.epoch:
            return
        if app.query_one(TabbedContent).active != "errors":
            return
        saved.loading = True
        load = partial(
            load_saved,
            saved.path,
            saved.config,
            app.post_message,
            epoch=saved.epoch,
            data_dir=saved.data_dir,
            split=saved.split,
            watch_id=saved.watch_id,
        )
        app.run_worker(load, thread=True, exclusive=True, exit_on_error=False, group="saved", name="saved")

    def saved_loaded(self, message: SavedResults) -> None:
        """Hand a watched run's saved predictions and weights to the Errors pane (unless another run took it)."""
        saved = self.saved
        if saved is None or message.watch_id != saved.watch_id:
            return
        saved.loading, saved.loaded = False, message.epoch
        if message.problem:
            saved.problem = message.problem
            self.app.notify(message.problem, title="run", severity="error", timeout=8, markup=False)
            return
        saved.split = (message.images, message.classes)
        errors = self.app.query_one(ErrorsPane)
        errors.set_test_split(message.images, message.classes)
        errors.show_results(message.results, f"epoch {message.epoch}/{saved.epochs} · run {safe_text(saved.path.name)}")
        errors.show_weights(message.weights, message.weights_note or NO_WEIGHTS)
        self.errors_shown()  # a newer epoch came in the meantime

    # --- stopping a watched run ---------------------------------------------------------------------------

    def ask_to_stop(self, path: Path) -> None:
        """After a yes, SIGINT to the watched run's process (fmtui.watch.stop_writer checks that it is it)."""
        app = self.app
        try:
            writer = watch.stoppable(path)
            sig = watch.stop_signal(writer.pid or 0, safe_text(path.name))
        except watch.StopRefused as e:  # another host, or no process to ask: one line
            app.notify(str(e), title="cannot stop", severity="warning", timeout=8, markup=False)
            return

        def answered(yes: bool | None) -> None:
            if yes and app.activity.watched == path:
                self._stop_watched(path)

        question = f"Stop run {safe_text(path.name)} (pid {writer.pid})?"  # pid: the lock's verified holder
        how = "SIGINT, as Ctrl+C" if sig == signal.SIGINT else "SIGTERM: it ignores SIGINT, as `cmd &` in a script"
        detail = f"It stops after its current batch and keeps its finished epochs ({how})."
        app.push_screen(YesNoScreen(question, detail), answered)

    def _stop_watched(self, path: Path) -> None:
        app = self.app
        try:
            pid, sig = watch.stop_writer(path)
        except watch.StopRefused as e:
            app.notify(str(e), title="cannot stop", severity="warning", timeout=8, markup=False)
            return
        app.train_pane.show_stopping()
        how = "" if sig == "SIGINT" else f" ({sig}: it ignores SIGINT)"
        note = f"asked pid {pid} to stop {safe_text(path.name)} after its current batch{how}"
        app.notify(note, title="stopping", markup=False)

    # --- resuming -------------------------------------------------------------------------------------------

    def resume(self, record: RunRecord) -> None:
        """Go on training a run in its folder; a run that did all its epochs is extended, after a yes, by the
        Model pane's epochs. Refusals (fmtui.resume) come back as one notification (ResumeRefused)."""
        app = self.app
        if app.activity.busy:
            app.bell()
            watched = app.activity.doing is Doing.WATCHING
            what = "a run is watched: u" if watched else "a run trains: x"
            app.notify(f"{what} first", title="cannot resume", markup=False)
            return
        done = record.epochs_done
        if record.status != "completed" and done < record.config.epochs:
            self._resume(record, None)
            return
        more = (app.valid_config or app.initial_config).epochs
        question = f"{safe_text(record.name)} has done all its {done} epochs. Train it {more} more, to {done + more}?"
        detail = "How many more: the Model pane's epochs field."
        app.push_screen(YesNoScreen(question, detail), lambda yes: yes and self._resume(record, done + more))

    def _resume(self, record: RunRecord, epochs: int | None) -> None:
        app = self.app
        app.become(Activity(Doing.RESUMING))
        app.query_one(RunsPane).show_note(f"resuming {safe_text(record.name)}…")
        app.train(None, resume=record.path, epochs=epochs)

    def refused(self, message: ResumeRefused) -> None:
        """The run could not be resumed: back to idle, and say why."""
        app = self.app
        app.become(IDLE)
        app.query_one(RunsPane).show_note("")
        app.notify(safe_text(message.message), title="cannot resume", severity="warning", timeout=8, markup=False)

    # --- signals --------------------------------------------------------------------------------------------

    def _handle_signals(self) -> None:
        """QUIT_SIGNALS call `_signalled` on the event loop (signals ignored at start stay ignored: nohup)."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for name in QUIT_SIGNALS:
            signum = getattr(signal, name, None)
            if signum is not None and signal.getsignal(signum) != signal.SIG_IGN:
                loop.add_signal_handler(signum, self._signalled, signum)
                self._signals.append(signum)

    def _signalled(self, signum: int) -> None:
        """Quit as `q` does, the job here stopping after its batch with the signal named in its summary (a SIGINT
        while a run trains here only stops it). After a hang-up the terminal may be gone: the CLI guards the
        stream Textual writes to (fmtui.streams.guarded_terminal), so leaving cannot fail on it."""
        app, name = self.app, signal.Signals(signum).name
        app.become(app.activity.stopped_by(name))
        if signum == signal.SIGINT and app.activity.here:
            app.action_stop()
            app.notify("SIGINT: stopping the run after the current batch", title="stopping", markup=False)
            return
        app.workers.cancel_group(app, "train")
        app.exit(return_code=128 + signum)

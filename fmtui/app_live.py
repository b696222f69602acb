"""The dashboard's part in live runs: watching a run another process trains, stopping it, resuming a run, and
quitting cleanly on SIGTERM and SIGHUP. A mixin of FmtuiApp (fmtui.app), which owns the state it uses.

A watched run is followed by a worker of the "train" group (fmtui.workers.watch_run) that posts the messages a
run trained here posts, each tagged with the watch's id: the panes show it unchanged, and the messages of a run
no longer watched are dropped (FmtuiApp._current).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.message import Message
from textual.worker import get_current_worker

from fmtui import watch
from fmtui.config import RunConfig
from fmtui.messages import ResumeRefused
from fmtui.runs import RunError, RunRecord, read_run
from fmtui.signals import STOP_SIGNALS
from fmtui.text import safe_text
from fmtui.widgets.runs_pane import RunsPane
from fmtui.widgets.yes_no import YesNoScreen
from fmtui.workers import watch_run

if TYPE_CHECKING:
    from fmtui.app import FmtuiApp

QUIT_SIGNALS = STOP_SIGNALS  # fmtui.signals' list: the same signals in every command
"""Signals that stop the dashboard as quitting does (SIGINT only when no run trains here: else it stops that run,
as x does: it is how another fmtui that watches the run asks it to stop)."""


class LiveRuns:
    """Watch (enter or w in the Runs pane, `fmtui watch`), unwatch (u), stop a watched run (x), resume (R),
    and signals. Mixed into FmtuiApp: `self` is the app."""

    # --- watching ---------------------------------------------------------------------------------------

    def watch_run(self: FmtuiApp, path: Path, config: RunConfig) -> None:
        """Show the run folder `path` in the Train pane as another process trains it (or as it went)."""
        if self.training and self.watched is None and self.train_pane.run_dir == Path(path):
            self.action_pane("train")  # the run this dashboard trains: it is on show already
            return
        if self.training and self.watched is None:
            self.bell()
            self.notify("a run trains here: stop it before watching another", severity="warning", markup=False)
            return
        self.workers.cancel_group(self, "train")  # the run watched so far, if any
        self.watch_id = next(self.watches)
        self.watched, self.training, self.stop_cause = Path(path), True, None
        self.train_pane.show_starting(config)
        self.action_pane("train")
        self._watch(Path(path), (self.valid_config or self.initial_config).data_dir, self.watch_id)

    def _watch_at_start(self: FmtuiApp, path: Path) -> None:
        try:
            record = read_run(path)
        except RunError as e:  # checked by the command line; it may have vanished since
            self.notify(safe_text(e), title="cannot watch", severity="error", timeout=8, markup=False)
            return
        self.watch_run(path, record.config)

    @work(thread=True, exclusive=True, exit_on_error=False, group="train")
    def _watch(self: FmtuiApp, path: Path, data_dir: str | None, watch_id: int) -> None:
        worker = get_current_worker()

        def post(message: Message) -> None:
            message.watch_id = watch_id  # type: ignore[attr-defined]
            self.post_message(message)

        watch_run(path, post, lambda: worker.is_cancelled, data_dir=data_dir)

    def action_unwatch(self: FmtuiApp) -> None:
        """Stop following the watched run (it goes on training in its own process)."""
        if self.watched is None:
            return
        name = self.watched.name
        self.workers.cancel_group(self, "train")
        self.watch_id = next(self.watches)
        self.watched, self.training = None, False
        self.train_pane.show_left(f"no longer watching {name}: it goes on in its own process (5 Runs shows it)")

    def on_runs_pane_watch(self: FmtuiApp, message: RunsPane.Watch) -> None:
        self.watch_run(message.record.path, message.record.config)

    # --- stopping a watched run ---------------------------------------------------------------------------

    def _ask_to_stop(self: FmtuiApp, path: Path) -> None:
        """After a yes, SIGINT to the watched run's process (fmtui.watch.stop_writer checks that it is it)."""
        try:
            writer = watch.stoppable(path)
        except watch.StopRefused as e:  # another host, or no process to ask: one line
            self.notify(str(e), title="cannot stop", severity="warning", timeout=8, markup=False)
            return

        def answered(yes: bool | None) -> None:
            if yes and self.watched == path:
                self._stop_watched(path)

        question = f"Stop run {safe_text(path.name)} (pid {writer.pid})?"  # pid: the lock's verified holder
        detail = "It stops after its current batch and keeps its finished epochs (SIGINT, as Ctrl+C)."
        self.push_screen(YesNoScreen(question, detail), answered)

    def _stop_watched(self: FmtuiApp, path: Path) -> None:
        try:
            pid = watch.stop_writer(path)
        except watch.StopRefused as e:
            self.notify(str(e), title="cannot stop", severity="warning", timeout=8, markup=False)
            return
        self.train_pane.show_stopping()
        self.notify(f"asked pid {pid} to stop {path.name} after its current batch", title="stopping", markup=False)

    # --- resuming -------------------------------------------------------------------------------------------

    def on_runs_pane_resume(self: FmtuiApp, message: RunsPane.Resume) -> None:
        self.resume_run(message.record)

    def resume_run(self: FmtuiApp, record: RunRecord) -> None:
        """Go on training a run in its folder; a run that did all its epochs is extended, after a yes, by the
        Model pane's epochs. Refusals (fmtui.resume) come back as one notification (ResumeRefused)."""
        if self.training:
            self.bell()
            what = "a run is watched" if self.watched is not None else "a run trains"
            self.notify(f"{what}: {'u' if self.watched else 'x'} first", title="cannot resume", markup=False)
            return
        done = record.epochs_done
        if record.status != "completed" and done < record.config.epochs:
            self._resume(record, None)
            return
        more = (self.valid_config or self.initial_config).epochs
        question = f"{safe_text(record.name)} has done all its {done} epochs. Train it {more} more, to {done + more}?"
        detail = "How many more: the Model pane's epochs field."
        self.push_screen(YesNoScreen(question, detail), lambda yes: yes and self._resume(record, done + more))

    def _resume(self: FmtuiApp, record: RunRecord, epochs: int | None) -> None:
        self.training, self.resuming, self.stop_cause, self._what_trains = True, True, None, "A run"
        self.query_one(RunsPane).show_note(f"resuming {record.name}…")
        self._train(None, resume=record.path, epochs=epochs)

    def on_resume_refused(self: FmtuiApp, message: ResumeRefused) -> None:
        if self.is_running:
            self.training, self.resuming = False, False
            self.query_one(RunsPane).show_note("")
            self.notify(safe_text(message.message), title="cannot resume", severity="warning", timeout=8, markup=False)

    # --- signals --------------------------------------------------------------------------------------------

    def _handle_signals(self: FmtuiApp) -> None:
        """QUIT_SIGNALS call `_signalled` on the event loop (signals ignored at start stay ignored: nohup)."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for name in QUIT_SIGNALS:
            signum = getattr(signal, name, None)
            if signum is not None and signal.getsignal(signum) != signal.SIG_IGN:
                loop.add_signal_handler(signum, self._signalled, signum)

    def _signalled(self: FmtuiApp, signum: int) -> None:
        """Quit as `q` does, the run trained here stopping after its batch with the signal named in its summary
        (a SIGINT while a run trains here only stops it). After a hang-up the terminal may be gone: the CLI
        guards the stream Textual writes to (fmtui.streams.guarded_terminal), so leaving cannot fail on it."""
        name = signal.Signals(signum).name
        if signum == signal.SIGINT and self.training and self.watched is None:
            self.stop_cause = name
            self.action_stop()
            self.notify("SIGINT: stopping the run after the current batch", title="stopping", markup=False)
            return
        self.stop_cause = self.stop_cause or name
        self.workers.cancel_group(self, "train")
        self.exit(return_code=128 + signum)

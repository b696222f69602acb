"""The dashboard and live runs (Pilot): watching a run another process trains, stopping it, unwatching, resuming a
run from the Runs pane, and signals (fmtui.app_live)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pilot import HANG, sync, text_of, wait_for
from runfolders import Writer, write_run
from test_live import config, record, stop_at
from textual.widgets import DataTable

from fmtui.app import make_app
from fmtui.config import RunConfig
from fmtui.widgets import runs_pane
from fmtui.widgets.charts import BatchLossChart
from fmtui.widgets.errors_pane import ErrorsPane
from fmtui.widgets.runs_pane import RunsPane
from fmtui.widgets.train_pane import EpochLog
from fmtui.widgets.weights_view import WeightsView
from fmtui.widgets.yes_no import YesNoScreen

pytestmark = pytest.mark.app

SIZE = (120, 40)


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch):
    monkeypatch.setattr(runs_pane, "POLL_INTERVAL", 0.1)


def log_text(app) -> str:
    log = app.query_one(EpochLog)
    return "\n".join(log.lines)


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


def headless(runs: Path, tiny_data: Path, epochs: int) -> subprocess.Popen:
    """`fmtui --no-ui train` on the tiny data, slow enough (small batches) to be seen while it trains."""
    args = ["--no-ui", "train", "--data-dir", tiny_data, "--batch-size", 4, "--epochs", epochs, "--runs-dir", runs]
    return subprocess.Popen([sys.executable, "-m", "fmtui", *map(str, args)], stdout=subprocess.DEVNULL)


@sync
async def test_a_headless_run_is_watched_live_and_stopped_from_the_dashboard(tiny_data, tmp_path):
    """The Runs pane's enter on a run another process trains: the Train pane shows its epochs and its step curve as
    they come, the Errors pane (once shown) its saved predictions; x asks before anything, n keeps it running, y stops
    it after its batch."""
    runs = tmp_path / "runs"
    proc = headless(runs, tiny_data, epochs=200)
    try:
        app = make_app(RunConfig(data_dir=str(tiny_data)), runs_dir=runs)
        async with app.run_test(size=SIZE) as pilot:
            pane = app.query_one(RunsPane)
            await pilot.press("5")
            await wait_for(pilot, lambda: pane.records and pane.records[0].status == "running")
            await pilot.press("enter")
            assert app.activity.watched == pane.records[0].path and app.activity.busy
            await wait_for(pilot, lambda: "Epoch [2/200]" in log_text(app))
            assert app.train_pane.phase == "running" and "Epoch [200/200]" not in log_text(app)
            state = text_of(app, "#train-state")
            assert state.startswith(f"watching pid {proc.pid} on {socket.gethostname()}, user ")
            await wait_for(pilot, lambda: "epoch " in text_of(app, "#train-stats"))  # progress, from live.json
            await wait_for(pilot, lambda: app.query_one(BatchLossChart).series.points()[0])  # from losses.jsonl
            await pilot.press("4")
            await wait_for(pilot, lambda: app.query_one(ErrorsPane).results is not None)  # predictions, saved
            await pilot.press("3")
            await pilot.press("x")
            assert isinstance(app.screen, YesNoScreen)
            assert app.screen.question == f"Stop run {app.activity.watched.name} (pid {proc.pid})?"
            await pilot.press("n")
            await pilot.pause(0.5)
            assert proc.poll() is None and app.train_pane.phase == "running"
            await pilot.press("x", "y")
            await wait_for(pilot, lambda: app.train_pane.phase == "finished")
            assert text_of(app, "#train-message").startswith("Stopped during epoch ")
            assert not app.activity.busy and app.activity.watched is None
        assert proc.wait(timeout=HANG) == 130  # Ctrl+C's code: the signal was SIGINT
    finally:
        proc.kill()
        proc.wait()


@sync
async def test_a_killed_writer_turns_the_watched_run_interrupted(tmp_path):
    writer = Writer(tmp_path / "runs" / "live", epochs=3)
    try:
        app = make_app(runs_dir=tmp_path / "runs", watch=tmp_path / "runs" / "live")
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.train_pane.phase == "running")
            assert app.query_one("TabbedContent").active == "train"
            for epoch in (1, 2):
                writer.epoch()
                await wait_for(pilot, lambda e=epoch: f"Epoch [{e}/3]" in log_text(app))
            writer.kill()
            await wait_for(pilot, lambda: app.train_pane.phase == "finished")
            message = text_of(app, "#train-message")
            assert message.startswith(f"Interrupted after epoch 2 of 3 (pid {writer.proc.pid} on ")
            assert not app.activity.busy and app.activity.watched is None
    finally:
        writer.close()


@sync
async def test_a_watched_folder_that_vanishes_is_a_message_not_a_crash(tmp_path):
    path = tmp_path / "runs" / "live"
    writer = Writer(path, epochs=3)
    try:
        app = make_app(runs_dir=tmp_path / "runs", watch=path)
        async with app.run_test(size=SIZE) as pilot:
            writer.epoch()
            await wait_for(pilot, lambda: "Epoch [1/3]" in log_text(app))
            shutil.rmtree(path)
            await wait_for(pilot, lambda: app.train_pane.phase == "failed")
            assert text_of(app, "#train-message") == f"ERROR: {path}: vanished while it was watched"
            assert not app.activity.busy
    finally:
        writer.close()


@sync
async def test_stop_of_a_run_on_another_host_says_it_cannot(tmp_path):
    path = write_run(tmp_path / "runs" / "far", epochs=3, done=1, status="running")
    live = {"status": "running", "heartbeat": time.time(), "pid": 4242, "host": "gpu-box-elsewhere"}
    (path / "live.json").write_text(json.dumps(live))
    app = make_app(runs_dir=tmp_path / "runs", watch=path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "Epoch [1/3]" in log_text(app))
        await pilot.press("x")
        await wait_for(pilot, lambda: notes(app))
        (note,) = notes(app)
        assert note.startswith("far is written by pid 4242 on gpu-box-elsewhere, user ")
        assert note.endswith(": stop it there, signals do not cross machines")
        assert not isinstance(app.screen, YesNoScreen) and app.activity.watched == path


@sync
async def test_u_unwatches_and_the_run_goes_on(tmp_path):
    path = tmp_path / "runs" / "live"
    writer = Writer(path, epochs=3)
    try:
        app = make_app(runs_dir=tmp_path / "runs", watch=path)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.train_pane.phase == "running")
            assert app.check_action("unwatch", ()) and not app.check_action("start", ())
            await pilot.press("u")
            assert app.activity.watched is None and not app.activity.busy and app.check_action("start", ())
            assert (
                text_of(app, "#train-message")
                == "no longer watching live: it goes on in its own process (5 Runs shows it)"
            )
            writer.epoch()
            await pilot.pause(0.5)
            assert "Epoch [1/3]" not in log_text(app)  # the watch ended: its worker posts nothing more
            assert writer.proc.poll() is None
    finally:
        writer.close()


@sync
async def test_enter_on_the_run_this_dashboard_trains_shows_it(tiny_data, tmp_path):
    runs = tmp_path / "runs"
    app = make_app(RunConfig(data_dir=str(tiny_data), batch_size=4, epochs=100), runs_dir=runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: app.train_pane.run_dir is not None)
        await pilot.press("5")
        pane = app.query_one(RunsPane)
        await wait_for(pilot, lambda: pane.records and pane.records[0].status == "running")
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one("TabbedContent").active == "train" and app.activity.watched is None and not notes(app)
        await pilot.press("x")
        await wait_for(pilot, lambda: not app.activity.busy)


# --- watching needs no torch; the Errors pane loads what it needs when shown ---------------------------------------


def finished_folder(path: Path, epochs: int = 3, batches: int = 6, **config) -> Path:
    """A completed run's folder as the recorder leaves it: epochs, its last progress in live.json, its step curve."""
    write_run(path, epochs=epochs, status="completed", **config)
    live = {"status": "completed", "epoch": epochs, "epochs": epochs, "batch": batches, "batches": batches}
    live.update(loss=0.4, accuracy=85.0, samples_per_s=1e4, elapsed=2.0, eta=0.0, step=epochs * batches)
    live.update(heartbeat=time.time(), pid=4242, host="gpu-box")
    (path / "live.json").write_text(json.dumps(live))
    curve = [{"step": s, "loss": 2.3 / s, "steps": 1} for s in range(1, epochs * batches + 1)]
    (path / "losses.jsonl").write_text("".join(json.dumps(c) + "\n" for c in curve))
    return path


WATCH_WITHOUT_TORCH = r"""
import asyncio, json, sys, time
from pathlib import Path
from fmtui.app import make_app
from fmtui.widgets.charts import BatchLossChart
from fmtui.widgets.train_pane import EpochLog

async def main(path, epochs):
    app = make_app(runs_dir=path.parent, watch=path)
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + float(sys.argv[3])  # a guard against a hang, never a speed check
        while f"Epoch [{epochs}/{epochs}]" not in "\n".join(app.query_one(EpochLog).lines):
            assert time.monotonic() < deadline, "the epochs were never shown"
            await pilot.pause(0.05)
        await pilot.pause()
        steps = app.query_one(BatchLossChart).series.points()[0]
        print(json.dumps({"torch": "torch" in sys.modules, "steps": steps, "phase": app.train_pane.phase}))

asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
"""


def test_a_watch_shows_a_runs_epochs_and_step_curve_without_importing_torch(tmp_path):
    """`fmtui watch RUN` opens the dashboard on the run: its epochs, its step curve and its end come from its files,
    and torch is not imported (in a fresh process: this one has torch already)."""
    path = finished_folder(tmp_path / "runs" / "done", epochs=3)
    script = [sys.executable, "-c", WATCH_WITHOUT_TORCH, str(path), "3", str(HANG)]
    done = subprocess.run(script, capture_output=True, text=True, timeout=2 * HANG)
    assert done.returncode == 0, done.stderr[-2000:]
    shown = json.loads(done.stdout.strip().splitlines()[-1])
    assert shown == {"torch": False, "steps": list(range(1, 19)), "phase": "finished"}


@sync
async def test_a_watched_runs_predictions_and_weights_load_only_once_the_errors_pane_is_shown(tiny_data, tmp_path):
    """A finished run watched (w in Runs, `fmtui watch RUN`): its step curve is the one its writer recorded; its
    saved predictions and weights, which need torch and the dataset, are loaded when the Errors pane is shown."""
    path = tmp_path / "runs" / "done"
    record(config(tiny_data, epochs=2), path)
    recorded = [json.loads(line) for line in (path / "losses.jsonl").read_text().splitlines()]
    app = make_app(RunConfig(data_dir=str(tiny_data)), runs_dir=tmp_path / "runs", watch=path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.train_pane.phase == "finished")
        assert app.query_one(BatchLossChart).series.points()[0] == [r["step"] for r in recorded]
        await pilot.pause(0.5)
        assert app.live.saved.epoch == 2 and app.live.saved.loaded == 0  # nothing loaded: the pane was not shown
        errors = app.query_one(ErrorsPane)
        assert errors.results is None and app.query_one(WeightsView).weights is None
        await pilot.press("4")
        await wait_for(pilot, lambda: errors.results is not None)
        assert errors.images is not None and errors.run_label == "epoch 2/2 · run done"
        assert app.query_one(WeightsView).weights is not None  # an MLP: what its first layer learned
        final = json.loads((path / "summary.json").read_text())["final"]
        assert math.isclose(errors.results.accuracy, final["test_accuracy"], rel_tol=1e-6)  # the last epoch's


@sync
async def test_a_watched_run_without_its_data_here_is_shown_and_the_errors_pane_says_why_once(tmp_path):
    """No dataset here to draw the mistakes on: the run is watched all the same, and the Errors pane says why once,
    not again at each new epoch."""
    path = tmp_path / "runs" / "live"
    writer = Writer(path, epochs=3)
    try:
        app = make_app(RunConfig(data_dir=str(tmp_path / "no-data")), runs_dir=tmp_path / "runs", watch=path)
        async with app.run_test(size=SIZE) as pilot:
            writer.epoch()
            await wait_for(pilot, lambda: "Epoch [1/3]" in log_text(app))
            await pilot.press("4")
            await wait_for(pilot, lambda: notes(app))
            writer.epoch()  # a new epoch while the Errors pane is shown: its predictions would be loaded now
            await wait_for(pilot, lambda: "Epoch [2/3]" in log_text(app))
            await pilot.pause(0.5)
            (note,) = notes(app)
            assert note.startswith("live's mistakes cannot be shown: ") and "\n" not in note
            assert app.activity.watched == path and app.train_pane.phase == "running"
    finally:
        writer.close()


@sync
async def test_a_dashboard_opened_on_a_watch_shows_the_train_pane_and_counts_parameters_once_the_model_pane_shows(
    tmp_path,
):
    """The Model pane's parameter count builds the model (torch): a dashboard opened on a watch counts it when that
    pane is first shown, not before."""
    path = finished_folder(tmp_path / "runs" / "done")
    app = make_app(RunConfig(model="softmax"), runs_dir=tmp_path / "runs", watch=path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.train_pane.phase == "finished")
        assert app.query_one("TabbedContent").active == "train"
        assert text_of(app, "#model-summary") == "counting parameters…"
        await pilot.press("2")
        await wait_for(pilot, lambda: "7,850 parameters" in text_of(app, "#model-summary"))


# --- resuming from the Runs pane ----------------------------------------------------------------------


def summary(path: Path) -> dict:
    return json.loads((path / "summary.json").read_text())


async def ended(path: Path) -> dict:
    """The run's summary once it says how the run ended (the worker thread may outlive the app by a batch)."""
    deadline = time.monotonic() + HANG
    while summary(path)["status"] == "running" and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return summary(path)


@sync
async def test_R_resumes_a_stopped_run_in_its_folder_and_shows_it_whole(tiny_data, tmp_path):
    path = tmp_path / "runs" / "stopped"
    record(config(tiny_data, epochs=3), path, should_stop=stop_at(8))  # 6 batches an epoch: stopped in epoch 2
    assert summary(path)["epochs_done"] == 1
    app = make_app(RunConfig(data_dir=str(tiny_data)), runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await wait_for(pilot, lambda: app.query_one(RunsPane).records)
        await pilot.press("R")
        await wait_for(pilot, lambda: app.train_pane.phase == "finished")
        assert text_of(app, "#train-message").startswith("Done: finished 3 epochs")
        assert all(f"Epoch [{e}/3]" in log_text(app) for e in (1, 2, 3))  # the epoch it had, then the new ones
    assert (summary(path)["status"], summary(path)["epochs_done"], summary(path)["resumed_from"]) == (
        "completed",
        3,
        [1],
    )


@sync
async def test_R_on_a_completed_run_asks_then_extends_it_by_the_model_panes_epochs(tiny_data, tmp_path):
    path = tmp_path / "runs" / "done"
    record(config(tiny_data, epochs=2), path)
    app = make_app(RunConfig(data_dir=str(tiny_data), epochs=3), runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await wait_for(pilot, lambda: app.query_one(RunsPane).records)
        await pilot.press("R")
        assert isinstance(app.screen, YesNoScreen)
        assert app.screen.question == "done has done all its 2 epochs. Train it 3 more, to 5?"
        await pilot.press("n")
        await pilot.pause()
        assert not app.activity.busy and summary(path)["epochs_done"] == 2
        await pilot.press("R", "y")
        await wait_for(pilot, lambda: app.train_pane.phase == "finished")
    assert (summary(path)["status"], summary(path)["epochs_done"]) == ("completed", 5)


@pytest.mark.parametrize(
    "damage,words",
    [
        (lambda p: (p / "checkpoint.pt").unlink(), "has no checkpoint.pt"),
        (lambda p: (p / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated"), "is not a readable checkpoint"),
    ],
    ids=["no checkpoint", "truncated checkpoint"],
)
@sync
async def test_a_refused_resume_is_one_notification_and_trains_nothing(tiny_data, tmp_path, damage, words):
    path = tmp_path / "runs" / "stopped"
    record(config(tiny_data, epochs=3), path, should_stop=stop_at(8))
    damage(path)
    before = (path / "metrics.jsonl").read_bytes()
    app = make_app(RunConfig(data_dir=str(tiny_data)), runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await wait_for(pilot, lambda: app.query_one(RunsPane).records)
        await pilot.press("R")
        await wait_for(pilot, lambda: notes(app))
        (note,) = notes(app)
        assert words in note and "\n" not in note
        assert (
            not app.activity.busy and app.train_pane.phase == "idle" and app.query_one("TabbedContent").active == "runs"
        )
    assert (path / "metrics.jsonl").read_bytes() == before and summary(path)["status"] == "stopped"


@sync
async def test_R_on_a_running_run_says_to_watch_it(tmp_path):
    writer = Writer(tmp_path / "runs" / "live", epochs=3)
    try:
        app = make_app(runs_dir=tmp_path / "runs")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("5")
            await wait_for(pilot, lambda: app.query_one(RunsPane).records)
            app.query_one(DataTable).focus()
            await pilot.press("R")
            assert notes(app) == ["live is still training: enter watches it (x there asks it to stop)"]
            assert not app.activity.busy
    finally:
        writer.close()


# --- signals ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
@sync
async def test_a_signal_stops_the_dashboard_and_its_run_names_it(tiny_data, tmp_path, signum):
    runs = tmp_path / "runs"
    app = make_app(RunConfig(data_dir=str(tiny_data), batch_size=4, epochs=100), runs_dir=runs, signals=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: "Epoch [1/100]" in log_text(app))
        assert signal.getsignal(signum) not in (signal.SIG_DFL, None)  # the app's handler, not death by it
        os.kill(os.getpid(), signum)
        await wait_for(pilot, lambda: not app.is_running)
    assert app.return_code == 128 + signum
    assert signal.getsignal(signum) == signal.SIG_DFL  # given back as the app unmounted (LiveRuns.close)
    (folder,) = runs.iterdir()
    done = await ended(folder)
    assert done["status"] == "stopped" and done["message"].startswith(f"stopped by {signum.name} during epoch ")


@sync
async def test_sigint_stops_the_run_here_and_keeps_the_dashboard(tiny_data, tmp_path):
    """What a watcher's stop request does to a dashboard that trains the run."""
    runs = tmp_path / "runs"
    app = make_app(RunConfig(data_dir=str(tiny_data), batch_size=4, epochs=100), runs_dir=runs, signals=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: "Epoch [1/100]" in log_text(app))
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        os.kill(os.getpid(), signal.SIGINT)
        await wait_for(pilot, lambda: app.train_pane.phase == "finished")
        assert app.is_running and not app.activity.busy
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back on unmount
    (folder,) = runs.iterdir()
    assert summary(folder)["message"].startswith("stopped by SIGINT during epoch ")


@sync
async def test_a_long_question_wraps_whole_at_80_columns():
    """The stop question names the run and its pid: at 80 columns it wraps inside the box (the pid and the `?`
    were cut off)."""
    from textual.app import App

    question = "Stop run 20261208-004633-fashion-mnist-softmax-zscore-lr0.01 (pid 23195)?"

    class Asking(App):
        def on_mount(self) -> None:
            self.push_screen(YesNoScreen(question, "It stops after its current batch."))

    app = Asking()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        shown, box = app.screen.query_one("#yes-no-question"), app.screen.query_one("#yes-no")
        assert shown.size.height == 2 and shown.region.right <= box.content_region.right

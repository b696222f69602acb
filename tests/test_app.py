"""App tier: Pilot tests of the shell, the Model form and the Train pane, plus a real tiny training run."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import weakref
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import write_idx_dataset
from pilot import footer_current, run, sync, synthetic_run, text_of, until_stopped, wait_for
from textual.widgets import Button, Input, Select, Static, TabbedContent
from textual.widgets._footer import FooterKey

from fmtui.activity import IDLE, Activity, Doing
from fmtui.app import QuitScreen, make_app
from fmtui.config import RunConfig
from fmtui.events import Finished
from fmtui.messages import (
    EpochFinished,
    ExperimentProgress,
    TrainingFailed,
    TrainingFinished,
    TrainingProgress,
    TrainingStarted,
)
from fmtui.results import Results
from fmtui.widgets.charts import BatchLossChart, BoundedSeries, EpochChart, downsample, finite
from fmtui.widgets.config_form import ConfigForm
from fmtui.widgets.data_pane import DataPane
from fmtui.widgets.errors_pane import ErrorsPane
from fmtui.widgets.runs_pane import RunsChart, RunsPane
from fmtui.widgets.train_pane import TrainPane, fmt_duration, fmt_rate
from fmtui.workers import error_message, run_training

pytestmark = pytest.mark.app

SIZE = (100, 32)


def only_run(runs: Path) -> Path:
    dirs = [p for p in runs.iterdir() if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


# --- no UI ----------------------------------------------------------------------------------------


def test_app_module_imports_without_torch():
    code = "import sys, fmtui.app; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout


def test_helpers_format_for_people():
    assert fmt_duration(42) == "0:42" and fmt_duration(3723) == "1:02:03"
    assert fmt_rate(950) == "950" and fmt_rate(15234) == "15.2k" and fmt_rate(2.5e6) == "2.5M"
    assert downsample([0, 1, 2, 3], [1, 3, 5, 7], 2) == ([0.5, 2.5], [2.0, 6.0])
    assert downsample([0, 1], [1, 2], 10) == ([0, 1], [1, 2])
    assert finite([0, 1, 2], [1.0, float("nan"), float("inf")]) == ([0], [1.0])


def test_batch_chart_keeps_its_history_bounded_and_in_place():
    """Halving the whole series with plain pairwise means drifted: after 200,000 points its first point
    sat at 87% of the run, so the chart showed only the end of a long run."""
    chart = BatchLossChart("loss")
    chart.series = BoundedSeries(10)
    for i in range(11):
        chart.add(i, 1.0)
    assert len(chart.series) == 6 and chart.series.points()[1] == [1.0] * 6
    chart.series = BoundedSeries(100)
    for i in range(20000):
        chart.add(i / 100, 1.0)
    xs, _ = chart.series.points()
    assert len(xs) <= 100 and xs[0] < 2 and xs[-1] > 198


def test_bounded_series_averages_old_points_evenly():
    """Kept points stand for equally many inputs, so the curve keeps its place on the x axis."""
    series = BoundedSeries(10)
    for x in range(1, 1001):
        series.add(x, 2.0 * x)
    xs, ys = series.points()
    assert 5 <= len(xs) == len(ys) == len(series) <= 11 and series.stride == 128
    assert xs[0] == (1 + 128) / 2 and xs[-1] == (897 + 1000) / 2  # the first 128 inputs; the last 104
    assert all(y == 2.0 * x for x, y in zip(xs, ys))
    assert BoundedSeries(10).points() == ([], [])


def test_epoch_chart_keeps_its_series_bounded():
    """A run of many epochs kept every point: the series, and each redraw, grew without end."""
    chart = EpochChart("loss")
    chart.MAX_POINTS = 20
    for epoch in range(1, 1001):
        chart.add(epoch, train=float(epoch), val=None, test=2.0 * epoch)
    assert set(chart.series) == {"train", "test"} and chart.last_epoch == 1000
    assert all(len(s) <= 21 for s in chart.series.values())
    xs, ys = chart.series["test"].points()
    assert xs[0] < 40 and xs[-1] > 960 and ys[-1] == 2.0 * xs[-1]  # still the whole run


@sync
async def test_batch_chart_redraws_once_a_second_however_fast_points_arrive():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        chart = app.query_one("#batch-chart", BatchLossChart)
        draws = []
        chart.draw = lambda plt: draws.append(len(chart.series))
        for i in range(1000):
            chart.add(i / 100, 1.0 / (i + 1))
        await pilot.pause(2.2)
        assert 1 <= len(draws) <= 3 and draws[-1] == 1000


def test_error_message_is_one_line():
    from fmtui.data import DataError

    class OutOfMemoryError(RuntimeError):
        """Named like torch's, but not it: errors are told apart by class, never by name."""

    out_of_memory = torch.cuda.OutOfMemoryError("CUDA out of memory.\nmore")
    assert error_message(DataError("files not found")) == "files not found"
    assert error_message(out_of_memory).startswith("out of GPU memory: try a smaller")
    assert error_message(OutOfMemoryError("CUDA out of memory.\nmore")) == "OutOfMemoryError: CUDA out of memory."
    assert error_message(ValueError("bad\ntrace")) == "ValueError: bad"


def test_run_training_writes_the_run_folder_and_posts_every_event(tiny_data, tmp_path):
    posted = []
    cfg = RunConfig(data_dir=str(tiny_data), epochs=2, batch_size=100, device="cpu")
    run_training(cfg, tmp_path / "runs", posted.append, lambda: False)
    kinds = [type(m) for m in posted]
    assert kinds[0] is TrainingStarted and kinds[-1] is TrainingFinished
    assert kinds.count(EpochFinished) == 2 and set(kinds) <= {
        TrainingStarted,
        TrainingProgress,
        EpochFinished,
        TrainingFinished,
    }
    run = only_run(tmp_path / "runs")
    files = {p.name for p in run.iterdir()}
    assert {"config.json", "metrics.jsonl", "summary.json", "model.pt", "predictions.pt"} <= files
    assert summary(run)["status"] == "completed"
    assert posted[0].images.shape[1:] == (1, 28, 28) and len(posted[0].classes) == 10


def test_run_training_reports_missing_data(tmp_path):
    posted = []
    run_training(
        RunConfig(data_dir=str(tmp_path / "empty"), device="cpu"), tmp_path / "runs", posted.append, lambda: False
    )
    assert [type(m) for m in posted] == [TrainingFailed]
    assert "files not found" in posted[0].message
    assert not (tmp_path / "runs").exists()  # as headless: no run folder for a run that never started


# --- the Model pane ---------------------------------------------------------------------------------


@sync
async def test_bad_learning_rate_shows_why_and_disables_start():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        lr = app.query_one("#f-lr", Input)
        lr.focus()
        lr.value = ""
        await pilot.press("-", "1")
        await pilot.pause()
        assert "must be > 0" in text_of(app, "#note-lr")  # the field typed in is checked at each keystroke
        await wait_for(pilot, lambda: "(Start is disabled)" in text_of(app, "#form-status"))  # the form: on a pause
        await wait_for(pilot, lambda: app.query_one("#start", Button).disabled)  # the Train pane's, a refresh later
        assert app.check_action("start", ()) is False  # not offered while it cannot start (issue 22)
        await pilot.press("backspace", "backspace", "1", "e", "-", "3")
        await pilot.pause()
        assert lr.value == "1e-3", lr.value
        assert app.form.config.lr == 1e-3
        await pilot.press("escape")  # leaving the field reads the form at once: Start is right before the next key
        assert not app.query_one("#start", Button).disabled and app.focused is app.form  # out of the field


@sync
async def test_typing_checks_only_the_field_and_reads_the_form_once_typing_pauses(monkeypatch):
    """A keystroke costs one field's parse: no Changed message, no form read, no parameter count per key."""
    from fmtui.widgets import config_form

    monkeypatch.setattr(
        config_form, "SETTLE", 3600.0
    )  # typing never pauses during this test: leaving the field ends it
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.valid_config is not None)
        changes, counts, post = [], [], app.form.post_message
        app.form.post_message = lambda m: (isinstance(m, ConfigForm.Changed) and changes.append(m.config), post(m))[1]
        app.form._count = lambda cfg: counts.append(cfg)
        lr = app.query_one("#f-lr", Input)
        lr.focus()
        await pilot.press("end", *["backspace"] * 4, "0", ".", "0", "0", "5", "-")
        assert lr.value == "0.005-" and "✗" in text_of(app, "#note-lr")  # this field: checked at each key
        assert changes == [] and counts == [] and "✓ valid" in text_of(app, "#form-status")  # the form: not yet
        await pilot.press("backspace", "tab")  # leaving the field reads the form at once, once
        assert [c.lr for c in changes] == [0.005] and len(counts) == 1 and "✗" not in text_of(app, "#note-lr")


@sync
async def test_mlp_only_fields_grey_out_for_softmax():
    app = make_app(RunConfig(model="softmax"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.query_one("#f-hidden", Input).disabled
        app.query_one("#f-model", Select).value = "mlp"
        await pilot.pause()
        assert not app.query_one("#f-hidden", Input).disabled


@sync
async def test_presets_fill_the_form_and_count_parameters(tiny_data):
    app = make_app(RunConfig(data_dir=str(tiny_data), epochs=9))
    async with app.run_test(size=SIZE) as pilot:
        app.action_preset("raw-1e-5")
        await pilot.pause()
        cfg = app.form.config
        assert (cfg.model, cfg.norm, cfg.lr, cfg.data_dir) == ("softmax", "none", 1e-5, str(tiny_data))
        assert (cfg.batch_size, cfg.epochs) == (1024, 100)  # as the lecture ran it (the batch size: from its charts)
        assert any("inferred from the lecture's charts" in n.message for n in app._notifications)
        assert app.query_one("#f-lr", Input).value == "1e-05"
        await wait_for(pilot, lambda: "7,850 parameters" in text_of(app, "#model-summary"))
        assert "784-10 softmax regression" in text_of(app, "#model-summary")
        app.query_one("#preset", Select).value = "zscore"  # the preset picker in the form
        await pilot.pause()
        assert app.form.config.norm == "zscore" and app.query_one("#preset", Select).is_blank()
        app.action_preset("mlp")
        await wait_for(pilot, lambda: "203,530 parameters" in text_of(app, "#model-summary"))
        assert (app.form.config.batch_size, app.form.config.epochs) == (64, 5)  # the lecture's step-by-step MLP


@sync
async def test_a_letter_typed_into_a_number_field_is_refused_there(tiny_data):
    app = make_app(RunConfig(data_dir=str(tiny_data)), trainer=until_stopped)
    async with app.run_test(size=SIZE) as pilot:
        field = app.query_one("#f-epochs", Input)
        field.focus()
        await pilot.press("end", "2", "p", "s", "q")  # digits are typed; no letter reaches the app's keys
        await pilot.pause()
        assert "'q' cannot be typed here · esc leaves the field" in text_of(app, "#note-epochs")
        await pilot.press("3")
        assert field.value == "523" and app.is_running and not app.activity.busy
        assert not app.query_one("#preset", Select).expanded and app.query_one(TabbedContent).active == "model"
        await wait_for(pilot, lambda: "escape" in {k.key for k in app.query("FooterKey")})  # (recomposed: wait)
        footer = {k.key for k in app.query("FooterKey")}
        assert not footer & {"s", "q", "p", "1"}  # the footer shows what works from here
        await pilot.press("escape", "3")
        assert app.query_one(TabbedContent).active == "train"


@sync
async def test_entering_the_model_pane_focuses_its_first_field():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.focused is app.query_one("#f-dataset")  # the app opens on the Model pane, ready to edit
        await pilot.press("escape", "1", "2")
        await pilot.pause()
        assert app.focused is app.query_one("#f-dataset")


@sync
async def test_command_palette_offers_the_main_actions():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        commands = {c.title: c.callback for c in app.get_system_commands(app.screen)}
        for title in ("Start training", "Stop training", "Show Train", "Show Errors"):
            assert title in commands
        assert sum(t.startswith("Preset:") for t in commands) == 6
        commands["Show Errors"]()
        commands["Preset: softmax, z-score"]()
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "model"
        assert (app.form.config.model, app.form.config.norm) == ("softmax", "zscore")


@sync
async def test_number_keys_switch_panes():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        for key, pane in (("1", "data"), ("3", "train"), ("4", "errors"), ("5", "runs"), ("2", "model")):
            await pilot.press(key)
            assert app.query_one(TabbedContent).active == pane
            if pane in ("data", "errors", "runs"):  # the pane's own keys work at once: it has the focus
                assert app.focused is not None and pane in {n.id for n in app.focused.ancestors_with_self}


@sync
async def test_the_footer_releases_the_keys_it_replaces():
    """Each refresh of the bindings rebuilds the footer's keys; Textual's Footer kept every old one (a watcher
    on its `compact`), about 0.2 MB an epoch while an epoch refreshed them (fmtui.widgets.footer)."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        seen = []
        for _ in range(10):
            app.screen.refresh_bindings()
            await pilot.pause()
            seen += [weakref.ref(key) for key in app.query(FooterKey)]
        gc.collect()
        shown = {id(key) for key in app.query(FooterKey)}
        kept = [ref() for ref in seen if ref() is not None and id(ref()) not in shown]
        if len({id(ref) for ref in seen}) == len(shown):  # one weakref per key object, dead or alive
            pytest.skip("this Textual keeps its footer's keys on refresh_bindings: none to release")
        assert kept == []  # the keys were rebuilt, and the old ones released


# --- the Train pane ----------------------------------------------------------------------------------


def long_config(data: Path) -> RunConfig:
    return RunConfig(data_dir=str(data), epochs=500, batch_size=16, device="cpu")


def polled(trainer):
    """The trainer, plus the list of what its should_stop() answered: the engine polls it before each batch."""
    answers: list[bool] = []

    def spied(cfg, runs_dir, post, should_stop):
        def poll() -> bool:
            answers.append(should_stop())
            return answers[-1]

        trainer(cfg, runs_dir, post, poll)

    return spied, answers


@sync
async def test_start_then_stop_within_a_batch(tiny_data, tmp_path):
    trainer, answers = polled(run_training)
    app = make_app(long_config(tiny_data), runs_dir=tmp_path / "runs", trainer=trainer)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("s")
        assert app.activity.busy and app.query_one(TabbedContent).active == "train"
        assert app.query_one("#start", Button).disabled and not app.query_one("#stop", Button).disabled
        await wait_for(pilot, lambda: "samples/s" in text_of(app, "#train-stats"))
        assert "ETA" in text_of(app, "#train-stats") and len(app.query_one("#batch-chart").series)
        app.query_one("#stop", Button).press()  # pilot.click would wait for an idle CPU, never true while training
        await wait_for(pilot, lambda: app.train_pane.phase != "running")
        polls_at_stop = len(answers)  # the worker was cancelled in the same UI step that set the phase
        await wait_for(pilot, lambda: not app.activity.busy)
        assert text_of(app, "#train-message").startswith("Stopped during epoch")  # not "Stopped: stopped during"
        assert not app.query_one("#start", Button).disabled
    # the first poll after Stop ended the run: no further batch was trained, whatever the epoch
    assert answers[polls_at_stop:] in ([], [True]) and answers[-1] and not any(answers[:-1])
    assert summary(only_run(tmp_path / "runs"))["status"] == "stopped"


@sync
async def test_the_x_key_stops_training(tiny_data, tmp_path):
    app = make_app(long_config(tiny_data), runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await wait_for(pilot, lambda: "samples/s" in text_of(app, "#train-stats"))
        await pilot.press("x")
        await wait_for(pilot, lambda: not app.activity.busy)
        assert app.train_pane.phase == "finished" and text_of(app, "#train-message").startswith("Stopped during ")
        await pilot.press("x")  # nothing to stop: nothing happens
        assert app.train_pane.phase == "finished"
    folder = only_run(tmp_path / "runs")
    assert summary(folder)["status"] == "stopped" and summary(folder)["epochs_done"] < 500


def test_quit_while_training_asks_then_stops_and_records_the_run(tiny_data, tmp_path):
    app = make_app(long_config(tiny_data), runs_dir=tmp_path / "runs", autostart=True)

    async def quit_while_training(pilot):
        await wait_for(pilot, lambda: "samples/s" in text_of(app, "#train-stats"))
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen) and app.is_running and app.activity.busy
        question = str(app.screen.query_one("#quit-question", Static).render())
        assert question == "A run is training: stop it and quit? y/n"
        await pilot.press("n")  # keep training
        assert not isinstance(app.screen, QuitScreen) and app.activity.busy
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: not app.is_running)

    run(app, quit_while_training)  # returns once the app and its worker thread have both ended
    # Quitting cancels the worker (Textual does so for every worker of an exiting app), which the loop
    # polls between batches: the 500-epoch run ends after its batch and is recorded as stopped. Were the
    # cancellation not polled, the run would go on to complete all 500 epochs.
    folder = only_run(tmp_path / "runs")
    assert summary(folder)["status"] == "stopped" and summary(folder)["epochs_done"] < 500


@sync
async def test_q_quits_at_once_when_idle_and_escape_keeps_a_run():
    app = make_app(RunConfig(device="cpu"), trainer=until_stopped)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("escape", "s")
        await wait_for(pilot, lambda: app.train_pane.phase == "running")
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, QuitScreen) and app.activity.busy
        await pilot.press("x")
        await wait_for(pilot, lambda: not app.activity.busy)
        await pilot.press("q")  # nothing trains: no question
        await wait_for(pilot, lambda: not app.is_running)


def failing(after_start: bool):
    """A trainer for make_app that fails, before or after the engine started the run."""

    def fail(cfg, runs_dir, post, should_stop):
        if after_start:
            post(synthetic_run(cfg, epochs=1)[0])
        post(TrainingFailed("boom"))

    return fail


@pytest.mark.parametrize(
    ("trainer", "phases", "state"),
    [
        (until_stopped, ["starting", "running", "stopping", "finished"], "784-256-10 relu"),
        (failing(after_start=False), ["starting", "failed"], "not started: see the message below"),
        (failing(after_start=True), ["starting", "running", "failed"], "784-256-10 relu"),
    ],
    ids=["stopped", "failed-to-start", "failed-while-running"],
)
@sync
async def test_the_train_pane_phase_follows_the_run(trainer, phases, state):
    app = make_app(RunConfig(device="cpu"), trainer=trainer)
    seen: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        pane = app.train_pane
        app.watch(pane, "phase", lambda phase: seen.append(phase), init=False)
        assert pane.phase == "idle" and not pane.busy
        await pilot.pause()
        await pilot.press("s")
        if trainer is until_stopped:
            await wait_for(pilot, lambda: pane.phase == "running")
            assert pane.busy  # the app's activity, handed to the pane by its watcher
            assert pane.run_dir is not None and not app.query_one("#stop", Button).disabled
            await pilot.press("x")
        await wait_for(pilot, lambda: not app.activity.busy)
        assert not pane.busy and not app.query_one("#start", Button).disabled
        assert state in text_of(app, "#train-state")
    assert seen == phases


@sync
async def test_missing_data_is_said_on_the_first_screen_with_the_fix(tmp_path):
    data = tmp_path / "nothing-here"
    app = make_app(RunConfig(data_dir=str(data), device="cpu"), runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "✗" in text_of(app, "#form-status"))
        status, help_ = text_of(app, "#form-status"), text_of(app, "#form-data")
        assert f"no Fashion-MNIST files in {data}: downloads are off" in status and "(Start is disabled)" in status
        assert f"into {data / 'fashion-mnist'}" in help_ and "FMTUI_DATA_DIR" in help_ and "--data-dir" in help_
        assert "unset FMTUI_NO_DOWNLOAD and press s" in help_
        assert max(len(line.replace(str(data), "DIR")) for line in help_.splitlines()) < 80
        await pilot.press("escape", "s")  # Start is off: no run that could only fail
        assert not app.activity.busy and app.query_one("#start", Button).disabled
        app.action_start()  # nor from the command palette
        assert not app.activity.busy and not (tmp_path / "runs").exists()
        await pilot.press("1")  # the Data pane says the same, in short lines
        await wait_for(pilot, lambda: app.query_one(DataPane).has_class("-error"))
        assert text_of(app, "#data-message") == help_
        write_idx_dataset(data / "fashion-mnist")  # the files arrive: noticed without a key
        await wait_for(pilot, lambda: "✓ valid: press s to train" in text_of(app, "#form-status"))
        assert text_of(app, "#form-data") == f"data: Fashion-MNIST in {data / 'fashion-mnist'}"
        await wait_for(pilot, lambda: not app.query_one("#start", Button).disabled)


@sync
async def test_missing_data_with_downloads_on_offers_a_download(tmp_path, monkeypatch):
    monkeypatch.delenv("FMTUI_NO_DOWNLOAD")
    app = make_app(RunConfig(data_dir=str(tmp_path), device="cpu"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "✓" in text_of(app, "#form-status"))
        assert text_of(app, "#form-status") == "✓ valid: press s to download Fashion-MNIST (30 MB) and train"
        assert "or press s: it downloads them (30 MB), then trains." in text_of(app, "#form-data")
        await wait_for(pilot, lambda: not app.query_one("#start", Button).disabled)  # the form's Changed, a cycle on


@sync
async def test_a_failed_download_is_one_short_line(tmp_path):
    """A run that cannot load its data (the files vanished after the check) fails with one readable line."""
    app = make_app(RunConfig(data_dir=str(tmp_path / "gone"), device="cpu"), runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        app.form.read = lambda: (RunConfig(data_dir=str(tmp_path / "gone"), device="cpu"), {}, None)
        app.action_start()
        await wait_for(pilot, lambda: not app.activity.busy)
        message = text_of(app, "#train-message").replace(str(tmp_path / "gone"), "DIR")
        assert (
            message.startswith("ERROR: Fashion-MNIST files not found in DIR or its sub-folders") and len(message) < 300
        )


@sync
async def test_a_diverged_run_says_so():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.post_message(
            TrainingFinished(
                Finished("diverged", "diverged at epoch 1, batch 3: the loss is not finite", [], None, 0.1, None),
                Path("runs/x"),
            )
        )
        await pilot.press("3")  # the epoch log writes once it is on screen and has a width
        await pilot.pause()
        assert text_of(app, "#train-message").startswith("DIVERGED at epoch 1, batch 3")
        log = app.query_one("#train-log")
        await wait_for(pilot, lambda: log.lines)
        text = " ".join(log.lines)
        assert "Diverged at epoch 1, batch 3" in text and "diverged: diverged" not in text.lower()


@sync
async def test_training_through_the_ui_fills_the_errors_pane(tiny_data, tmp_path):
    cfg = RunConfig(data_dir=str(tiny_data), epochs=2, batch_size=32, device="cpu")
    app = make_app(cfg, runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.click("#start")
        await wait_for(pilot, lambda: not app.activity.busy)
        assert "Done: finished 2 epochs" in text_of(app, "#train-message")
        log = "\n".join(app.query_one("#train-log").lines)
        assert "Epoch [2/2], Loss: " in log and "run folder " in log  # the headless mode's lines
        pane = app.query_one(TrainPane)
        assert len(pane.query_one("#loss-chart").series["test"]) == 2
        errors = app.query_one(ErrorsPane)
        assert errors.results is None  # the hidden Errors pane is not filled while training runs
        await pilot.press("4")
        await wait_for(pilot, lambda: errors.results is not None)
        assert app.query_one(TabbedContent).active == "errors" and errors.has_class("-ready")
        header = text_of(app, "#err-run")
        assert header.startswith("test accuracy ") and header.endswith(
            f" · completed · epoch 2/2 · run {only_run(tmp_path / 'runs').name}"
        )
        results, images, classes = errors.results, errors.images, errors.class_names
        assert len(results.labels) == len(images) == 200 and len(classes) == 10
        assert results.mislabeled()  # the synthetic data has label noise, so there are errors to browse
        assert (
            results.accuracy
            == json.loads((only_run(tmp_path / "runs") / "summary.json").read_text())["final"]["test_accuracy"]
        )  # the last epoch's predictions
    folder = only_run(tmp_path / "runs")
    assert summary(folder)["status"] == "completed"
    assert len((folder / "metrics.jsonl").read_text().splitlines()) == 2


@sync
async def test_the_data_pane_loads_only_when_shown(tiny_data):
    app = make_app(RunConfig(data_dir=str(tiny_data)))
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(DataPane)
        await wait_for(pilot, lambda: app.valid_config is not None)
        await pilot.pause()
        assert text_of(app, "#data-message") == "no dataset yet"  # hidden: no loading, no statistics
        await pilot.press("1")
        await wait_for(pilot, lambda: pane.has_class("-ready"))
        assert pane.data.norm == "symmetric"
        await pilot.press("2")
        app.query_one("#f-norm", Select).value = "zscore"
        await wait_for(pilot, lambda: pane.cfg.norm == "zscore")
        await pilot.pause()
        assert pane.data.norm == "symmetric"  # hidden again: the new normalization waits
        await pilot.press("1")
        await wait_for(pilot, lambda: pane.data.norm == "zscore")


# --- the Runs pane in the app -------------------------------------------------------------------------


@sync
async def test_opening_a_past_run_shows_its_errors_without_training(tiny_data, tmp_path):
    from fmtui.headless import Reporter
    from fmtui.headless import run_training as headless_training

    runs = tmp_path / "runs"
    cfg = RunConfig(data_dir=str(tiny_data), epochs=1, batch_size=32, device="cpu")
    assert headless_training(cfg, out=runs / "past", reporter=Reporter(open("/dev/null", "w"))) == 0
    app = make_app(cfg, runs_dir=runs, trainer=lambda *a: pytest.fail("no training expected"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await pilot.pause()
        await pilot.press("enter")
        pane = app.query_one(ErrorsPane)
        await wait_for(pilot, lambda: app.query_one(TabbedContent).active == "errors" and pane.results is not None)
        saved = json.loads((runs / "past" / "summary.json").read_text())["final"]["test_accuracy"]
        assert pane.results.accuracy == pytest.approx(saved)
        assert len(pane.results.mislabeled()) == int((pane.results.preds != pane.results.labels).sum()) > 0
        header = text_of(app, "#err-run")  # which run the pane shows, not only a toast
        assert header.startswith("test accuracy ") and header.endswith(
            " · completed · epoch 1/1 · run past (saved predictions)"
        )


@sync
async def test_lecture_experiment_from_one_key_fills_the_runs_charts(tiny_data, tmp_path):
    cfg = RunConfig(data_dir=str(tiny_data), model="softmax", epochs=2, batch_size=32, device="cpu")
    app = make_app(cfg, runs_dir=tmp_path / "runs")  # a softmax form: L takes its batch size and epochs
    async with app.run_test(size=SIZE) as pilot:
        app.train_pane._message("Done: finished 5 epochs · test acc 84.00%", "success")  # a previous run's end
        seen = []  # pane 3 follows the experiment: which runs, their epoch, how much is done, the time left
        show = app.train_pane.show_experiment

        def spy(message):
            show(message)
            seen.append((text_of(app, "#train-state"), text_of(app, "#train-stats"), text_of(app, "#train-message")))

        app.train_pane.show_experiment = spy
        await pilot.press("5")
        await pilot.press("L")
        runs = app.query_one(RunsPane)
        await wait_for(pilot, lambda: not app.activity.busy)
        assert any(
            state.startswith("lecture experiment: run")
            and " of 8 (" in state
            and "lr 0.01" in state
            and stats.startswith("epoch 1/2 · ")
            and "of the experiment · ETA " in stats
            and message.startswith("The lecture experiment is training;")  # not the previous run's Done
            for state, stats, message in seen
        ), seen
        assert "lecture experiment: 8 runs starting, batch 32, 2 epochs" in app.query_one("#train-log").lines[0]
        assert text_of(app, "#train-message").startswith("Done: lecture experiment: 8 of 8 runs")
        assert len(runs.records) == 8 and len(runs.selected) == 8
        assert {(r.config.norm, r.config.lr) for r in runs.records} == {
            (n, lr) for n in ("none", "unit", "symmetric", "zscore") for lr in (0.01, 1e-5)
        }
        assert {r.config.model for r in runs.records} == {"softmax"} and all(len(r.metrics) == 2 for r in runs.records)
        # the closing line is the pane's note and a notification; the status line itself names the run under the
        # cursor when it is not healthy (on this tiny data the raw-pixel lr 0.01 runs explode)
        assert "8 of 8 runs" in runs.note and any("8 of 8 runs" in n.message for n in app._notifications)
        assert len(app.query_one("#runs-acc", RunsChart).runs) == 8


@sync
async def test_a_broken_run_folder_is_a_message_not_a_crash(tmp_path):
    runs = tmp_path / "runs"
    (runs / "broken").mkdir(parents=True)
    (runs / "broken" / "config.json").write_text(json.dumps(RunConfig().to_dict()))
    (runs / "broken" / "predictions.pt").write_bytes(b"not a torch file")
    (runs / "broken" / "summary.json").write_text(json.dumps({"status": "completed"}))  # (a running run is watched)
    app = make_app(RunConfig(), runs_dir=runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(pilot, lambda: bool(app._notifications))
        (note,) = [n.message for n in app._notifications]
        assert (
            note
            == f"cannot open broken: {runs / 'broken' / 'predictions.pt'}: no readable predictions (UnpicklingError)"
        )
        assert not app.activity.busy and app.query_one(TabbedContent).active == "runs"


# --- the footer --------------------------------------------------------------------------------------


def footer_overflow(app) -> list[str]:
    """Footer keys that do not fit left of the palette key (or in the screen): what an 80-column user cannot read."""
    keys = list(app.screen.query("FooterKey"))
    palette = [k for k in keys if k.has_class("-command-palette")]
    right = palette[0].region.x if palette else app.size.width
    footer = app.screen.query_one("Footer")
    cut = [k for k in keys if k not in palette and (k.region.right > right or not k.region.width)]
    return [f"{k.key} {k.description}" for k in cut] + (["scrolled"] if footer.max_scroll_x else [])


@sync
async def test_the_footer_fits_80_columns_on_every_pane(tiny_data):
    app = make_app(RunConfig(data_dir=str(tiny_data)), trainer=until_stopped)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for training in (False, True):
            for key in ("1", "2", "3", "4", "5"):
                await pilot.press("escape", key)
                await wait_for(pilot, lambda: footer_current(app))
                shown = {k.key for k in app.screen.query("FooterKey")}
                assert footer_overflow(app) == [], (key, training)
                assert {"q", "ctrl+p"} <= shown and ("x" in shown) == training and ("s" in shown) != training
            if not training:
                await pilot.press("s")
                await wait_for(pilot, lambda: app.train_pane.phase == "running")
        errors = app.query_one(ErrorsPane)  # predictions with many pages of mistakes: the page keys show too
        labels = torch.arange(3000) % 10
        errors.set_test_split(torch.zeros(3000, 1, 28, 28, dtype=torch.uint8), [f"class {k}" for k in range(10)])
        errors.show_results(Results.from_probs(torch.rand(3000, 10).softmax(1), labels), "run x · epoch 1/1")
        await pilot.press("4")
        await wait_for(pilot, lambda: "right_square_bracket" in {k.key for k in app.screen.query("FooterKey")})
        assert footer_overflow(app) == []
        await pilot.press("m")  # the matrix has the focus: its enter key shows too
        await wait_for(pilot, lambda: "enter" in {k.key for k in app.screen.query("FooterKey")} and footer_current(app))
        assert footer_overflow(app) == []
        await pilot.press("t")  # a filter is set: its clearing key shows too
        await wait_for(pilot, lambda: footer_current(app))
        assert "a" in {k.key for k in app.screen.query("FooterKey")} and footer_overflow(app) == []
        await pilot.press("question_mark")  # every key, also those the footer has no room for
        await pilot.pause()
        assert app.screen.query("HelpPanel")


def test_screenshots_place_every_character_in_its_cell():
    """README screenshots render aligned without Fira Code: each glyph sits at its own cell, not after the
    previous glyph's advance width (which differs from font to font)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from screenshots import gridded

    run = '<text class="t-r1" x="10" y="20" textLength="36.8" clip-path="url(#c)">⠁&#160;⡠&amp;</text>'
    out = gridded(f"<style>font-family: Fira Code, monospace;</style>{run}")
    assert '<text class="t-r1" y="20" clip-path="url(#c)"><tspan x="10.0">⠁</tspan>' in out
    assert '<tspan x="28.4">⡠</tspan><tspan x="37.6">&amp;</tspan></text>' in out  # a space: a cell, no glyph
    assert 'font-family: "Fira Code", "DejaVu Sans Mono"' in out and out.count("monospace") == 1


# --- the epoch log ------------------------------------------------------------------------------------


@sync
async def test_the_epoch_log_rewraps_and_follows_through_resizes(tiny_data):
    """Resizing while training (120 -> 80x24 -> 200x60 -> 120) keeps every line whole at the new width, broken
    between phrases, with no sideways scrolling, and the log keeps following its last line."""
    app = make_app(RunConfig(data_dir=str(tiny_data)))
    line = "Epoch [{}/10], Loss: 0.7866, Accuracy: 74.47%, Test Loss: 0.5817, Test Accuracy: 79.18%, Time: 2.85s"
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        log = app.query_one("#train-log")
        for epoch, size in zip(range(1, 11), [(120, 40), (80, 24), (80, 24), (200, 60), (120, 40)] * 2):
            log.write(line.format(epoch))
            await pilot.resize_terminal(*size)
            await pilot.pause(0.1)
        log.write("Done: finished 10 epochs in 28.5s of training")
        await pilot.pause(0.1)
        assert log.max_scroll_x == 0 and log.scroll_y == log.max_scroll_y > 0  # follows to the end
        rows = log.query_one("_Rows").rows(log.scrollable_content_region.width)
        assert rows[-1] == "Done: finished 10 epochs in 28.5s of training"
        assert rows.count("Test Loss: 0.5817, Test Accuracy: 79.18%, Time: 2.85s") == 10  # old lines too, whole
        assert all(row.endswith((",", "s", "%")) for row in rows if row.startswith("Epoch"))  # between phrases
        await pilot.resize_terminal(200, 60)
        await pilot.pause(0.1)
        assert not log.show_vertical_scrollbar  # all fits: no scrollbar track
        wide = log.query_one("_Rows").rows(log.scrollable_content_region.width)
        assert wide[0] == line.format(1).removesuffix(" Time: 2.85s")  # the first line rewrapped wider


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
@sync
async def test_each_preset_is_one_line_in_the_open_list(size):
    """The preset list is wider than its 24-column field: "softmax, no normalization, lr 0.01" wrapped there and
    read as two items."""
    from textual.widgets._select import SelectOverlay

    app = make_app()
    async with app.run_test(size=size) as pilot:
        await pilot.press("2", "p")
        await pilot.pause()
        overlay = app.query_one("#preset", Select).query_one(SelectOverlay)
        assert overlay.virtual_size.height == overlay.option_count
        assert overlay.region.right <= size[0]


# --- one app state, messages that coalesce ------------------------------------------------------------------


def test_an_activity_says_what_it_allows():
    assert not IDLE.busy and not IDLE.here and IDLE.what == ""
    training = Activity(Doing.TRAINING)
    assert training.busy and training.here and training.what == "A run"
    assert Activity(Doing.FINDING_LR).what == "The learning-rate finder"
    watched = Activity(Doing.WATCHING, Path("runs/r"), 3)
    assert watched.busy and not watched.here  # it trains in its own process: quitting does not ask
    assert training.stopped_by("SIGTERM").stopped_by("SIGHUP") == Activity(Doing.TRAINING, stop_cause="SIGTERM")


@sync
async def test_the_activity_alone_sets_the_keys_and_the_train_panes_buttons(tiny_data):
    source = Path(sys.modules[make_app.__module__].__file__).read_text()
    assert source.count("self.activity = ") == 1  # set in one place: FmtuiApp.become
    app = make_app(RunConfig(data_dir=str(tiny_data)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        keys = ("start", "stop", "unwatch")
        assert [app.check_action(k, ()) for k in keys] == [True, False, False]
        for activity, allowed in [
            (Activity(Doing.EXPERIMENT), [False, True, False]),
            (Activity(Doing.WATCHING, Path("runs/r"), 1), [False, True, True]),
            (IDLE, [True, False, False]),
        ]:
            app.become(activity)
            await pilot.pause()
            assert [app.check_action(k, ()) for k in keys] == allowed, activity
            assert app.query_one("#start", Button).disabled == activity.busy
            assert app.query_one("#stop", Button).disabled != activity.busy


@sync
async def test_progress_messages_that_queue_up_coalesce_without_losing_a_point():
    """A UI that falls behind (here: 30 messages posted before the app can handle one) handles the newest progress
    message only; the loss curve still has every point, as each message carries the whole curve so far."""
    app = make_app(RunConfig(device="cpu"))
    async with app.run_test(size=SIZE) as pilot:
        messages = synthetic_run(RunConfig(), epochs=1)
        started, progress = messages[0], [m for m in messages if isinstance(m, TrainingProgress)]
        app.post_message(started)
        await wait_for(pilot, lambda: app.train_pane.phase == "running")
        pane, handled = app.train_pane, []
        show = pane.show_progress
        pane.show_progress = lambda ev, curve=None: (handled.append(ev.step), show(ev, curve))
        for message in progress:  # no await between them: the app cannot handle any until the last is queued
            app.post_message(message)
        await wait_for(pilot, lambda: progress[-1].event.step in handled)
        assert len(progress) == 30 and len(handled) <= 2, handled
        xs, _ = app.query_one(BatchLossChart).series.points()
        assert xs == [step for step, _ in progress[-1].curve] and len(xs) == 187

        experiment, shown = [], []
        show_experiment = pane.show_experiment
        pane.show_experiment = lambda m: (shown.append(m.done), show_experiment(m))
        for i in range(10):
            experiment.append(ExperimentProgress([], f"epoch {i}", False, "runs 1-8 of 8", i, 10, i / 10))
        for message in [*experiment, ExperimentProgress([], "done", True, fraction=1.0)]:
            app.post_message(message)
        await wait_for(pilot, lambda: True in shown)
        assert shown[-1] is True and len(shown) <= 2, shown  # the last one, `done`, is never skipped


@sync
async def test_the_messages_of_a_watch_that_is_over_are_dropped():
    """Each message says which watch posted it (0: a run trained here); only the current watch's are shown."""
    app = make_app(RunConfig(device="cpu"))
    async with app.run_test(size=SIZE) as pilot:
        progress = next(m for m in synthetic_run(RunConfig(), epochs=1) if isinstance(m, TrainingProgress))
        handled: list[int] = []
        app.train_pane.show_progress = lambda ev, curve=None: handled.append(ev.step)
        app.become(Activity(Doing.WATCHING, Path("runs/r"), 2))
        for watch_id, step in ((1, 10), (2, 20), (0, 30)):
            app.post_message(TrainingProgress(replace(progress.event, step=step), (), watch_id=watch_id))
            await pilot.pause()
        await wait_for(pilot, lambda: 30 in handled)
        assert handled == [20, 30]

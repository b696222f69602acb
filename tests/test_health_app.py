"""Training health in the dashboard: the Train pane's banner (red, amber, gone when the run recovers) and the
Runs pane's status column and status line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pilot import RUN_DIR, sync, synthetic_run, text_of, wait_for
from runfolders import write_run
from test_runs_pane import Host, row_of

from fmtui.app import make_app
from fmtui.config import RunConfig
from fmtui.events import EpochEnd, Finished, Health
from fmtui.messages import EpochFinished, TrainingFinished
from fmtui.widgets.runs_pane import RunsPane

pytestmark = pytest.mark.app

SIZE = (100, 32)
EXPLODING = Health("exploding", "train loss 1879 is 816x chance level (ln 10 = 2.30); inputs unnormalized -> try it")
AT_CHANCE = Health("at chance", "test accuracy 10.00% is chance level (100/10 = 10%); try that")


def sick_trainer(states: list[Health], final: Health):
    """A trainer for make_app: a synthetic run whose epochs have the given health, ending completed."""

    def trainer(cfg: RunConfig, runs_dir: Path, post, should_stop) -> None:
        messages = synthetic_run(cfg, epochs=len(states), batches=40)
        ends = [m.event for m in messages if isinstance(m, EpochFinished)]
        for end, health in zip(ends, states):
            end.health = health
        for message in messages[:-1]:
            post(message)
        post(TrainingFinished(Finished("completed", "finished 2 epochs", ends, None, 1.0, None, final), RUN_DIR))

    return trainer


async def finish(pilot) -> None:
    await pilot.press("s")
    await wait_for(pilot, lambda: pilot.app.train_pane.phase == "finished")
    await pilot.pause()


@sync
async def test_an_exploding_run_gets_a_red_banner_with_its_hint(tiny_data):
    app = make_app(
        RunConfig(data_dir=str(tiny_data), epochs=2), trainer=sick_trainer([EXPLODING, EXPLODING], EXPLODING)
    )
    async with app.run_test(size=SIZE) as pilot:
        await finish(pilot)
        banner = app.query_one("#train-message")
        text = text_of(app, "#train-message")
        assert text.startswith(f"EXPLODING: {EXPLODING.hint} · done: finished 2 epochs")
        assert banner.has_class("-error") and not banner.has_class("-success")
        log = "\n".join(app.query_one("#train-log").lines)
        assert "Time: 2.85s, Health: exploding" in log


@sync
async def test_a_run_at_chance_gets_an_amber_banner(tiny_data):
    app = make_app(
        RunConfig(data_dir=str(tiny_data), epochs=2), trainer=sick_trainer([AT_CHANCE, AT_CHANCE], AT_CHANCE)
    )
    async with app.run_test(size=SIZE) as pilot:
        await finish(pilot)
        banner = app.query_one("#train-message")
        assert text_of(app, "#train-message").startswith("AT CHANCE: test accuracy 10.00% is chance level")
        assert banner.has_class("-warning") and not banner.has_class("-error")


@sync
async def test_the_banner_follows_the_epochs_and_goes_when_the_run_recovers(tiny_data):
    app = make_app(RunConfig(data_dir=str(tiny_data), epochs=2))
    async with app.run_test(size=SIZE) as pilot:
        pane = app.train_pane
        pane.phase = "running"
        end = EpochEnd(1, 3, 30.0, 60.0, 25.0, 61.0, 1.0, 0.1, 100.0, 0.01, health=EXPLODING)
        pane.show_epoch(end)
        await pilot.pause()
        assert text_of(app, "#train-message").startswith("EXPLODING: train loss 1879")
        assert app.query_one("#train-message").display
        pane.show_epoch(EpochEnd(2, 3, 0.5, 80.0, 0.5, 81.0, 1.0, 0.1, 100.0, 0.01))
        await pilot.pause()
        assert not app.query_one("#train-message").display


@sync
async def test_a_healthy_run_still_ends_green(tiny_data):
    app = make_app(RunConfig(data_dir=str(tiny_data), epochs=2), trainer=sick_trainer([Health(), Health()], Health()))
    async with app.run_test(size=SIZE) as pilot:
        await finish(pilot)
        assert text_of(app, "#train-message").startswith("Done: finished 2 epochs")
        assert app.query_one("#train-message").has_class("-success")


@sync
async def test_the_runs_pane_shows_the_health_and_its_hint(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs / "a-fine")
    sick = write_run(runs / "b-sick")
    summary = json.loads((sick / "summary.json").read_text())
    (sick / "summary.json").write_text(json.dumps({**summary, "health": EXPLODING.to_dict()}))
    app = Host(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        pane = app.query_one(RunsPane)
        assert row_of(pane, "a-fine")[-1] == "completed" and row_of(pane, "b-sick")[-1] == "exploding"
        assert pane.query_one("#runs-table").cursor_row == 0  # newest first: b-sick
        assert text_of(app, "#runs-status") == f"b-sick: exploding: {EXPLODING.hint}"

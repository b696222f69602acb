"""The study view in the dashboard: S on a trial in the Runs pane shows its study's trials with their states
(running, pruned at epoch k, complete, failed), the best so far, and follows the folder live; the Runs pane itself
shows a pruned trial as pruned."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pilot import wait_for
from runfolders import Writer, write_run
from test_cli import fmtui
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Static

from fmtui.runfolder.read import read_run
from fmtui.widgets.runs_pane import RunsPane
from fmtui.widgets.study_view import StudyChart, StudyScreen, StudyView

pytest.importorskip("optuna")
pytestmark = pytest.mark.app


class Host(App):
    def __init__(self, runs_dir: Path) -> None:
        super().__init__()
        self.runs_dir = runs_dir

    def compose(self) -> ComposeResult:
        yield RunsPane(self.runs_dir)

    def on_mount(self) -> None:
        self.query_one("#runs-table").focus()


@pytest.fixture
def study(tiny_data, tmp_path) -> Path:
    """A real study of two trials on the tiny data (lr 0.05 completes, lr 10 explodes and is pruned at epoch 1),
    planned for four: a third trial that another worker trains now and a fourth whose worker failed."""
    runs = tmp_path / "runs"
    grid = ("--lr", "0.05,10", "--sampler", "grid", "--pruner", "median", "--epochs", 2)
    result = fmtui("tune", "--data-dir", tiny_data, "--runs-dir", runs, "--study", "st", *grid)
    assert result.exit_code == 0, result.output
    info = json.loads((runs / "st" / "study.json").read_text())
    (runs / "st" / "study.json").write_text(json.dumps({**info, "trials": 4}))
    write_run(runs / "st" / "trial-0003", epochs=2, done=1, status="error")
    return runs / "st"


def cells(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def test_the_study_view_shows_trial_states_and_the_best_so_far_and_follows_the_folder(study):
    writer = Writer(study / "trial-0002", epochs=3)  # trained by a live process: running
    trials = {read_run(p).resolved["study"]["params"]["lr"]: read_run(p) for p in study.glob("trial-000[01]")}
    good, pruned = trials["0.05"], trials["10"]
    best = f"best: trial {good.resolved['study']['trial']}, val {good.metrics[-1]['val_accuracy']:.2f}%"

    async def main():
        app = Host(study.parent)
        async with app.run_test(size=(120, 36)) as pilot:
            pane = app.query_one(RunsPane)
            await wait_for(pilot, lambda: pane.query_one(DataTable).row_count == 4)
            statuses = [row[-1] for row in cells(pane.query_one(DataTable))]
            assert statuses.count("stopped, pruned at epoch 1") == 1  # the Runs pane says pruned, not just stopped
            await pilot.press("S")
            await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen))
            view = app.screen.query_one(StudyView)
            table = view.query_one(DataTable)
            header = view.query_one("#study-header", Static)
            await wait_for(pilot, lambda: table.row_count == 4)
            text = str(header.render())
            assert "study st · 4 of 4 trials: 1 complete, 1 pruned, 1 failed, 1 running" in text and best in text
            rows = {row[0]: row for row in cells(table)}
            assert rows[str(good.resolved["study"]["trial"])][1] == "complete, best"
            assert rows[str(pruned.resolved["study"]["trial"])][1:3] == ["pruned", "at epoch 1"]
            assert rows["2"][1:3] == ["running", "epoch 1/3"] and rows["3"][1:3] == ["failed", "error"]
            assert view.query_one(StudyChart).snapshot.best.number == good.resolved["study"]["trial"]
            writer.epoch()  # the other worker's trial goes on: the view follows it by itself
            await wait_for(pilot, lambda: [str(c) for c in table.get_row_at(2)][2] == "epoch 2/3")
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, StudyScreen))

    try:
        asyncio.run(main())
    finally:
        writer.close()


def test_s_on_a_run_that_is_no_trial_says_so(tmp_path):
    write_run(tmp_path / "runs" / "20250101-120000-plain", epochs=1)

    async def main():
        app = Host(tmp_path / "runs")
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.query_one(RunsPane).query_one(DataTable).row_count == 1)
            await pilot.press("S")
            await pilot.pause()
            assert not isinstance(app.screen, StudyScreen)
            assert any("no trial" in str(n.message) for n in app._notifications)

    asyncio.run(main())

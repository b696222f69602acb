"""The Runs pane in a tiny host app: listing, selection, overlaid curves, export, open, snapshot."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Footer

from fmtui.config import RunConfig
from fmtui.headless import Reporter, run_training
from fmtui.widgets.runs_pane import RunsChart, RunsPane, run_label

pytestmark = pytest.mark.app

SIZE = (100, 32)


class Host(App):
    def __init__(self, runs_dir: Path) -> None:
        super().__init__()
        self.runs_dir, self.messages = runs_dir, []

    def compose(self) -> ComposeResult:
        yield RunsPane(self.runs_dir)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#runs-table").focus()

    def on_runs_pane_open(self, message: RunsPane.Open) -> None:
        self.messages.append(("open", message.record.name))

    def on_runs_pane_launch_experiment(self, message: RunsPane.LaunchExperiment) -> None:
        self.messages.append(("lecture", None))


def run(app: App, interact, size=SIZE) -> None:
    async def main():
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await interact(pilot)

    asyncio.run(main())


@pytest.fixture
def trained_runs(tiny_data, tmp_path) -> Path:
    """Three real runs of the headless trainer on the tiny dataset, under fixed folder names."""
    runs = tmp_path / "runs"
    for name, norm, lr in (("a-none", "none", 1e-5), ("b-unit", "unit", 0.05), ("c-zscore", "zscore", 0.05)):
        cfg = RunConfig(data_dir=str(tiny_data), model="softmax", norm=norm, lr=lr, epochs=2, batch_size=32)
        assert run_training(cfg, out=runs / name, reporter=Reporter(open("/dev/null", "w"))) == 0
    return runs


def test_lists_selects_and_overlays(trained_runs):
    app = Host(trained_runs)

    async def interact(pilot):
        pane = app.query_one(RunsPane)
        assert [r.name for r in pane.records] == ["c-zscore", "b-unit", "a-none"]
        await pilot.press("space", "down", "space")
        assert pane.selected == {"c-zscore", "b-unit"}
        loss = app.query_one("#runs-loss", RunsChart)
        assert [run_label(r) for r in loss.runs] == ["softmax zscore lr0.05", "softmax unit lr0.05"]
        await pilot.press("space")
        assert pane.selected == {"c-zscore"}
        await pilot.press("a")
        assert len(pane.selected) == 3
        await pilot.press("v")
        assert loss.split == "train" and loss.chart_title.startswith("train loss")

    run(app, interact)


def test_export_writes_every_epoch_of_the_selected_runs(trained_runs):
    app = Host(trained_runs)

    async def interact(pilot):
        await pilot.press("space", "down", "space", "e")

    run(app, interact)
    (csv_path,) = (trained_runs / "exports").glob("*.csv")
    rows = list(csv.DictReader(csv_path.open()))
    assert [(r["run"], r["epoch"]) for r in rows] == [
        ("c-zscore", "1"),
        ("c-zscore", "2"),
        ("b-unit", "1"),
        ("b-unit", "2"),
    ]
    assert rows[0]["norm"] == "zscore" and float(rows[0]["test_accuracy"]) > 0
    data = json.loads(next((trained_runs / "exports").glob("*.json")).read_text())
    assert [d["run"] for d in data] == ["c-zscore", "b-unit"] and len(data[0]["metrics"]) == 2


def test_enter_opens_the_run_and_L_launches_the_lecture(trained_runs):
    app = Host(trained_runs)

    async def interact(pilot):
        await pilot.press("down", "enter", "L")
        await pilot.pause()

    run(app, interact)
    assert app.messages == [("open", "b-unit"), ("lecture", None)]


def test_new_runs_appear_on_refresh_and_can_be_selected(trained_runs, tiny_data):
    app = Host(trained_runs)

    async def interact(pilot):
        pane = app.query_one(RunsPane)
        cfg = RunConfig(data_dir=str(tiny_data), model="softmax", epochs=1, batch_size=64)
        run_training(cfg, out=trained_runs / "d-new", reporter=Reporter(open("/dev/null", "w")))
        pane.refresh_runs(select=[trained_runs / "d-new"])
        await pilot.pause()
        assert pane.records[0].name == "d-new" and pane.selected == {"d-new"}

    run(app, interact)


def fake_run(path: Path, norm: str, lr: float, losses: list[float], accs: list[float]) -> None:
    """A run folder with fixed numbers, so the snapshot is the same on every machine."""
    path.mkdir(parents=True)
    cfg = RunConfig(model="softmax", norm=norm, lr=lr, epochs=len(losses))
    (path / "config.json").write_text(json.dumps(cfg.to_dict()))
    rows = [
        {
            "epoch": i + 1,
            "train_loss": loss * 1.1,
            "train_accuracy": acc - 1,
            "test_loss": loss,
            "test_accuracy": acc,
            "seconds": 1.0,
        }
        for i, (loss, acc) in enumerate(zip(losses, accs))
    ]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "summary.json").write_text(json.dumps({"status": "completed"}))


def test_runs_pane_snapshot(snap_compare, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the pane shows the runs folder as given: keep it the same on every machine
    runs = Path("snap-runs")
    fake_run(runs / "r1-none", "none", 0.01, [900.0, 1400.0, 700.0, 1100.0, 800.0], [70.1, 74.5, 77.0, 75.2, 78.3])
    fake_run(runs / "r2-unit", "unit", 0.01, [0.80, 0.68, 0.62, 0.59, 0.57], [73.5, 77.0, 78.9, 80.1, 80.6])
    fake_run(runs / "r3-zscore", "zscore", 0.01, [0.55, 0.50, 0.48, 0.47, 0.46], [81.0, 82.5, 83.1, 83.6, 83.9])

    async def select_all_three(pilot):
        await pilot.press("space", "down", "space", "down", "space")
        for chart in pilot.app.query(RunsChart):
            chart.replot()  # charts redraw on a 0.25 s timer: draw now, so the picture never depends on timing
        await pilot.pause()

    assert snap_compare(Host(runs), terminal_size=SIZE, run_before=select_all_three)

"""The hyperparameter view (h in the Runs pane) on 8 run folders shaped like the lecture experiment's: sorted by
test accuracy with their health, sortable by any column, a scatter of a result against an option."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_runs_pane import Host, run
from textual.widgets import DataTable

from fmtui.config import RunConfig
from fmtui.widgets import hparams_view
from fmtui.widgets.hparams_view import HParamsScatter, HParamsScreen, columns, dodged
from fmtui.widgets.runs_pane import RunsPane

pytestmark = pytest.mark.app

SWEEP = "sweep-20261127-120000"
LECTURE = [  # norm, lr, final test accuracy, health: the lecture's softmax regressions, numbers made up
    ("none", 0.01, 76.42, "exploding"),
    ("none", 1e-5, 80.10, "ok"),
    ("unit", 0.01, 83.02, "ok"),
    ("unit", 1e-5, 10.90, "at chance"),
    ("symmetric", 0.01, 84.01, "ok"),
    ("symmetric", 1e-5, 65.30, "ok"),
    ("zscore", 0.01, 84.52, "ok"),
    ("zscore", 1e-5, 70.20, "unstable"),
]
BY_TEST_ACCURACY = [  # (norm, lr, health), best test accuracy first
    ("zscore", "0.01", "ok"),
    ("symmetric", "0.01", "ok"),
    ("unit", "0.01", "ok"),
    ("none", "1e-05", "ok"),
    ("none", "0.01", "exploding"),
    ("zscore", "1e-05", "unstable"),
    ("symmetric", "1e-05", "ok"),
    ("unit", "1e-05", "at chance"),
]


def lecture_runs(base: Path, epochs: int = 5) -> Path:
    """The lecture experiment's 8 run folders in one sweep folder (softmax, batch 1024), with fixed numbers."""
    for k, (norm, lr, acc, health) in enumerate(LECTURE):
        path = base / SWEEP / f"{k + 1:02d}-softmax-{norm}-lr{lr:g}"
        path.mkdir(parents=True)
        cfg = RunConfig(model="softmax", norm=norm, lr=lr, batch_size=1024, epochs=epochs)
        (path / "config.json").write_text(json.dumps(cfg.to_dict()))
        rows = [
            {
                "epoch": e,
                "train_loss": (2000.0 if health == "exploding" else 0.6) / e,
                "train_accuracy": acc - 1 - (epochs - e),
                "test_loss": (1500.0 if health == "exploding" else 0.7) / e,
                "test_accuracy": acc - (epochs - e) * 0.5,
                "seconds": 2.5,
            }
            for e in range(1, epochs + 1)
        ]
        (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        summary = {
            "status": "completed",
            "seconds": 12.5,
            "started_at": f"2026-11-27T12:00:{k:02d}+01:00",
            "health": {"state": health, "hint": f"{health}: a made-up hint" if health != "ok" else ""},
        }
        (path / "summary.json").write_text(json.dumps(summary))
    return base


def table_rows(screen: HParamsScreen, *keys: str) -> list[tuple[str, ...]]:
    table = screen.query_one(DataTable)
    return [tuple(str(table.get_cell(row, k)).strip() for k in keys) for row in table.rows]


async def open_view(pilot) -> HParamsScreen:
    await pilot.press("a", "h")  # every run selected, then the view
    await pilot.pause()
    assert isinstance(pilot.app.screen, HParamsScreen)
    return pilot.app.screen


def test_the_lecture_experiment_sorted_by_test_accuracy_with_its_health(tmp_path):
    app = Host(lecture_runs(tmp_path / "runs"))

    async def interact(pilot):
        screen = await open_view(pilot)
        keys = [c.key for c in screen.columns]
        assert keys[:2] == ["norm", "lr"] and "hidden" not in keys and "val_acc" not in keys  # no validation split
        assert {"test_acc", "best_test_acc", "health", "time"} <= set(keys)
        assert table_rows(screen, "norm", "lr", "health") == BY_TEST_ACCURACY
        accuracies = [float(a.rstrip("%")) for (a,) in table_rows(screen, "test_acc")]
        assert accuracies == sorted(accuracies, reverse=True) and accuracies[0] == 84.52
        assert "8 runs by test acc ↓" in str(screen.query_one("#hp-status").render())

    run(app, interact)


def test_any_column_sorts_and_again_the_other_way(tmp_path):
    app = Host(lecture_runs(tmp_path / "runs"))

    async def interact(pilot):
        screen = await open_view(pilot)
        table = screen.query_one(DataTable)
        health = 2 + [c.key for c in screen.columns].index("health")
        table.move_cursor(column=health)
        await pilot.press("enter")  # health: from ok to diverged
        states = [h for (h,) in table_rows(screen, "health")]
        assert states == ["ok"] * 5 + ["unstable", "at chance", "exploding"]
        await pilot.press("enter")  # again: the other way round
        assert [h for (h,) in table_rows(screen, "health")] == ["exploding", "at chance", "unstable"] + ["ok"] * 5
        table.move_cursor(column=2)  # norm: in the order of its choices
        await pilot.press("enter")
        assert [n for (n,) in table_rows(screen, "norm")] == ["none"] * 2 + ["unit"] * 2 + ["symmetric"] * 2 + [
            "zscore"
        ] * 2
        table.move_cursor(column=1)  # the run's name
        await pilot.press("enter")
        names = [str(table.get_cell(row, "run")) for row in table.rows]
        assert names == sorted(names)

    run(app, interact)


def test_the_scatter_plots_the_chosen_result_against_the_chosen_option_in_each_runs_colour(tmp_path):
    app = Host(lecture_runs(tmp_path / "runs"))

    async def interact(pilot):
        screen = await open_view(pilot)
        scatter = screen.query_one(HParamsScatter)
        scatter.replot()
        await pilot.pause()
        assert (scatter.x, scatter.y, scatter.x_log) == ("lr", "test_acc", True)  # lr on a log axis
        points, names = scatter.points()
        assert len(points) == 8 and names == [] and sorted(i for i, _, _ in points) == list(range(8))
        pane = app.query_one(RunsPane)
        looks = {r.name: i for i, r in enumerate(pane.selected_records)}  # the same colours as the curves
        assert [looks[r.name] for r in screen.runs] == list(range(8))
        await pilot.press("left")  # onto norm: names on x, in their declared order
        points, names = scatter.points()
        assert scatter.x == "norm" and names == ["none", "unit", "symmetric", "zscore"]
        health = 2 + [c.key for c in screen.columns].index("time")
        screen.query_one(DataTable).move_cursor(column=health)  # a result: goes on y, x stays
        await pilot.pause()
        assert (scatter.x, scatter.y) == ("norm", "time")
        await pilot.press("escape")
        assert not isinstance(app.screen, HParamsScreen)

    run(app, interact)


def test_runs_that_share_a_value_are_spread_apart_around_it():
    assert dodged([1.0, 2.0, 1.0, 1.0], 0.1) == pytest.approx([0.9, 2.0, 1.0, 1.1])
    # only those that would share a cell: in other rows of the plot, marks stay on their value
    assert dodged([1.0, 1.0, 1.0], 0.1, rows=[0, 5, 5]) == pytest.approx([1.0, 0.95, 1.05])


def test_runs_of_different_lengths_plot_on_whole_epochs_and_show_them_once(tmp_path):
    from runfolders import write_run

    from fmtui.runfolder.read import list_runs

    for epochs in (1, 2, 3):
        write_run(tmp_path / "runs" / f"20261208-02300{epochs}-fashion-mnist-softmax-none-lr0.01", epochs=epochs)
    write_run(tmp_path / "runs" / "20261208-023009-stopped", epochs=3, done=1, status="stopped")
    runs = sorted(list_runs(tmp_path / "runs"), key=lambda r: r.name)
    assert "epochs_done" not in [c.key for c in columns(runs[:3])]  # every run did its epochs: `epochs` says it
    assert "epochs_done" in [c.key for c in columns(runs)]  # a stopped run: what it did is news
    app = Host(tmp_path / "runs")

    async def interact(pilot):
        screen = await open_view(pilot)
        scatter = screen.query_one(HParamsScatter)
        drawn = {}
        real = hparams_view.set_axes
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(
                hparams_view, "set_axes", lambda plt, x, y, **kw: drawn.update(x=x, y=y) or real(plt, x, y, **kw)
            )
            screen.x = "epochs"
            scatter.show(screen.runs, list(range(4)), "epochs", "epochs_done")
            scatter.replot()
            await pilot.pause()
        assert drawn["x"].labels == ["1", "2", "3"] and drawn["y"].labels == ["1", "2", "3"]  # not 1.0, 1.5...

    run(app, interact)


def test_validation_columns_come_with_a_validation_split(tmp_path):
    from fmtui.runfolder.read import list_runs

    base = lecture_runs(tmp_path / "runs", epochs=2)
    first = next((base / SWEEP).iterdir())
    rows = [json.loads(line) for line in (first / "metrics.jsonl").read_text().splitlines()]
    (first / "metrics.jsonl").write_text("".join(json.dumps({**r, "val_accuracy": 70.0}) + "\n" for r in rows))
    keys = [c.key for c in columns(list_runs(base))]
    assert {"val_acc", "best_val_acc"} <= set(keys)


def test_a_key_of_the_dashboard_leaves_the_view_and_then_acts(tmp_path):
    """5 (or 1-4, s, x) would act unseen on the panes under the view: it closes the view, then does its work."""
    from fmtui.app import make_app

    app = make_app(runs_dir=lecture_runs(tmp_path / "runs"))

    async def interact(pilot):
        await pilot.press("5")
        await pilot.pause()
        await open_view(pilot)
        await pilot.press("2")
        await pilot.pause()
        assert not isinstance(app.screen, HParamsScreen) and app.query_one("TabbedContent").active == "model"

    run(app, interact)


def test_one_run_gets_a_one_row_table_and_a_one_point_scatter_on_every_axis(tmp_path):
    """A single run (the first run of a new user): every option on x, a log one (lr) included, spans no width;
    the view draws it around the run's value instead of dividing by the span."""
    runs = lecture_runs(tmp_path / "runs")
    for folder in [f for f in sorted((runs / SWEEP).iterdir()) if not f.name.startswith("02-")]:  # a healthy one
        for file in folder.iterdir():
            file.unlink()
        folder.rmdir()
    app = Host(runs)

    async def interact(pilot):
        screen = await open_view(pilot)
        assert len(screen.query_one(DataTable).rows) == 1
        assert "1 run by test acc" in str(screen.query_one("#hp-status").render())
        assert "1 selected, test curves · 1 run in" in str(app.query_one("#runs-status").render())
        scatter = screen.query_one(HParamsScatter)
        seen = set()
        for _ in range(len(screen.columns)):
            scatter.replot()
            await pilot.pause()
            seen.add(scatter.x)
            assert len(scatter.points()[0]) == 1 and str(scatter.render())  # drawn, not raised
            await pilot.press("right")
        assert "lr" in seen and isinstance(app.screen, HParamsScreen)

    run(app, interact)

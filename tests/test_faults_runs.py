"""Fault suite (issue 10): broken run folders, generated, opened by the reader, the dashboard's Runs pane and
eval. Each must give one line naming the file; nothing crashes, nothing is hidden, nothing is unpickled."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from runfolders import BROKEN, BROKEN_MODELS, make_broken, row, write_run
from test_cli import fmtui
from textual.widgets import DataTable, Static

from fmtui.app import make_app
from fmtui.errors import RunError
from fmtui.runfolder.read import BrokenRun, list_runs, read_run
from fmtui.widgets.runs_pane import RunsPane

SIZE = (120, 40)


@pytest.fixture(scope="module")
def broken_runs(tmp_path_factory) -> Path:
    """One runs folder holding every broken case and one good run."""
    base = tmp_path_factory.mktemp("faults") / "runs"
    for name in BROKEN:
        make_broken(base, name)
    write_run(base / "zz-good", epochs=2)
    return base


def reason_of(name: str) -> str:
    return BROKEN[name][1]


# --- the reader ------------------------------------------------------------------------------------------


@pytest.mark.engine
@pytest.mark.parametrize("name", BROKEN)
def test_the_reader_names_the_file_and_why(tmp_path, name):
    path = make_broken(tmp_path, name)
    with pytest.raises(RunError) as e:
        read_run(path)
    assert str(e.value).startswith(f"{path}/{reason_of(name)}") and "\n" not in str(e.value)


@pytest.mark.engine
def test_every_broken_folder_is_listed_with_its_reason(broken_runs):
    found = {r.name: r for r in list_runs(broken_runs)}
    assert set(found) == {*BROKEN, "zz-good"}
    for name in BROKEN:
        assert isinstance(found[name], BrokenRun) and found[name].reason.startswith(reason_of(name)), name
    assert found["zz-good"].status == "completed"


# --- the dashboard -----------------------------------------------------------------------------------


def run_app(runs_dir: Path, interact) -> None:
    async def main():
        app = make_app(runs_dir=runs_dir)
        app.said = []
        notify = app.notify

        def record(message, **kw):  # every notification, as given (toasts expire while a slow machine runs)
            app.said.append((message, kw.get("markup", True)))
            notify(message, **kw)

        app.notify = record
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await pilot.press("5")
            await pilot.pause()
            await interact(pilot, app)

    asyncio.run(main())


def status_line(app) -> str:
    return str(app.query_one("#runs-status", Static).render())


def cell(table: DataTable, key: str, column: int) -> str:
    return table.get_cell(key, table.ordered_columns[column].key).plain


@pytest.mark.app
def test_the_dashboard_starts_on_a_runs_folder_of_broken_runs_and_lists_each_with_its_reason(broken_runs):
    async def interact(pilot, app):
        pane = app.query_one(RunsPane)
        table = app.query_one(DataTable)
        assert len(pane.records) == len(BROKEN) + 1 and table.row_count == len(BROKEN) + 1
        for name in BROKEN:
            assert cell(table, name, -1).startswith(f"broken: {reason_of(name)}"[:60]), name
        assert f"{len(BROKEN) + 1} runs ({len(BROKEN)} broken) in " in status_line(app)
        for i, record in enumerate(pane.records):  # every row: read its reason, try to plot and open it
            await pilot.press("space", "enter")
            if isinstance(record, BrokenRun):
                assert status_line(app) == f"{record.name}: broken: {record.reason}"
            if i < len(pane.records) - 1:
                await pilot.press("down")
        await pilot.pause()
        assert pane.selected == {"zz-good"}  # broken runs are not plottable
        said = "\n".join(message for message, _ in app.said)
        for name in BROKEN:
            assert f"{name} is broken: {reason_of(name)}" in said, name
        assert all(not markup for _, markup in app.said)

    run_app(broken_runs, interact)


@pytest.mark.app
def test_text_from_files_and_paths_is_never_markup(tmp_path):
    """A runs folder whose path holds `[/y]`, a config value and a status holding `[/x]`: shown literally."""
    runs_dir = tmp_path / "a[" / "y]" / "runs"
    make_broken(runs_dir, "config-markup")  # first: the newer run, r1, is listed first (newest first)
    write_run(runs_dir / "r1-markup-data-dir", config={"data_dir": "[/x]"})
    (runs_dir / "r1-markup-data-dir" / "predictions.pt").write_bytes(b"garbage")  # opening it fails: says where

    async def interact(pilot, app):
        assert status_line(app).endswith(f"2 runs (1 broken) in {runs_dir}") and "[/y]" in status_line(app)
        table = app.query_one(DataTable)
        await pilot.press("enter")
        for _ in range(600):  # the run opens in a worker thread
            if app.said:
                break
            await pilot.pause(0.1)
        predictions = runs_dir / "r1-markup-data-dir" / "predictions.pt"
        assert app.said.pop() == (f"cannot open r1-markup-data-dir: {predictions}: no readable predictions "
                                  "(UnpicklingError)", False)  # fmt: skip
        await pilot.press("down")  # rows are newest first by name: r1-... then config-markup
        assert cell(table, "config-markup", -1).startswith("broken: config.json: norm: unknown value '[/x]'")
        assert status_line(app).startswith("config-markup: broken: config.json: norm: unknown value '[/x]'")
        await pilot.press("enter", "e")
        await pilot.pause()
        assert [m for m, _ in app.said] == [
            "config-markup is broken: config.json: norm: unknown value '[/x]'; choose from none, unit, symmetric, "
            "zscore, per-image",
            "no runs to export",
        ]

    run_app(runs_dir, interact)


@pytest.mark.app
def test_a_truncated_last_line_is_an_epoch_still_being_written(tmp_path):
    path = write_run(tmp_path / "runs" / "r", epochs=3, done=1, status="running")
    with open(path / "metrics.jsonl", "a") as f:
        f.write(json.dumps(row(2))[:12])

    async def interact(pilot, app):
        table = app.query_one(DataTable)
        assert [table.get_cell("r", column).plain for column in ("ep", "status")] == ["1/3", "running"]

    run_app(tmp_path / "runs", interact)


# --- eval ----------------------------------------------------------------------------------------------------


def assert_one_line(result, code: int, text: str) -> None:
    assert result.exit_code == code, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output, result.output
    assert result.stderr.startswith("Error: ") and text in result.stderr, result.stderr


@pytest.mark.cli
@pytest.mark.parametrize("name", BROKEN)
def test_eval_of_a_broken_folder_is_one_line_naming_the_file(tmp_path, name):
    path = make_broken(tmp_path, name)
    assert_one_line(fmtui("--no-ui", "eval", path), 2, f"{path}/{reason_of(name)}")


@pytest.mark.cli
@pytest.mark.parametrize("name", BROKEN_MODELS)
def test_eval_of_a_broken_model_is_one_line_and_never_unpickles_it(tmp_path, name):
    path = make_broken(tmp_path, name, BROKEN_MODELS)
    assert_one_line(fmtui("--no-ui", "eval", path), 2, f"{path}/{BROKEN_MODELS[name][1]}")
    assert not (path / "PWNED").exists()


@pytest.mark.cli
def test_eval_of_no_such_folder_says_so(tmp_path):
    assert_one_line(fmtui("--no-ui", "eval", tmp_path / "nope"), 2, f"{tmp_path / 'nope'}: no such folder")


@pytest.mark.app
def test_a_chart_never_gives_plotext_text_or_non_finite_numbers(tmp_path):
    """Whatever records reach it (the reader refuses these rows), a chart draws only finite numbers."""
    from fmtui.runfolder.read import RunRecord
    from fmtui.widgets.runs_pane import RunsChart

    bad = [row(1), {**row(2), "epoch": "two"}, {**row(3), "test_loss": float("nan")}, {**row(4), "test_loss": "x"}]
    record = RunRecord(tmp_path, read_run(write_run(tmp_path / "r")).config, metrics=bad)

    async def interact(pilot, app):
        for chart in app.query(RunsChart):
            chart.show([record], "test")
            chart.replot()
        await pilot.pause()
        assert app.query_one("#runs-loss", RunsChart).plt  # drew, did not raise

    run_app(tmp_path / "runs", interact)

"""Exploring many runs in the Runs pane: the filter (f), pins (p), newest first by start time, Home/End, a list
that fits 80 columns, and charts that read (a cursor on an epoch, log-y, zoom)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.cells import cell_len
from runfolders import Writer, write_run
from test_runquery import QUERIES, short, write_varied
from test_runs_pane import Host, fake_run, run, wait_for
from textual.widgets import DataTable, Input, Static

from fmtui import pins
from fmtui.widgets import runs_pane
from fmtui.widgets.run_filter import FilterBar
from fmtui.widgets.runs_pane import RunsChart, RunsLegend, RunsPane
from fmtui.widgets.runs_table import fit_name, fit_names

pytestmark = pytest.mark.app


def listed(pane: RunsPane) -> list[str]:
    return [short(pane.run_key(r)) for r in pane.records]


async def type_filter(pilot, text: str) -> None:
    """f, the query as typed in an emptied field (it keeps the last query), then enter."""
    await pilot.press("f")
    field = pilot.app.query_one("#filter-input", Input)
    field.value = ""
    await pilot.press(*text)
    await pilot.press("enter")
    await pilot.pause()


@pytest.mark.parametrize(
    "query",
    [
        "norm:zscore lr>=1e-3 health:ok",
        "norm:zscore lr>=1e-3 health:ok -model:cnn",
        "model:mlp | norm:none",
        "hidden:256",
        "status:broken",
        "sweep",
    ],
)
def test_the_filter_lists_exactly_the_matching_runs(tmp_path, query):
    """The same runs as `fmtui runs --filter` (tests/test_runquery_cli.py) for the same query, typed after f."""
    app = Host(write_varied(tmp_path / "runs"))

    async def interact(pilot):
        pane = app.query_one(RunsPane)
        assert len(pane.records) == 20
        await type_filter(pilot, query)
        assert set(listed(pane)) == set(QUERIES[query].split()) and len(pane.records) == len(QUERIES[query].split())
        assert app.focused is pane.query_one("#runs-table")  # enter gave the list its keys back
        if query == "norm:zscore lr>=1e-3 health:ok":  # the newest of them (q) is healthy: the line is the pane's
            status = str(pane.query_one("#runs-status", Static).render())
            assert status.startswith(f"filter {query} · space selects runs to compare · 8 of 20 runs (1 broken) in ")
        assert pane.query_one(FilterBar).has_class("-shown")  # the query stays in view while it filters

    run(app, interact)


def test_a_query_that_cannot_be_read_says_where_under_the_field_and_keeps_the_list(tmp_path):
    app = Host(write_varied(tmp_path / "runs"))

    async def interact(pilot):
        pane = app.query_one(RunsPane)
        await type_filter(pilot, "norm:zscore")
        shown = listed(pane)
        await pilot.press("f")
        field = pilot.app.query_one("#filter-input", Input)
        assert field.cursor_position == len("norm:zscore")  # f again: the query, to refine
        field.value += " lr>=fast"  # as pasted (typed, its first letters would filter: lr is a word of names)
        await pilot.pause()
        assert pane.query_one("#filter-error", Static).display  # shown under the field
        error = str(pane.query_one("#filter-error", Static).render())
        assert error.splitlines() == [
            " " * (7 + 16) + "^ column 17: lr is a number; 'fast' is not one (the list shows norm:zscore)"
        ]
        assert listed(pane) == shown  # the last query that read stays in force
        field.value = "norm:zscore lr:0.01"
        await pilot.press("enter")
        await pilot.pause()
        assert set(listed(pane)) == {"a", "e"} and not pane.query_one(FilterBar).has_class("-error")
        await pilot.press("f")
        pilot.app.query_one("#filter-input", Input).value = ""  # an empty query: every run again
        await pilot.press("enter")
        await pilot.pause()
        assert len(pane.records) == 20 and not pane.query_one(FilterBar).has_class("-shown")

    run(app, interact)


def test_newest_first_by_start_time_not_by_folder_name(tmp_path):
    """Runs made with --out NAME sorted above newer runs by their name; now their start time places them."""
    runs = tmp_path / "runs"
    for name, started in (
        ("zz-old-named", "2026-11-01T09:00:00+01:00"),
        ("20261101-100000-dated", None),  # no started_at: the date-time its name begins with
        ("aa-new-named", "2026-11-01T11:00:00+01:00"),
    ):
        path = write_run(runs / name)
        if started:
            (path / "summary.json").write_text(json.dumps({"status": "completed", "started_at": started}))
    app = Host(runs)

    async def interact(pilot):
        pane = app.query_one(RunsPane)
        assert [r.name for r in pane.records] == ["aa-new-named", "20261101-100000-dated", "zz-old-named"]
        table = pane.query_one(DataTable)
        assert [str(table.get_cell(r.name, "started")) for r in pane.records] == [
            "11-01 11:00",
            "11-01 10:00",
            "11-01 09:00",
        ]

    run(app, interact)


def test_home_and_end_go_to_the_first_and_last_run(tmp_path):
    runs = tmp_path / "runs"
    for i in range(30):
        write_run(runs / f"2026110{1 + i // 10}-1000{i % 10}0-r{i:02d}")
    app = Host(runs)

    async def interact(pilot):
        table = app.query_one(RunsPane).query_one(DataTable)
        await pilot.press("end")
        assert table.cursor_row == 29 and table.scroll_y > 0
        await pilot.press("home")
        assert table.cursor_row == 0 and table.scroll_y == 0

    run(app, interact, size=(80, 24))


def test_a_new_headless_run_appears_on_top_in_view(tmp_path, monkeypatch):
    """With a dozen older runs named by --out (which sorted above newer ones), a run another process starts
    is the first row, in view, without a key; the cursor stays on its run."""
    monkeypatch.setattr(runs_pane, "POLL_INTERVAL", 0.1)
    runs = tmp_path / "runs"
    for i in range(12):
        path = write_run(runs / f"zz-named-{i:02d}")
        (path / "summary.json").write_text(
            json.dumps({"status": "completed", "started_at": f"2026-01-01T10:{i:02d}:00+00:00"})
        )
    app = Host(runs)
    writer = None

    async def interact(pilot):
        nonlocal writer
        pane = app.query_one(RunsPane)
        table = pane.query_one(DataTable)
        await pilot.press("down")
        writer = Writer(runs / "20991231-235959-live", epochs=3)
        await wait_for(pilot, lambda: len(pane.records) == 13, "the new run")
        assert pane.records[0].name == "20991231-235959-live" and table.scroll_y == 0  # row 0 is in view
        assert pane.records[table.cursor_row].name == "zz-named-10"  # the cursor stayed on its run

    try:
        run(app, interact, size=(80, 24))
    finally:
        if writer:
            writer.close()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_the_list_fits_the_width_status_and_accuracy_always_shown_the_name_cut(tmp_path, size):
    runs = tmp_path / "runs"
    write_run(runs / ("20261101-100000-fashion-mnist-mlp-symmetric-lr0.01-" + "x" * 60), model="mlp")
    write_run(runs / "b-broken").joinpath("config.json").write_text("[1]")
    app = Host(runs)

    async def interact(pilot):
        pane = app.query_one(RunsPane)
        table = pane.query_one(DataTable)
        await pilot.pause()
        assert table.virtual_size.width <= table.size.width  # nothing to scroll sideways
        keys = [c.key.value for c in table.ordered_columns]
        assert {"acc", "status", "ep", "lr", "name"} <= set(keys)
        long = next(r for r in pane.records if r.name.startswith("2026"))
        name = table.get_cell(pane.run_key(long), "name").plain
        assert "…" in name and len(name) < len(long.name)  # the folder name is what gets cut
        assert name.startswith("100000…") and name.endswith("x" * 4)  # when it started, and its end
        assert str(table.get_cell(pane.run_key(long), "status")) == "completed"
        assert ("started" in keys) == (size[0] >= 100)  # 80 columns: no room for when it started

    run(app, interact, size=size)


def test_a_cut_folder_name_keeps_what_tells_runs_apart():
    names = [f"20261208-0230{s:02}-fashion-mnist-mlp-zscore-lr{lr}{n}" for s, lr, n in [(0, 0.01, ""), (0, 0.1, "-1")]]
    names.append("20261208-023005-fashion-mnist-mlp-zscore-lr0.01")
    for width in (12, 16, 24):
        cut = [fit_name(n, width) for n in names]
        assert len(set(cut)) == 3 and all(cell_len(c) <= width for c in cut), cut
    assert [fit_name(n, 16) for n in names] == ["023000…lr0.01", "023000…lr0.1-1", "023005…lr0.01"]
    assert fit_name(names[0], 99) == names[0]
    assert fit_name("my-own-name-for-it", 10) == "my-own-na…"  # a name fmtui did not give: cut at its end
    long, short = names[0] + "-and-more", names[2]  # in one column: where one is cut, all drop their date
    assert fit_names([long, short, "mine"], len(short)) == [
        "023000…fashion-mnist-mlp-zscore-lr0.01-and-more",
        "023005…fashion-mnist-mlp-zscore-lr0.01",
        "mine",
    ]
    assert fit_names([names[0], short], len(short)) == [names[0], short]  # all fit: whole
    days = ["20261207-023000-fashion-mnist-mlp-zscore-lr0.01", names[0]]  # the same time on two days
    assert fit_names(days, 20) == ["1207-023000…lr0.01", "1208-023000…lr0.01"]
    assert fit_name("20261208-023000-ｗｉｄｅ-ｎａｍｅ", 12) == "20261208-02…"  # wide characters: cut by cells


def test_a_narrow_list_keeps_status_and_accuracy_and_leaves_out_the_rest(tmp_path):
    """50 columns (80 with ? open beside it): the columns of least use go, never status or accuracy."""
    write_run(tmp_path / "runs" / "20261101-100000-a-run-with-a-long-name", model="mlp")
    app = Host(tmp_path / "runs")

    async def interact(pilot):
        table = app.query_one(RunsPane).query_one(DataTable)
        keys = [c.key.value for c in table.ordered_columns]
        assert {"acc", "status", "norm", "lr"} <= set(keys) and not {"started", "dataset"} & set(keys)
        assert table.virtual_size.width <= table.size.width

    run(app, interact, size=(50, 24))


def test_p_pins_a_run_to_the_top_and_it_stays_pinned_for_the_next_dashboard(tmp_path):
    runs = tmp_path / "runs"
    for i in range(4):
        write_run(runs / f"20261101-10000{i}-r{i}")
    pins.save_pins(runs, ["a-run-deleted-since"])  # forgotten at the next pin
    app = Host(runs)

    async def interact(pilot):
        pane = app.query_one(RunsPane)
        assert listed(pane) == ["r3", "r2", "r1", "r0"]
        await pilot.press("end", "p")
        assert listed(pane) == ["r0", "r3", "r2", "r1"] and pane.query_one(DataTable).cursor_row == 0
        assert str(pane.query_one(DataTable).get_cell(pane.run_key(pane.records[0]), "mark")).endswith("↑")

    run(app, interact)
    assert json.loads(pins.pins_file().read_text()) == {str(runs.absolute()): ["20261101-100000-r0"]}
    again = Host(runs)

    async def reopened(pilot):
        pane = again.query_one(RunsPane)
        assert listed(pane) == ["r0", "r3", "r2", "r1"]
        await pilot.press("p")  # unpin
        assert listed(pane) == ["r3", "r2", "r1", "r0"]

    run(again, reopened)
    assert json.loads(pins.pins_file().read_text()) == {}


def test_pins_that_cannot_be_saved_hold_for_the_session_and_say_so(tmp_path, monkeypatch):
    state = tmp_path / "state-file"
    state.write_text("not a folder")
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    runs = tmp_path / "runs"
    for i in range(2):
        write_run(runs / f"20261101-10000{i}-r{i}")
    app = Host(runs)

    async def interact(pilot):
        pane = app.query_one(RunsPane)
        await pilot.press("down", "p")
        await pilot.pause()
        assert listed(pane) == ["r0", "r1"]
        assert [n.message for n in app._notifications][-1].startswith("pins kept for this session only")

    run(app, interact)


# --- charts you can read ---------------------------------------------------------------------------------


def charted_runs(base: Path) -> Path:
    fake_run(base / "r1-none", "none", 0.01, [900.0, 1400.0, 700.0, 1100.0, 800.0], [70.1, 74.5, 77.0, 75.2, 78.3])
    fake_run(base / "r2-unit", "unit", 0.01, [0.80, 0.68, 0.62, 0.59, 0.57], [73.5, 77.0, 78.9, 80.1, 80.6])
    fake_run(base / "r3-zscore", "zscore", 0.01, [0.55, 0.50, 0.48], [81.0, 82.5, 83.1])
    return base


def legend(app) -> str:
    pane = app.query_one(RunsPane)
    return "\n".join(line.plain for line in pane.query_one(RunsLegend).lines(200))


def test_the_cursor_reads_every_overlaid_runs_values_at_the_nearest_epoch(tmp_path):
    app = Host(charted_runs(tmp_path / "runs"))

    async def interact(pilot):
        pane = app.query_one(RunsPane)
        await pilot.press("a", "right")  # the first press: on the last epoch
        charts = list(app.query(RunsChart))
        assert pane.cursor == 5 and all(c.cursor == 5 for c in charts)
        text = legend(app)
        assert "zscore lr0.01 epochs 3: loss 0.48 · 83.10% at 3" in text  # its nearest epoch: its last
        assert "unit lr0.01 epochs 5: loss 0.57 · 80.60%" in text and "none lr0.01 epochs 5: loss 800 · 78.30%" in text
        await pilot.press("left", "left")
        assert pane.cursor == 3 and "unit lr0.01 epochs 5: loss 0.62 · 78.90%" in legend(app)
        assert "83.10% at" not in legend(app)  # epoch 3 is r3's own
        for _ in range(5):
            await pilot.press("left")
        assert pane.cursor == 1  # not before the first epoch
        await pilot.press("escape")
        assert pane.cursor is None and ": loss" not in legend(app) and charts[0].cursor is None

    run(app, interact)


def test_l_flips_the_loss_axis_and_z_zooms_to_the_last_epochs(tmp_path):
    app = Host(charted_runs(tmp_path / "runs"))

    async def interact(pilot):
        pane = app.query_one(RunsPane)
        loss = app.query_one("#runs-loss", RunsChart)
        await pilot.press("a")
        loss.replot()
        await pilot.pause()
        assert loss.drawn_log  # 0.46 to 1400: three decades, log by itself
        await pilot.press("l")
        loss.replot()
        await pilot.pause()
        assert loss.log_scale is False and not loss.drawn_log
        await pilot.press("l")
        loss.replot()
        await pilot.pause()
        assert loss.drawn_log
        await pilot.press("z")
        assert pane.window == 3 and loss.window == 3  # the last half of 5 epochs, rounded up
        loss.replot()
        await pilot.pause()
        assert loss.drawn_x == (3, 5)
        await pilot.press("z", "z")
        assert pane.window == 2  # at least 2
        await pilot.press("Z", "Z")
        assert pane.window is None  # all epochs again

    run(app, interact)

"""The Runs pane in a tiny host app: listing, selection, overlaid curves, export, open, snapshot."""

from __future__ import annotations

import asyncio
import csv
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from runfolders import Writer, write_run
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Static

import fmtui.runfolder.export
from fmtui.config import RunConfig
from fmtui.headless import Reporter, run_training
from fmtui.widgets import runs_pane
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
    # softmax regressions have no hidden layers: their export says nothing of `hidden 256, relu`
    assert {r[f] for r in rows for f in ("hidden", "activation", "dropout", "batch_norm")} == {""}
    assert float(rows[0]["momentum"]) == 0 and float(rows[0]["lr"]) == 0.05  # what applies is there
    data = json.loads(next((trained_runs / "exports").glob("*.json")).read_text())
    assert [d["run"] for d in data] == ["c-zscore", "b-unit"] and len(data[0]["metrics"]) == 2
    assert data[0]["config"]["hidden"] is None and data[0]["config"]["norm"] == "zscore"


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


def fake_run(
    path: Path, norm: str, lr: float, losses: list[float], accs: list[float], started: str = "2026-11-27T12:00:00+01:00"
) -> None:
    """A run folder with fixed numbers and start time, so the snapshot is the same on every machine."""
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
    (path / "summary.json").write_text(json.dumps({"status": "completed", "started_at": started}))


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


# --- following the runs folder ----------------------------------------------------------------------------


async def wait_for(pilot, condition, what: str) -> None:
    """Let the app run (its timers poll the folder) until condition() holds; fail after a generous while."""
    for _ in range(600):
        if condition():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"the Runs pane never showed {what}")


def row_of(pane: RunsPane, key: str) -> list[str]:
    table = pane.query_one(DataTable)
    return [str(table.get_cell(key, c.key)) for c in table.ordered_columns]


def cells_of(pane: RunsPane, key: str, *columns: str) -> list[str]:
    """The row's cells in these columns (fmtui.widgets.runs_table.COLUMNS keys: ep, acc, status...)."""
    table = pane.query_one(DataTable)
    return [str(table.get_cell(key, column)) for column in columns]


@pytest.fixture
def fast_polling(monkeypatch):
    monkeypatch.setattr(runs_pane, "POLL_INTERVAL", 0.1)


def test_a_run_written_by_another_process_appears_advances_and_turns_interrupted_without_a_key(tmp_path, fast_polling):
    runs = tmp_path / "runs"
    write_run(runs / "a-old")
    app = Host(runs)
    writer = None

    async def interact(pilot):
        nonlocal writer
        pane = app.query_one(RunsPane)
        table = pane.query_one(DataTable)
        writer = Writer(runs / "b-live", epochs=3)
        await wait_for(pilot, lambda: len(pane.records) == 2, "the new run")
        assert [r.name for r in pane.records] == ["b-live", "a-old"] and table.cursor_row == 1  # still on a-old
        assert cells_of(pane, "b-live", "ep", "acc", "status") == ["0/3", "-", "running"]
        await pilot.press("up", "space")
        for epoch in (1, 2):
            writer.epoch()
            await wait_for(pilot, lambda e=epoch: cells_of(pane, "b-live", "ep") == [f"{e}/3"], f"epoch {epoch}")
        assert cells_of(pane, "b-live", "acc", "status") == ["82.00%", "running"]
        assert pane.selected == {"b-live"} and table.cursor_row == 0
        chart = app.query_one("#runs-acc", RunsChart)
        assert [len(r.metrics) for r in chart.runs] == [2]  # the curves follow the run too
        writer.kill()
        await wait_for(pilot, lambda: cells_of(pane, "b-live", "status") == ["interrupted"], "the dead writer")
        status = str(app.query_one("#runs-status", Static).render())
        assert status.startswith(f"b-live: interrupted after epoch 2 of 3 (pid {writer.proc.pid} on ")

    try:
        run(app, interact)
    finally:
        if writer:
            writer.close()


def test_a_headless_training_run_appears_and_completes_without_a_key(tiny_data, tmp_path, fast_polling):
    runs = tmp_path / "runs"
    app = Host(runs)
    # small batches: epochs slow enough (a few tenths of a second) for the pane to see the run while it trains
    args = ["--no-ui", "train", "--data-dir", tiny_data, "--batch-size", 4, "--epochs", 3, "--runs-dir", runs]
    seen = []

    async def interact(pilot):
        pane = app.query_one(RunsPane)
        proc = subprocess.Popen([sys.executable, "-m", "fmtui", *map(str, args)], stdout=subprocess.DEVNULL)
        try:

            def finished() -> bool:
                seen.extend(r.status for r in pane.records)
                return bool(pane.records) and pane.records[0].status == "completed"

            await wait_for(pilot, finished, "the headless run completed")
        finally:
            proc.wait()
        ep, acc, status = cells_of(pane, pane.records[0].name, "ep", "acc", "status")
        assert (ep, status) == ("3", "completed") and acc == f"{pane.records[0].final_accuracy:.2f}%"
        assert proc.returncode == 0

    run(app, interact)
    assert "running" in seen  # it was listed while it trained, before it completed


def test_a_hidden_runs_pane_does_not_look_at_the_folder(tmp_path, fast_polling, monkeypatch):
    """In the dashboard the pane polls only while on screen, so it costs a training run nothing elsewhere."""
    from fmtui.app import make_app
    from fmtui.runfolder.read import RunsFolder

    scans = []
    scan = RunsFolder.scan
    monkeypatch.setattr(RunsFolder, "scan", lambda self: scans.append(1) or scan(self))
    app = make_app(runs_dir=tmp_path / "runs")

    async def main():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.5)  # five polling intervals on the Model pane
            before = len(scans)
            assert before == 0  # not even at start: the first look is when the pane is first shown
            await pilot.press("5")
            await wait_for(pilot, lambda: len(scans) > before + 2, "polling once on screen")

    asyncio.run(main())


@pytest.mark.parametrize(
    "errno_,words", [(errno.ENOSPC, "No space left on device"), (errno.EROFS, "Read-only file system")]
)
def test_export_on_a_full_or_read_only_disk_is_one_notification(trained_runs, monkeypatch, errno_, words):
    def refuse(path, data):
        raise OSError(errno_, os.strerror(errno_))

    monkeypatch.setattr(fmtui.runfolder.export, "atomic_write", refuse)
    app = Host(trained_runs)
    said = []
    app.notify = lambda message, **kw: said.append((message, kw.get("severity")))

    async def interact(pilot):
        await pilot.press("space", "e")
        await pilot.pause()

    run(app, interact)
    assert said == [(f"cannot export into {trained_runs / 'exports'}: {words}", "error")]


# --- the overlay's legend with many runs ----------------------------------------------------------------


def test_many_runs_are_drawn_and_named_apart_and_each_has_a_legend_entry_or_a_mark(tmp_path):
    """20 runs alike but for epochs, seed or status: 20 different colour/marker pairs (the list's first column
    shows each curve's mark), 20 different labels, at most 3 legend lines whose entries are never broken, the
    runs beyond them counted; v skips val curves when no run has a validation split, and says so."""
    runs = tmp_path / "runs"
    for i in range(20):
        write_run(runs / f"r{i:02d}", epochs=3 + i % 2, seed=i // 2, status="stopped" if i == 7 else "completed")
    app = Host(runs)

    async def interact(pilot):
        pane = app.query_one(RunsPane)
        await pilot.press("a")
        await pilot.pause()
        records = pane.selected_records
        assert len(records) == 20
        table = pane.query_one(DataTable)
        marks = [table.get_row(pane.run_key(r))[0][:1] for r in records]  # the mark (a pin would follow it)
        assert len({(m.plain, str(m.style)) for m in marks}) == 20  # the list shows each run's own mark
        assert [(m.plain, str(m.style)) for m in marks] == [
            (runs_pane.mark(i).plain, str(runs_pane.mark(i).style)) for i in range(20)
        ]
        labels = runs_pane.legend_labels(records)
        seventh = labels[[r.name for r in records].index("r07")]
        assert len(set(labels)) == 20 and seventh.endswith("epochs 4 seed 3 stopped")
        legend = pane.query_one(runs_pane.RunsLegend)
        lines = [line.plain for line in runs_pane.legend_lines(records, legend.content_size.width)]
        assert len(lines) == 3 == legend.size.height and all(len(line) <= legend.content_size.width for line in lines)
        shown = [e for line in lines for e in line.split("   ") if not e.endswith("marked in the list")]
        assert all(e[2:].strip() in labels for e in shown)  # whole entries only
        assert lines[-1].endswith(f"+{20 - len(shown)} more: marked in the list")
        await pilot.press("v")  # train curves
        await pilot.press("v")  # no val curves in these runs: back to test, with a word
        await pilot.pause()
        assert pane.split == "test"
        assert any("no val curves" in n.message for n in app._notifications)

    run(app, interact)

"""System metrics in the Train pane (Pilot): the CPU and memory lines of a headless run another process trains,
watched from the Runs pane as it goes; GPU lines of a run trained here, through a fake NVML module (no GPU here);
snapshots at 80x24 (256 colours, 16 colours, NO_COLOR) and 120x40."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from pilot import HANG, RUN_DIR, sync, synthetic_run, wait_for
from test_sysmetrics import H100, NO_POWER, fake_nvml
from test_system_view import samples
from test_watch_app import headless

from fmtui.app import make_app
from fmtui.config import RunConfig
from fmtui.runfolder.schema import SYSTEM
from fmtui.sysmetrics import read_system
from fmtui.widgets import runs_pane, train_pane
from fmtui.widgets.epoch_log import EpochLog
from fmtui.widgets.runs_pane import RunsPane
from fmtui.widgets.system_view import SystemView

pytestmark = pytest.mark.app


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch):
    monkeypatch.setattr(runs_pane, "POLL_INTERVAL", 0.1)
    monkeypatch.setattr(train_pane, "SYSTEM_POLL", 0.1)


def system_lines(app) -> list[str]:
    """The Train pane's system lines as shown ([] while the view is hidden)."""
    view = app.query_one("#train-system", SystemView)
    return str(view.render()).splitlines() if view.display else []


@sync
async def test_a_headless_run_beside_the_dashboard_shows_its_live_cpu_and_ram_lines(tiny_data, tmp_path):
    """The issue's done-when: `fmtui --no-ui train` in another process, enter on it in the Runs pane, and the
    Train pane shows its CPU and memory lines, following its system.jsonl as it grows (GPU lines only where the
    file has GPU readings: none on a machine without NVML, one per GPU on a GPU machine)."""
    runs = tmp_path / "runs"
    proc = headless(runs, tiny_data, epochs=200)
    try:
        app = make_app(RunConfig(data_dir=str(tiny_data)), runs_dir=runs)
        async with app.run_test(size=(120, 40)) as pilot:
            pane = app.query_one(RunsPane)
            await pilot.press("5")
            await wait_for(pilot, lambda: pane.records and pane.records[0].status == "running")
            folder = pane.records[0].path
            await pilot.press("enter")
            await wait_for(pilot, lambda: system_lines(app))
            cpu, *gpus = system_lines(app)
            assert cpu.startswith("cpu") and "%" in cpu and " ram " in cpu and "/" in cpu and "process " in cpu
            assert len(gpus) == len(read_system(folder)[-1].get("gpus", [])) and all(g[:3] == "gpu" for g in gpus)
            shown = app.query_one(SystemView).rows
            await wait_for(pilot, lambda: app.query_one(SystemView).rows[-1]["t"] > shown[-1]["t"])  # live
            assert proc.poll() is None and app.train_pane.phase == "running"
            await pilot.press("x", "y")
            await wait_for(pilot, lambda: app.train_pane.phase == "finished")
            assert system_lines(app)[0].startswith("cpu")  # the run's last samples stay on show
        assert proc.wait(timeout=HANG) == 130
    finally:
        proc.kill()
        proc.wait()


@sync
async def test_a_run_trained_here_shows_a_line_per_gpu_with_what_it_reports(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([H100, NO_POWER]))
    app = make_app(RunConfig(data_dir=str(tiny_data), epochs=2, batch_size=100), runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: app.train_pane.phase == "finished" and system_lines(app))
        cpu, gpu0, gpu1 = system_lines(app)
    assert cpu.startswith("cpu ") and "process" in cpu
    assert gpu0.startswith("gpu0   97% ") and gpu0.endswith("mem 12.0/80.0 GiB · 64°C · 312 W · NVIDIA H100 80GB HBM3")
    assert gpu1.startswith("gpu1    5% ") and gpu1.endswith("mem 1.0/24.0 GiB · 40°C · NVIDIA A10")  # no watts


@sync
async def test_a_run_without_system_metrics_has_no_system_lines(tiny_data, tmp_path, monkeypatch):
    """A run folder of an older fmtui (no system.jsonl), or a link in its place: no lines, not zeros."""
    from pilot import replay

    monkeypatch.chdir(tmp_path)
    (tmp_path / RUN_DIR).mkdir(parents=True)
    (tmp_path / RUN_DIR / SYSTEM).symlink_to(tmp_path / "elsewhere.jsonl")
    (tmp_path / "elsewhere.jsonl").write_text(json.dumps(samples()[0]) + "\n")
    app = make_app(RunConfig(data_dir=str(tiny_data), epochs=4), trainer=replay)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: app.train_pane.phase == "finished")
        await pilot.pause(0.3)
        assert system_lines(app) == []


def replay_with_system(cfg: RunConfig, runs_dir: Path, post, should_stop) -> None:
    """The replaying trainer, its run folder holding fixed system metrics (two GPUs, one without power)."""
    (RUN_DIR).mkdir(parents=True, exist_ok=True)
    (RUN_DIR / SYSTEM).write_text("".join(json.dumps(row) + "\n" for row in samples()))
    for message in synthetic_run(cfg):
        post(message)


@pytest.fixture
def here(tiny_data, tmp_path, monkeypatch) -> str:
    """The data and the run folder as relative paths: the same picture on every machine."""
    monkeypatch.chdir(tiny_data.parent)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    return tiny_data.name


async def trained(pilot) -> None:
    app = pilot.app
    await pilot.press("s")
    await wait_for(pilot, lambda: app.train_pane.phase == "finished" and system_lines(app))
    app.train_pane.replot()
    log = app.query_one(EpochLog)
    bar = log.vertical_scrollbar

    def settled() -> bool:
        """The system lines take rows from the epoch log: its layout settled, scrolled to its end, its scrollbar
        drawn for that end (the same picture however busy the machine is)."""
        end = log.max_scroll_y
        return end > 0 and log.scroll_y == end and bar.position == end and bar.window_size == log.size.height

    await wait_for(pilot, settled)
    bar.refresh()  # drawn for the settled state, not a frame of the layout before
    await pilot.pause()
    await pilot.pause()


@pytest.mark.parametrize(
    "env", [{}, {"TERM": "xterm"}, {"NO_COLOR": "1"}], ids=["256-colours", "16-colours", "no-colour"]
)
def test_train_pane_with_system_lines_at_80x24(snap_compare, here, monkeypatch, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = make_app(RunConfig(data_dir=here, epochs=4), trainer=replay_with_system)
    assert snap_compare(app, terminal_size=(80, 24), run_before=trained)


def test_train_pane_with_system_lines_at_120x40(snap_compare, here):
    app = make_app(RunConfig(data_dir=here, epochs=4), trainer=replay_with_system)
    assert snap_compare(app, terminal_size=(120, 40), run_before=trained)

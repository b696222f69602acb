"""System metrics' peaks where runs are listed: `fmtui runs --json` (system_peaks) and the Runs pane's `peak mem`
column, shown where there is room and only when a run has system metrics; its snapshots at 80x24 and 120x40."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pilot import sync
from test_cli import fmtui
from test_explore_snapshots import drawn
from test_hparams_view import SWEEP, lecture_runs
from test_runs_pane import Host, cells_of
from test_system_view import GIB, samples

from fmtui.runfolder.schema import SYSTEM
from fmtui.widgets.runs_pane import RunsPane
from fmtui.widgets.runs_table import COLUMNS
from fmtui.widgets.system_view import peak_memory

pytestmark = pytest.mark.app


def with_system(folder: Path, rows: list[dict], device: str = "cpu (1 thread)") -> Path:
    """Give a run folder system.jsonl rows, and the device it trained on (config.json's resolved part)."""
    (folder / SYSTEM).write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "resolved": {"device": device}}))
    return folder


def runs_json(base: Path) -> dict[str, dict]:
    result = fmtui("--no-ui", "runs", "--json", base)
    assert result.exit_code == 0, result.output
    return {line["run"]: line for line in map(json.loads, result.output.splitlines())}


def test_runs_json_gives_each_runs_peaks_and_null_without_system_metrics(tmp_path):
    base = lecture_runs(tmp_path / "runs")
    first, second, *_ = sorted((base / SWEEP).iterdir())
    rows = samples()
    rows[3]["cpu"] = 99.5  # a peak in the middle, not the last sample's
    with_system(first, rows, device="cuda:0 NVIDIA H100 80GB HBM3")
    lines = runs_json(base)
    assert lines[f"{SWEEP}/{second.name}"]["system_peaks"] is None
    peaks = lines[f"{SWEEP}/{first.name}"]["system_peaks"]
    assert peaks == {
        "cpu": 99.5,
        "rss": int(0.8 * GIB),
        "ram_used": 9 * GIB,
        "ram_total": 31 * GIB,
        "gpus": [
            {"index": 0, "name": "NVIDIA H100 80GB HBM3", "util": 91, "mem_used": 12 * GIB}
            | {"mem_total": 80 * GIB, "temp": 61, "power": 320.0},
            {"index": 1, "name": "NVIDIA A10", "util": 0, "mem_used": GIB, "mem_total": 24 * GIB, "temp": 35},
        ],
        "samples": 12,
        "first": 1000.0,
        "last": 1022.0,
    }


def test_a_broken_or_linked_system_file_gives_no_peaks_and_no_error(tmp_path):
    base = lecture_runs(tmp_path / "runs")
    first, second, *_ = sorted((base / SWEEP).iterdir())
    (first / SYSTEM).write_text("not json\n[1, 2]\n")
    (tmp_path / "elsewhere.jsonl").write_text(json.dumps(samples()[0]) + "\n")
    (second / SYSTEM).symlink_to(tmp_path / "elsewhere.jsonl")
    lines = runs_json(base)
    assert lines[f"{SWEEP}/{first.name}"]["system_peaks"] is None
    assert lines[f"{SWEEP}/{second.name}"]["system_peaks"] is None
    assert lines[f"{SWEEP}/{second.name}"]["status"] == "completed"


def test_the_peak_memory_cell_is_the_gpus_on_a_gpu_and_the_process_elsewhere():
    peaks = {"rss": int(0.8 * GIB), "gpus": [{"index": 0, "mem_used": 3 * GIB}, {"index": 1, "mem_used": 12 * GIB}]}
    assert peak_memory(peaks, "cuda:1 NVIDIA H100") == "12.0G gpu"
    assert peak_memory(peaks, "cpu (4 threads)") == "0.8G"  # a CPU run on a GPU machine: its own memory
    assert peak_memory({"rss": GIB}, "cuda:0 NVIDIA H100") == "1.0G"  # no GPU readings (no NVML): the process
    assert peak_memory({}, "cpu") == peak_memory(None, "cpu") == "-"


def columns(pane: RunsPane) -> list[str]:
    return [str(c.key.value) for c in pane.query_one("#runs-table").ordered_columns]


@pytest.mark.parametrize("width", [80, 120])
@sync
async def test_the_runs_pane_shows_peak_memory_where_runs_have_it(tmp_path, width):
    base = lecture_runs(tmp_path / "runs")
    first = sorted((base / SWEEP).iterdir())[0]
    async with Host(base).run_test(size=(width, 24)) as pilot:
        pane = pilot.app.query_one(RunsPane)
        await pilot.pause()
        assert "peak" not in columns(pane)  # no run has system metrics: no column of dashes
        with_system(first, samples())
        pane.folder = type(pane.folder)(base)  # look again from scratch (the folder's mtime may not have moved)
        pane.refresh_runs()
        await pilot.pause()
        assert "peak" in columns(pane) and "status" in columns(pane) and "acc" in columns(pane)
        key = f"{SWEEP}/{first.name}"
        assert cells_of(pane, key, "peak") == ["0.8G"]
        others = [k for k in pane.query_one("#runs-table").rows if k.value != key]
        assert {cells_of(pane, k.value, "peak")[0] for k in others} == {"-"}


def test_the_peak_column_gives_way_before_status_and_accuracy():
    from rich.text import Text

    from fmtui.widgets.runs_table import layout

    row = {k: Text("x" * 6) for k in COLUMNS} | {"peak": Text("12.0G gpu"), "name": Text("n" * 40)}
    assert "peak" in layout(120, [row]) and layout(120, [row])["name"] > 8
    narrow = layout(40, [row])
    assert "peak" not in narrow and {"acc", "status"} <= set(narrow)


@pytest.fixture
def peaked_runs(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    base = lecture_runs(Path("runs"))
    for k, folder in enumerate(sorted((base / SWEEP).iterdir())[:5]):
        rows = [r | {"rss": int((0.3 + 0.2 * k) * GIB)} for r in samples()]
        with_system(folder, rows, device="cuda:0 NVIDIA H100 80GB HBM3" if k == 0 else "cpu (1 thread)")
    return base


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_runs_pane_with_peak_memory(snap_compare, peaked_runs, size):
    async def every_run(pilot) -> None:
        await pilot.press("a")
        await drawn(pilot)

    assert snap_compare(Host(peaked_runs), terminal_size=size, run_before=every_run)

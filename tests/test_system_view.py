"""The system metrics view (fmtui.widgets.system_view) given rows of fmtui.sysmetrics: the newest numbers, a
sparkline of recent use, nothing for a reading that is absent; snapshots at 80x24 and 120x40."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Static

from fmtui.widgets.system_view import SystemView, spark, system_lines

pytestmark = pytest.mark.app

GIB = 1 << 30


def samples(n: int = 12, gpus: bool = True) -> list[dict]:
    """n rows, 2 s apart: CPU and the first GPU busier and busier; the second GPU reports no power."""
    rows = []
    for k in range(n):
        row = {
            "t": 1000.0 + 2 * k,
            "cpu": 10.0 + 7 * k,
            "rss": int(0.8 * GIB),
            "ram_used": 9 * GIB,
            "ram_total": 31 * GIB,
        }
        if gpus:
            row["gpus"] = [
                {"index": 0, "name": "NVIDIA H100 80GB HBM3", "util": 8 * k + 3, "mem_used": 12 * GIB}
                | {"mem_total": 80 * GIB, "temp": 50 + k, "power": 100.0 + 20 * k},
                {"index": 1, "name": "NVIDIA A10", "util": 0, "mem_used": GIB, "mem_total": 24 * GIB, "temp": 35},
            ]
        rows.append(row)
    return rows


def test_the_newest_numbers_with_sparklines_of_recent_use():
    host, gpu0, gpu1 = (line.plain for line in system_lines(samples(), 100))
    assert host == "cpu    87% ▁▂▂▃▄▄▅▅▆▆▇▇  ram 9.0/31.0 GiB · process 0.8 GiB"
    assert gpu0 == "gpu0   91% ▁▁▂▃▃▄▅▅▆▇▇█  mem 12.0/80.0 GiB · 61°C · 320 W · NVIDIA H100 80GB HBM3"
    assert gpu1 == "gpu1    0% ▁▁▁▁▁▁▁▁▁▁▁▁  mem 1.0/24.0 GiB · 35°C · NVIDIA A10"  # no power reading: no watts


def test_a_machine_without_gpu_readings_has_no_gpu_line_and_no_rows_say_so():
    assert [line.plain[:3] for line in system_lines(samples(gpus=False), 100)] == ["cpu"]
    assert [line.plain for line in system_lines([], 100)] == ["no system metrics yet"]
    assert [line.plain for line in system_lines([{"t": 1.0}], 100)] == ["cpu   "]  # nothing measured, nothing shown


def test_a_sparkline_maps_0_to_100_onto_eight_blocks():
    assert spark([0, 12.5, 25, 50, 99, 100, 250, -5], 8) == "▁▂▃▅███▁"
    assert spark([1, 2, 3], 2) == "▁▁" and spark([50], 0) == ""


class Host(App):
    def compose(self) -> ComposeResult:
        yield Static("system metrics of a run (the last sample's numbers, recent use as sparklines):")
        yield SystemView(id="system")


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_system_view_snapshot(snap_compare, size):
    async def show(pilot) -> None:
        pilot.app.query_one(SystemView).show(samples())
        await pilot.pause()

    assert snap_compare(Host(), terminal_size=size, run_before=show)

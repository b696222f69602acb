"""SVG snapshots of the views for exploring runs: the Runs pane (filtered, its charts' cursor on an epoch, zoomed)
and the hyperparameter view, on the lecture experiment's 8 runs (fixed numbers), at 80x24 and 120x40; the Runs
pane also in 16 colours and under NO_COLOR.

Update after an intended change with `pytest tests/test_explore_snapshots.py --snapshot-update` and look at the
SVGs in tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_hparams_view import lecture_runs
from test_runs_pane import Host

from fmtui.widgets.charts import ThrottledPlot
from fmtui.widgets.runs_pane import RunsPane

pytestmark = pytest.mark.app


@pytest.fixture(autouse=True)
def _colours(monkeypatch):
    """256 colours on every machine unless a test asks for fewer."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)  # the status line names the runs folder as given: the same on every machine
    return lecture_runs(Path("runs"))


async def drawn(pilot) -> None:
    """Charts redraw on a timer: draw them now, so that the picture never depends on timing."""
    await pilot.pause()
    for chart in pilot.app.screen.query(ThrottledPlot):
        chart.replot()
    await pilot.pause()


@pytest.mark.parametrize(
    "env", [{}, {"TERM": "xterm"}, {"NO_COLOR": "1"}], ids=["256-colours", "16-colours", "no-colour"]
)
def test_runs_pane_with_the_cursor_at_80x24(snap_compare, runs, monkeypatch, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    async def cursor(pilot) -> None:
        await pilot.press("a", "right", "left", "left")  # every run; the cursor on epoch 3 of 5
        await drawn(pilot)

    assert snap_compare(Host(runs), terminal_size=(80, 24), run_before=cursor)


def test_runs_pane_filtered_and_zoomed_at_120x40(snap_compare, runs):
    async def filtered(pilot) -> None:
        pane = pilot.app.query_one(RunsPane)
        pane.set_filter("norm:zscore | norm:unit -health:at-chance")
        await pilot.press("a", "z", "right")  # the 3 runs that match; the last 3 epochs; the cursor on the last
        await drawn(pilot)

    assert snap_compare(Host(runs), terminal_size=(120, 40), run_before=filtered)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_hyperparameter_view(snap_compare, runs, size):
    async def view(pilot) -> None:
        await pilot.press("a", "h")
        await drawn(pilot)

    assert snap_compare(Host(runs), terminal_size=size, run_before=view)

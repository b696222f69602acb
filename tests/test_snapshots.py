"""SVG snapshots of the Model and Train panes at fixed sizes; the Train pane is fed synthetic engine events.

Update after an intended change with `pytest tests/test_snapshots.py --snapshot-update` and look at the
SVGs in tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

import re

import pytest
from pilot import replay, text_of, wait_for
from textual.widgets import Input

from fmtui.app import make_app
from fmtui.config import RunConfig
from fmtui.widgets.train_pane import TrainPane

pytestmark = pytest.mark.app

SIZE = (100, 32)


async def wait_for_params(pilot) -> None:
    """The parameter count comes from a thread; the picture must not depend on when it lands."""
    await wait_for(pilot, lambda: re.search(r"\d parameters", text_of(pilot.app, "#model-summary")))


def test_model_pane(snap_compare, tiny_data):
    app = make_app(RunConfig(data_dir=str(tiny_data)))
    assert snap_compare(app, terminal_size=SIZE, run_before=wait_for_params)


def test_model_pane_with_a_bad_learning_rate(snap_compare, tiny_data):
    async def bad_lr(pilot) -> None:
        pilot.app.query_one("#f-lr", Input).value = "0"
        await wait_for_params(pilot)

    app = make_app(RunConfig(data_dir=str(tiny_data)))
    assert snap_compare(app, terminal_size=SIZE, run_before=bad_lr)


async def train_synthetic(pilot) -> None:
    """Start a run of the replaying trainer and wait for its end, then draw the charts now."""
    app = pilot.app
    await pilot.press("s")
    await wait_for(pilot, lambda: app.train_pane.phase == "finished")
    app.query_one(TrainPane).replot()
    await pilot.pause()


def test_train_pane_after_a_run(snap_compare, tiny_data):
    app = make_app(RunConfig(data_dir=str(tiny_data), epochs=4), trainer=replay)
    assert snap_compare(app, terminal_size=SIZE, run_before=train_synthetic)


def test_train_pane_at_80x24(snap_compare, tiny_data):
    app = make_app(RunConfig(data_dir=str(tiny_data), epochs=4), trainer=replay)
    assert snap_compare(app, terminal_size=(80, 24), run_before=train_synthetic)

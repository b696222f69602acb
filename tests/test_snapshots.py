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


@pytest.fixture(autouse=True)
def _colours(monkeypatch):
    """The same colour mode on every machine (the app's console reads it from the environment): 256 colours."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")


@pytest.fixture
def tiny_here(tiny_data, monkeypatch) -> str:
    """The tiny data folder as a relative path: the Model pane shows where the data is, the same in every run."""
    monkeypatch.chdir(tiny_data.parent)
    return tiny_data.name


async def wait_for_params(pilot) -> None:
    """The parameter count comes from a thread; the picture must not depend on when it lands."""
    await wait_for(pilot, lambda: re.search(r"\d parameters", text_of(pilot.app, "#model-summary")))


def test_model_pane(snap_compare, tiny_here):
    app = make_app(RunConfig(data_dir=tiny_here))
    assert snap_compare(app, terminal_size=SIZE, run_before=wait_for_params)


def test_model_pane_with_a_bad_learning_rate(snap_compare, tiny_here):
    async def bad_lr(pilot) -> None:
        pilot.app.query_one("#f-lr", Input).value = "0"
        await wait_for(pilot, lambda: "✗" in text_of(pilot.app, "#form-status"))  # read once typing pauses
        await wait_for_params(pilot)

    app = make_app(RunConfig(data_dir=tiny_here))
    assert snap_compare(app, terminal_size=SIZE, run_before=bad_lr)


@pytest.mark.parametrize("term", ["xterm-256color", "xterm"], ids=["256-colours", "16-colours"])
def test_model_pane_focused_field_for_softmax(snap_compare, tiny_here, monkeypatch, term):
    """The focused field stands out (label and value) in 256 and in 16 colours; MLP-only fields are dimmed."""
    monkeypatch.setenv("TERM", term)

    async def focus_lr(pilot) -> None:
        field = pilot.app.query_one("#f-lr", Input)
        field.cursor_blink = False  # a blinking cursor would make two pictures of the same screen differ
        field.focus()
        await wait_for(pilot, lambda: "7,850 parameters" in text_of(pilot.app, "#model-summary"))
        await pilot.wait_for_scheduled_animations()  # the tab underline slides in at start-up
        await pilot.pause()

    app = make_app(RunConfig(data_dir=tiny_here, model="softmax"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=focus_lr)


def test_model_pane_without_data_at_80x24(snap_compare, tmp_path, monkeypatch):
    """The first screen says that the data is missing, where it was looked for and how to fix it."""
    monkeypatch.chdir(tmp_path)
    app = make_app(RunConfig(data_dir="no-data-here"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=wait_for_params)


async def train_synthetic(pilot) -> None:
    """Start a run of the replaying trainer and wait for its end, then draw the charts now."""
    app = pilot.app
    await pilot.press("s")
    await wait_for(pilot, lambda: app.train_pane.phase == "finished")
    app.query_one(TrainPane).replot()
    await pilot.pause()


def test_train_pane_after_a_run(snap_compare, tiny_here):
    app = make_app(RunConfig(data_dir=tiny_here, epochs=4), trainer=replay)
    assert snap_compare(app, terminal_size=SIZE, run_before=train_synthetic)


def test_train_pane_at_80x24(snap_compare, tiny_here):
    app = make_app(RunConfig(data_dir=tiny_here, epochs=4), trainer=replay)
    assert snap_compare(app, terminal_size=(80, 24), run_before=train_synthetic)

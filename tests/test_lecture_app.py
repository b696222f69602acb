"""The lecture experiment's labels say what `L` will run: the command palette's entry follows the Model pane."""

from __future__ import annotations

import pytest
from pilot import sync

from fmtui.app import make_app
from fmtui.config import RunConfig
from fmtui.sweep import lecture_plan

pytestmark = pytest.mark.app


def palette_entry(app) -> str:
    """The help text of the palette's "Lecture experiment" command, as the palette asks for it when it opens."""
    (entry,) = [c for c in app.get_system_commands(app.screen) if c.title == "Lecture experiment"]
    return entry.help


def test_the_plan_is_the_forms_softmax_or_the_lectures():
    assert lecture_plan(RunConfig(model="softmax", batch_size=32, epochs=2)) == (
        "batch 32, 2 epochs (from the Model pane's softmax regression)"
    )
    assert (
        lecture_plan(RunConfig()) == "batch 1024, 100 epochs (the lecture's; its batch size inferred from its charts)"
    )


@sync
async def test_the_palette_says_what_l_runs(tiny_data):
    """The issue: the palette offered "100 epochs" while L ran the Model pane's softmax regression for 5."""
    app = make_app(RunConfig(data_dir=str(tiny_data), model="softmax", batch_size=32, epochs=5))
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        assert palette_entry(app) == (
            "Softmax regression: 4 normalizations x lr 0.01, 1e-5; batch 32, 5 epochs (from the Model pane's softmax "
            "regression) (L in Runs)"
        )
        app.action_preset("mlp")  # not a softmax regression: L runs the lecture's batch size and epochs
        await pilot.pause()
        assert "batch 1024, 100 epochs (the lecture's; its batch size inferred from its charts)" in palette_entry(app)

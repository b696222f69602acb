"""SVG snapshots of the Model and Train panes at fixed sizes; the Train pane is fed synthetic engine events.

Update after an intended change with `pytest tests/test_snapshots.py --snapshot-update` and look at the
SVGs in tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

from textual.widgets import Input, Static

from fmtui.app import make_app
from fmtui.config import RunConfig
from fmtui.messages import EpochFinished, TrainingFinished, TrainingProgress, TrainingStarted
from fmtui.widgets.train_pane import TrainPane

SIZE = (100, 32)
RUN_DIR = Path("runs/20250101-120000-fashion-mnist-mlp-symmetric-lr0.01")


async def wait_for_params(pilot) -> None:
    """The parameter count comes from a thread; the picture must not depend on when it lands."""
    deadline = time.monotonic() + 20
    while not re.search(r"\d parameters", str(pilot.app.query_one("#model-summary", Static).render())):
        assert time.monotonic() < deadline, "parameter count never arrived"
        await pilot.pause(0.05)


def synthetic_run(cfg: RunConfig, epochs: int = 4, batches: int = 938) -> list:
    """The messages a short run would post, with smooth made-up numbers (no training, no clock)."""
    from fmtui.data import NormStats
    from fmtui.engine import BatchProgress, EpochEnd, Finished, Started

    started = Started(
        cfg,
        "Fashion-MNIST",
        [str(i) for i in range(10)],
        "cpu (1 thread)",
        "784-256-10 relu",
        203530,
        60000,
        0,
        10000,
        batches,
        NormStats("symmetric", (127.5,), (127.5,)),
        1,
    )
    messages: list = [TrainingStarted(started, RUN_DIR, None, started.classes)]
    history = []
    for epoch in range(1, epochs + 1):
        for i in range(1, 31):
            step = (epoch - 1) * batches + i * batches // 30
            loss = 0.35 + 0.9 * math.exp(-step / 700) + 0.04 * math.sin(step / 37)
            messages.append(
                TrainingProgress(
                    BatchProgress(
                        epoch, epochs, i * batches // 30, batches, loss, 100 - 30 * loss, 21000.0, step / 330, 9.5, step
                    )
                )
            )
        end = EpochEnd(
            epoch,
            epochs,
            0.3 + 0.5 / epoch,
            89 - 8 / epoch,
            0.36 + 0.4 / epoch,
            87 - 7 / epoch,
            2.85,
            0.12,
            21053.0,
            0.01,
        )
        history.append(end)
        messages.append(EpochFinished(end))
    messages.append(
        TrainingFinished(
            Finished("completed", f"finished {epochs} epochs in 11.4s of training", history, None, 11.4, None), RUN_DIR
        )
    )
    return messages


def test_model_pane(snap_compare, tiny_data):
    app = make_app(RunConfig(data_dir=str(tiny_data)))
    assert snap_compare(app, terminal_size=SIZE, run_before=wait_for_params)


def test_model_pane_with_a_bad_learning_rate(snap_compare, tiny_data):
    async def bad_lr(pilot) -> None:
        pilot.app.query_one("#f-lr", Input).value = "0"
        await wait_for_params(pilot)

    app = make_app(RunConfig(data_dir=str(tiny_data)))
    assert snap_compare(app, terminal_size=SIZE, run_before=bad_lr)


def fake_trainer(cfg, runs_dir, post, should_stop) -> None:
    """Stands in for fmtui.app.run_training: posts a synthetic run from the worker thread."""
    for message in synthetic_run(cfg):
        post(message)


async def train_synthetic(pilot) -> None:
    app = pilot.app
    app.trainer = fake_trainer
    await pilot.press("s")
    deadline = time.monotonic() + 20
    while app.training:
        assert time.monotonic() < deadline, "the synthetic run never finished"
        await pilot.pause(0.05)
    app.query_one(TrainPane).replot()
    await pilot.pause()


def test_train_pane_after_a_run(snap_compare, tiny_data):
    app = make_app(RunConfig(data_dir=str(tiny_data), epochs=4))
    assert snap_compare(app, terminal_size=SIZE, run_before=train_synthetic)


def test_train_pane_at_80x24(snap_compare, tiny_data):
    app = make_app(RunConfig(data_dir=str(tiny_data), epochs=4))
    assert snap_compare(app, terminal_size=(80, 24), run_before=train_synthetic)

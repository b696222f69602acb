"""Pilot helpers shared by the app-tier tests: run async tests, wait for worker threads, read widgets, fake runs.

The project has no async test plugin: `sync` runs a Pilot test with asyncio.run. Waits poll the app,
as training runs in a thread; their timeout only guards against a hang and is never a speed check.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from pathlib import Path

from textual.app import App
from textual.widgets import Static

from fmtui.config import RunConfig
from fmtui.events import BatchProgress, EpochEnd, Finished, NormStats, Started
from fmtui.messages import EpochFinished, LossCurve, TrainingFinished, TrainingStarted

HANG = 120.0
"""Seconds after which a wait gives up: a stuck test must end, however busy the machine."""
RUN_DIR = Path("runs/20250101-120000-fashion-mnist-mlp-symmetric-lr0.01")


def sync(test):
    """Run an async Pilot test with asyncio.run (no pytest-asyncio needed)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


def run(app: App, interact, size: tuple[int, int] = (100, 32)) -> None:
    """Run `await interact(pilot)` inside app.run_test."""

    async def main():
        async with app.run_test(size=size) as pilot:
            await interact(pilot)

    asyncio.run(main())


async def wait_for(pilot, condition, timeout: float = HANG) -> None:
    """Let the app run until condition() holds (workers run in threads, so poll)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for the app: {describe(pilot.app)}")
        await pilot.pause(0.05)


def describe(app: App) -> str:
    """What the Train pane says, when there is one: the likely reason a wait ran out."""
    state = [text_of(app, sel) for sel in ("#train-state", "#train-stats", "#train-message") if app.query(sel)]
    return f"activity={getattr(app, 'activity', None)}, train pane: {state}"


def footer_current(app: App) -> bool:
    """The footer shows the keys the screen's bindings offer now (besides the palette's), laid out: Textual
    rebuilds it a refresh after the bindings change, so a check of the footer waits for this, not for a time."""
    offered = {key for key, active in app.screen.active_bindings.items() if active.binding.show}
    keys = list(app.screen.query("FooterKey"))
    return {k.key for k in keys} - {"ctrl+p"} == offered and all(k.region.width for k in keys)  # and laid out


def text_of(app: App, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


async def settle(pilot) -> None:
    """Wait until a data pane has loaded (or failed) and its worker's messages are handled."""
    pane = pilot.app.query_one("DataPane")
    await wait_for(pilot, lambda: pane.has_class("-ready") or pane.has_class("-error"))
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def synthetic_run(cfg: RunConfig, epochs: int = 4, batches: int = 938) -> list:
    """The messages a short run would post, with smooth made-up numbers (no training, no clock)."""
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
    every, sent = 5, 0  # the loss curve: a point every 5 steps
    curve_so_far = LossCurve()  # progress messages carry the curve so far, as the real worker's do

    def curve(step: float) -> float:
        return 0.35 + 0.9 * math.exp(-step / 700) + 0.04 * math.sin(step / 37)

    for epoch in range(1, epochs + 1):
        for i in range(1, 31):
            step = (epoch - 1) * batches + i * batches // 30
            points = [(s, curve(s)) for s in range(sent + every, step + 1, every)]
            sent = points[-1][0] if points else sent
            loss = curve(step)
            messages.append(
                curve_so_far.progress(
                    BatchProgress(
                        epoch,
                        epochs,
                        i * batches // 30,
                        batches,
                        loss,
                        100 - 30 * loss,
                        21000.0,
                        step / 330,
                        9.5,
                        step,
                        losses=points,
                        loss_every=every,
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


def replay(cfg: RunConfig, runs_dir: Path, post, should_stop) -> None:
    """A trainer for make_app: posts a synthetic 4-epoch run from the worker thread."""
    for message in synthetic_run(cfg):
        post(message)


def until_stopped(cfg: RunConfig, runs_dir: Path, post, should_stop) -> None:
    """A trainer for make_app: starts, reports one batch's progress, waits until should_stop() says so, then ends
    as stopped. One progress message, not a stream of them: on a busy machine a stream every 20 ms outran the app,
    whose queue then never emptied, and every `pilot.press` (which waits for an idle app) waited minutes."""
    started, progress = synthetic_run(cfg, epochs=1)[:2]
    post(started)
    post(progress)
    while not should_stop():
        time.sleep(0.02)  # the worker's cancellation is a flag to poll: nothing posted meanwhile
    post(
        TrainingFinished(
            Finished("stopped", "stopped during epoch 1 after 0 complete epochs", [], None, 0.0, None), RUN_DIR
        )
    )

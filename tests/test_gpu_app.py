"""The CUDA halves of the app: the Train pane's GPU name and memory line, out of GPU memory as a message.

The `cuda` tests run on a lent GPU (scripts/gpu_check.py); their CPU halves below run everywhere.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from test_gpu import LEFT_FREE, TOO_BIG, cuda, fill_gpu, out_of_memory_at_first_forward

from fmtui.app import make_app
from fmtui.config import RunConfig
from fmtui.events import BatchProgress

pytestmark = pytest.mark.app


async def train_pane_texts(app, until: Callable[[str], bool]) -> dict:
    """Run app (autostart) until `until(stats line)` holds or training ends; stop it; the Train pane's lines."""

    def texts() -> dict:
        return {k: str(app.query_one(f"#train-{k}").render()) for k in ("state", "stats", "message")}

    async with app.run_test(size=(120, 36)) as pilot:
        while not (app.activity.busy or texts()["message"]):
            await pilot.pause(0.05)
        while app.activity.busy and not until(texts()["stats"]):
            await pilot.pause(0.05)
        seen = texts()
        app.action_stop()
        while app.activity.busy:
            await pilot.pause(0.05)
        seen["message"] = texts()["message"]
    return seen


def assert_memory_message(seen: dict, runs: Path) -> None:
    """One ERROR line naming memory; a run folder, where one was made, marked error."""
    message = seen["message"]
    assert message.startswith("ERROR: ") and "memory" in message.lower() and "\n" not in message, seen
    for run in runs.iterdir() if runs.is_dir() else ():
        assert json.loads((run / "summary.json").read_text())["status"] == "error"


@cuda
@pytest.mark.real_data
def test_train_pane_shows_the_gpu_name_and_memory(real_data, tmp_path):
    cfg = RunConfig(data_dir=str(real_data), device="cuda", epochs=50)
    app = make_app(cfg, runs_dir=tmp_path / "runs", autostart=True)
    seen = asyncio.run(train_pane_texts(app, until=lambda stats: "GPU mem" in stats))
    assert torch.cuda.get_device_name(0) in seen["state"], seen
    assert re.search(r"GPU mem [\d,]+ MiB", seen["stats"]), seen


@cuda
@pytest.mark.real_data
def test_cuda_out_of_memory_in_the_app_is_a_message(real_data, tmp_path):
    """The GPU filled but for LEFT_FREE bytes, then TOO_BIG trained from the dashboard."""
    cfg = RunConfig(data_dir=str(real_data), device="cuda", **TOO_BIG)
    app = make_app(cfg, runs_dir=tmp_path / "runs", autostart=True)
    hog = fill_gpu(LEFT_FREE)
    try:
        seen = asyncio.run(train_pane_texts(app, until=lambda _: False))
    finally:
        del hog
        torch.cuda.empty_cache()
    assert_memory_message(seen, tmp_path / "runs")


# --- the CPU halves -----------------------------------------------------------------------------


def test_train_pane_shows_the_cpu_and_no_gpu_line(tiny_data, tmp_path):
    cfg = RunConfig(data_dir=str(tiny_data), device="cpu", epochs=200, batch_size=2)  # a few epochs a second
    app = make_app(cfg, runs_dir=tmp_path / "runs", autostart=True)
    seen = asyncio.run(train_pane_texts(app, until=lambda stats: "samples/s" in stats))
    assert "cpu (" in seen["state"] and "samples/s" in seen["stats"] and "GPU" not in seen["stats"], seen
    assert seen["message"].startswith("Stopped"), seen


def test_a_progress_event_with_gpu_memory_shows_it():
    async def shown() -> str:
        app = make_app()
        async with app.run_test(size=(120, 36)) as pilot:
            progress = BatchProgress(
                epoch=1,
                epochs=5,
                batch=10,
                batches=938,
                loss=0.5,
                accuracy=80.0,
                samples_per_s=1e6,
                elapsed=1.0,
                eta=4.0,
                step=10,
                gpu_memory=3 * 2**30,
            )
            app.train_pane.show_progress(progress)
            await pilot.pause()
            return str(app.query_one("#train-stats").render())

    assert "GPU mem 3,072 MiB" in asyncio.run(shown())


def test_out_of_memory_in_the_app_is_a_message(tiny_data, tmp_path, monkeypatch):
    out_of_memory_at_first_forward(monkeypatch)
    app = make_app(RunConfig(data_dir=str(tiny_data), device="cpu"), runs_dir=tmp_path / "runs", autostart=True)
    seen = asyncio.run(train_pane_texts(app, until=lambda _: False))
    assert_memory_message(seen, tmp_path / "runs")
    assert len(list((tmp_path / "runs").iterdir())) == 1  # the error came after Started: the run folder exists

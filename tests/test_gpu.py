"""The CUDA halves of fmtui: training on a GPU, the Train pane's GPU line, running out of GPU memory.

Tests marked `cuda` skip without CUDA; the device check (scripts/gpu_check.py run) runs them on a lent GPU.
The CPU halves below take the same paths without a GPU, so they run in every suite.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from fmtui import engine, models
from fmtui.app import make_app
from fmtui.cli import main as cli_main
from fmtui.config import RunConfig
from fmtui.data import load_dataset
from fmtui.engine import BatchProgress

ROOT = Path(__file__).resolve().parents[1]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (scripts/gpu_check.py runs it on a GPU)")
TOO_BIG = {"hidden": (4096,), "batch_size": 60000, "epochs": 1}
"""One 60,000-image batch through a 4096-wide layer: over 2 GB for the step, 60 MB for data and model."""
LEFT_FREE = 384 * 2**20
"""GPU memory left free when a test fills the rest: room for TOO_BIG's data and model, none for its step."""


def fill_gpu(leave: int) -> list:
    """Take all free GPU memory but `leave` bytes, in pieces of 1 GiB; keep the pieces to hold it."""
    import torch

    torch.cuda.empty_cache()
    pieces = []
    while (free := torch.cuda.mem_get_info()[0]) > leave + 2**30:
        pieces.append(torch.empty(2**30, dtype=torch.uint8, device="cuda"))
    if free > leave:
        pieces.append(torch.empty(free - leave, dtype=torch.uint8, device="cuda"))
    return pieces


def finished(cfg: RunConfig, dataset) -> tuple[engine.Started, engine.Finished]:
    events = list(engine.train(cfg, dataset=dataset))
    assert events[-1].status == "completed", events[-1].message
    return events[0], events[-1]


async def train_pane_texts(app, until: Callable[[str], bool]) -> dict:
    """Run app (autostart) until `until(stats line)` holds or training ends; stop it; the Train pane's lines."""

    def texts() -> dict:
        return {k: str(app.query_one(f"#train-{k}").render()) for k in ("state", "stats", "message")}

    async with app.run_test(size=(120, 36)) as pilot:
        while not (app.training or texts()["message"]):
            await pilot.pause(0.05)
        while app.training and not until(texts()["stats"]):
            await pilot.pause(0.05)
        seen = texts()
        app.action_stop()
        while app.training:
            await pilot.pause(0.05)
        seen["message"] = texts()["message"]
    return seen


def assert_one_memory_line(rc: int, stderr: str, run_dir: Path) -> None:
    """Out of memory: one `Error: ...memory...` line and no traceback; exit 1 with the run folder marked error,
    or exit 2 where fmtui refuses the config up front (nothing trained, so no run folder is needed)."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "memory" in errors[0].lower(), stderr
    assert rc in (1, 2), (rc, stderr)
    if rc == 1:
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "error"


def assert_memory_message(seen: dict, runs: Path) -> None:
    """The app's version: one ERROR line naming memory; a run folder, where one was made, marked error."""
    message = seen["message"]
    assert message.startswith("ERROR: ") and "memory" in message.lower() and "\n" not in message, seen
    for run in runs.iterdir() if runs.is_dir() else ():
        assert json.loads((run / "summary.json").read_text())["status"] == "error"


def out_of_memory_at_first_forward(monkeypatch) -> None:
    """Models whose forward raises what CUDA raises when a step does not fit (the CPU halves' stand-in)."""
    build = models.build_model

    def build_failing(*args, **kwargs):
        model = build(*args, **kwargs)

        def forward(*_):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has 79 GiB in all")

        model.forward = forward
        return model

    monkeypatch.setattr(models, "build_model", build_failing)


# --- on a GPU -----------------------------------------------------------------------------------


@cuda
def test_cuda_training_matches_the_cpu_accuracy(real_data):
    """The lecture's MLP for 2 epochs: the GPU's test accuracy within 0.5 points of the CPU's. (They shuffle
    with different generators; on the CPU, six seeds spread the 2-epoch test accuracy over 0.26 points.)"""
    cfg = RunConfig(data_dir=str(real_data), epochs=2)
    ds = load_dataset("fashion-mnist", real_data)
    started, gpu = finished(cfg.replace(device="cuda"), ds)
    _, cpu = finished(cfg.replace(device="cpu"), ds)
    assert started.device.startswith("cuda")
    assert gpu.history[-1].test_accuracy == pytest.approx(cpu.history[-1].test_accuracy, abs=0.5)
    assert gpu.history[-1].train_accuracy == pytest.approx(cpu.history[-1].train_accuracy, abs=0.5)


@cuda
def test_train_pane_shows_the_gpu_name_and_memory(real_data, tmp_path):
    cfg = RunConfig(data_dir=str(real_data), device="cuda", epochs=50)
    app = make_app(cfg, runs_dir=tmp_path / "runs", autostart=True)
    seen = asyncio.run(train_pane_texts(app, until=lambda stats: "GPU mem" in stats))
    assert torch.cuda.get_device_name(0) in seen["state"], seen
    assert re.search(r"GPU mem [\d,]+ MiB", seen["stats"]), seen


@cuda
def test_cuda_out_of_memory_is_one_line_not_a_traceback(real_data, tmp_path):
    """The GPU filled but for LEFT_FREE bytes first, in the process that then trains TOO_BIG headless."""
    out = tmp_path / "run"
    hidden, batch = ",".join(map(str, TOO_BIG["hidden"])), str(TOO_BIG["batch_size"])
    args = ["--no-ui", "train", "--device", "cuda", "--hidden", hidden, "--batch-size", batch, "--epochs", "1"]
    args += ["--data-dir", str(real_data), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    code = f"import sys\n{inspect.getsource(fill_gpu)}\nhog = fill_gpu({LEFT_FREE})\n"
    code += "from fmtui.cli import main\nmain(sys.argv[1:])\n"
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    assert_one_memory_line(done.returncode, done.stderr, out)


@cuda
def test_cuda_out_of_memory_in_the_app_is_a_message(real_data, tmp_path):
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


def test_out_of_memory_during_training_is_one_line(tiny_data, tmp_path, monkeypatch, capsys):
    out_of_memory_at_first_forward(monkeypatch)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:
        cli_main(["--no-ui", "train", "--device", "cpu", "--data-dir", str(tiny_data), "--out", str(out)])
    assert exit_.value.code == 1
    assert_one_memory_line(exit_.value.code, capsys.readouterr().err, out)


def test_out_of_memory_in_the_app_is_a_message(tiny_data, tmp_path, monkeypatch):
    out_of_memory_at_first_forward(monkeypatch)
    app = make_app(RunConfig(data_dir=str(tiny_data), device="cpu"), runs_dir=tmp_path / "runs", autostart=True)
    seen = asyncio.run(train_pane_texts(app, until=lambda _: False))
    assert_memory_message(seen, tmp_path / "runs")
    assert len(list((tmp_path / "runs").iterdir())) == 1  # the error came after Started: the run folder exists

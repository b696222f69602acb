"""The CUDA halves of fmtui, engine tier: training on a GPU; and what the GPU tests of every tier share.

Tests marked `cuda` skip without CUDA; the device check (scripts/gpu_check.py run) runs them on a lent GPU.
The app and command-line halves are in test_gpu_app.py and test_gpu_cli.py, each with CPU halves that take
the same paths without a GPU, so those run in every suite.
"""

from __future__ import annotations

import pytest
import torch

from fmtui import engine, graphs, models
from fmtui.config import RunConfig
from fmtui.data import load_dataset
from fmtui.events import Finished, Started

pytestmark = pytest.mark.engine
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (scripts/gpu_check.py runs it on a GPU)")
TOO_BIG = {"hidden": (4096,), "batch_size": 60000, "epochs": 1}
"""One 60,000-image batch through a 4096-wide layer: over 2 GB for the step, 60 MB for data and model."""
LEFT_FREE = 384 * 2**20
"""GPU memory left free when a test fills the rest: room for TOO_BIG's data and model, none for its step."""


def fill_gpu(leave: int) -> list:
    """Take all free GPU memory but `leave` bytes, in pieces of 1 GiB; keep the pieces to hold it.

    Self-contained (it imports torch itself): test_gpu_cli.py runs its source in a subprocess."""
    import torch

    torch.cuda.empty_cache()
    pieces = []
    while (free := torch.cuda.mem_get_info()[0]) > leave + 2**30:
        pieces.append(torch.empty(2**30, dtype=torch.uint8, device="cuda"))
    if free > leave:
        pieces.append(torch.empty(free - leave, dtype=torch.uint8, device="cuda"))
    return pieces


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


def finished(cfg: RunConfig, dataset) -> tuple[Started, Finished]:
    events = list(engine.train(cfg, dataset=dataset))
    assert events[-1].status == "completed", events[-1].message
    return events[0], events[-1]


@cuda
@pytest.mark.real_data
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
@pytest.mark.parametrize(
    "kw",
    [{}, {"momentum": 0.9}, {"optimizer": "adam", "lr": 1e-3}, {"model": "softmax", "norm": "zscore"}],
    ids=["sgd", "momentum", "adam", "softmax"],
)
def test_the_graphed_step_trains_as_the_eager_step_on_the_gpu(tiny_data, kw):
    """CUDA graphs replay the eager step's kernels: the same weights and metrics, graphed or not (Adam's
    capturable update may round differently from its host-side one, hence the tolerance)."""
    cfg = RunConfig(data_dir=str(tiny_data), epochs=2, batch_size=16, device="cuda", **kw)
    graphed_start, graphed = finished(cfg, None)
    eager_start, eager = finished(cfg.replace(graphs=False), None)
    assert (graphed_start.step, eager_start.step, eager_start.step_note) == ("graphed", "eager", "--no-graphs")
    for a, b in zip(graphed.history, eager.history, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-5) and a.test_accuracy == b.test_accuracy
    for p, q in zip(graphed.model.state_dict().values(), eager.model.state_dict().values(), strict=True):
        assert torch.allclose(p, q, rtol=1e-5, atol=1e-6)


@cuda
@pytest.mark.parametrize("kw", [{"momentum": 0.9}, {"optimizer": "adam", "lr": 1e-3}], ids=["momentum", "adam"])
def test_the_next_run_of_a_shape_replays_the_graphs_the_last_one_kept(tiny_data, kw):
    """The dashboard's second Start: the first run's captured graphs train the second (another seed and length)
    with no new capture, and it ends as its eager twin does; the first run's model stays its own."""
    graphs.forget()
    cfg = RunConfig(data_dir=str(tiny_data), epochs=2, batch_size=16, device="cuda", **kw)
    _, first = finished(cfg, None)
    kept, trained = graphs._kept["cuda"], [t.clone() for t in first.model.state_dict().values()]
    start, second = finished(cfg.replace(seed=1, epochs=3), None)
    assert graphs._kept["cuda"] is kept and start.step == "graphed"
    _, eager = finished(cfg.replace(seed=1, epochs=3, graphs=False), None)
    for a, b in zip(second.history, eager.history, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-5) and a.test_accuracy == b.test_accuracy
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(), trained, strict=True))
    graphs.forget()

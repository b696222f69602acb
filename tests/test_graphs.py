"""The graphed step's host side on the CPU: the functions a CUDA graph captures, run without capture,
train exactly as the eager loop (the capture itself is checked on a GPU by scripts/gpu_check.py)."""

from __future__ import annotations

import pytest
import torch

from fmtui import engine, graphs
from fmtui.batched import StackedStep
from fmtui.config import RunConfig
from fmtui.engine import EpochEnd, Finished, ModelStep, Started, place, prepare, run_steps
from fmtui.graphs import GraphedStep, why_eager
from fmtui.sweep import lecture_experiment

pytestmark = pytest.mark.engine


def tiny(tiny_data, **kw) -> RunConfig:
    # 600 training images in batches of 16: 37 full batches (one chunk of 32, five single steps) and one of 8
    base = dict(data_dir=str(tiny_data), epochs=2, batch_size=16, device="cpu", threads=1)
    return RunConfig(**{**base, **kw})


def events(at, step, **kw) -> list:
    return [ev for _, ev in run_steps(at, step, progress_interval=0.0, **kw)]


def metrics(evs) -> list[dict]:
    return [
        ev.metrics() | {"seconds": 0, "eval_seconds": 0, "samples_per_s": 0} for ev in evs if isinstance(ev, EpochEnd)
    ]


def weights(model) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


@pytest.mark.parametrize(
    "kw",
    [
        {},  # the lecture's MLP: plain SGD
        {"optimizer": "sgd", "momentum": 0.9, "nesterov": True},  # momentum buffers made by the warm-up
        {"optimizer": "adam", "lr": 1e-3},  # Adam's step count and moments
        {"batch_norm": True},  # BatchNorm's running statistics
        {"model": "softmax", "norm": "zscore", "weight_decay": 1e-3},
    ],
    ids=["sgd", "nesterov", "adam", "batchnorm", "softmax"],
)
def test_the_captured_functions_train_exactly_as_the_eager_step(tiny_data, kw):
    cfg = tiny(tiny_data, **kw)
    eager_p, graphed_p = prepare(cfg), prepare(cfg)
    eager = events(eager_p, ModelStep(eager_p))
    step = GraphedStep(ModelStep(graphed_p), graphed_p, capture=False)
    graphed = events(graphed_p, step)
    assert metrics(graphed) == metrics(eager) and len(metrics(eager)) == 2
    for a, b in zip(weights(graphed_p.model), weights(eager_p.model), strict=True):
        assert torch.equal(a, b)
    # every kind of batch was met: chunks, single steps and the short last batch
    assert step.chunk == 32 and set(step.replays) == {1, 32}
    assert [ev.step for ev in graphed if isinstance(ev, Started)] == ["graphed"]


def test_progress_stop_and_divergence_are_those_of_the_eager_step(tiny_data):
    stops = iter([False] * 3 + [True])
    cfg = tiny(tiny_data, epochs=3)
    p = prepare(cfg)
    evs = events(p, GraphedStep(ModelStep(p), p, capture=False, chunk=4), should_stop=lambda: next(stops))
    done = evs[-1]
    assert isinstance(done, Finished) and done.status == "stopped"  # stopped after 3 replays of 4 batches
    progress = [ev for ev in evs if type(ev).__name__ == "BatchProgress"]
    assert [ev.batch for ev in progress] == [4, 8, 12]

    cfg = tiny(tiny_data, norm="none", lr=100.0, hidden=(256, 256, 256), activation="gelu", epochs=1)
    eager_p, graphed_p = prepare(cfg), prepare(cfg)
    eager = events(eager_p, ModelStep(eager_p))
    graphed = events(graphed_p, GraphedStep(ModelStep(graphed_p), graphed_p, capture=False))
    assert eager[-1].status == graphed[-1].status == "diverged"
    assert eager[-1].message == graphed[-1].message


def test_the_stacked_sweep_step_graphs_the_same_way(tiny_data):
    configs = [c.replace(momentum=m) for c in lecture_experiment(tiny(tiny_data))[:4] for m in (0.0,)]
    configs[1] = configs[1].replace(momentum=0.5)
    eager_at, graphed_at = place(configs[0]), place(configs[0])
    eager = events(eager_at, StackedStep(configs, eager_at))
    step = StackedStep(configs, graphed_at)
    graphed = events(graphed_at, GraphedStep(step, graphed_at, capture=False))
    assert metrics(graphed) == metrics(eager)
    assert all(torch.equal(a, b) for a, b in zip(step.stack.params(), [*eager_at_params(eager)], strict=True))


def eager_at_params(evs) -> list[torch.Tensor]:
    """The stacked weights the eager run ended with, from its Finished models (copy by copy)."""
    models = [ev.model for ev in evs if isinstance(ev, Finished)]
    linears = [[m for m in model if isinstance(m, torch.nn.Linear)] for model in models]
    ws = [torch.stack([lin[i].weight.detach().T for lin in linears]) for i in range(len(linears[0]))]
    bs = [torch.stack([lin[i].bias.detach().view(1, -1) for lin in linears]) for i in range(len(linears[0]))]
    return [*ws, *bs]


def test_graphs_are_used_only_where_they_can_hold_the_step(tiny_data, monkeypatch):
    cfg = tiny(tiny_data)
    p = prepare(cfg)
    assert why_eager(p, ModelStep(p)) == "CUDA graphs need a CUDA device (this run is on cpu)"
    monkeypatch.setattr(p, "device", torch.device("cuda"))  # only the reasons are read, nothing runs
    assert why_eager(p, ModelStep(p)) is None
    for change, reason in [
        ({"graphs": False}, "--no-graphs"),
        ({"schedule": "cosine"}, "the cosine schedule changes the learning rate on the host every step"),
        ({"dropout": 0.2}, "dropout draws new random masks every step"),
    ]:
        monkeypatch.setattr(p, "config", cfg.replace(**change))
        assert why_eager(p, ModelStep(p)) == reason


def test_on_the_cpu_a_run_names_its_eager_step(tiny_data):
    evs = list(engine.train(tiny(tiny_data, epochs=1)))
    assert evs[0].step == "eager"


def test_a_failed_capture_falls_back_to_the_eager_step(tiny_data, monkeypatch):
    cfg = tiny(tiny_data)
    p = prepare(cfg)
    monkeypatch.setattr(graphs, "why_eager", lambda at, step: None)

    def broken(*a, **kw):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(graphs, "GraphedStep", broken)
    step = graphs.fastest(ModelStep(p), p)
    assert isinstance(step, ModelStep) and step.eager_reason.startswith("capture failed (RuntimeError: operation")


def test_a_graphed_run_checkpoints_its_epochs_like_an_eager_one(tiny_data):
    cfg = tiny(tiny_data, momentum=0.9)
    eager_p, graphed_p = prepare(cfg), prepare(cfg)
    ends = [ev for ev in events(graphed_p, GraphedStep(ModelStep(graphed_p), graphed_p, capture=False))]
    eager_ends = [ev for ev in events(eager_p, ModelStep(eager_p))]
    saved = [ev.checkpoint() for ev in ends if isinstance(ev, EpochEnd)]
    eager_saved = [ev.checkpoint() for ev in eager_ends if isinstance(ev, EpochEnd)]
    assert [c["epoch"] for c in saved] == [1, 2]
    for mine, theirs in zip(saved, eager_saved, strict=True):
        for a, b in zip(mine["model"].values(), theirs["model"].values(), strict=True):
            assert torch.equal(a, b)
        bufs = [s["momentum_buffer"] for s in mine["optimizer"]["state"].values()]
        assert all(torch.equal(a, s["momentum_buffer"]) for a, s in zip(bufs, theirs["optimizer"]["state"].values()))


# --- a graphed step kept for the next run of its shape (the dashboard's second Start) -----------------------


@pytest.fixture
def nothing_kept():
    graphs.forget()
    yield
    graphs.forget()


def run_kept(p, step) -> list:
    """A run's events through the graphed step it gets (kept or new), kept after it as the engine does."""
    evs = events(p, step)
    graphs.keep(step)
    return evs


@pytest.mark.parametrize(
    "kw",
    [
        {"momentum": 0.9, "nesterov": True},  # the last run's momentum buffers must start again from zero
        {"optimizer": "adam", "lr": 1e-3},  # and Adam's moments and step count
        {"batch_norm": True},  # the new run's running statistics, not the last run's
    ],
    ids=["nesterov", "adam", "batchnorm"],
)
def test_a_kept_graphed_step_trains_the_next_run_of_its_shape_as_its_own_would(tiny_data, nothing_kept, kw):
    first = tiny(tiny_data, **kw)
    p = prepare(first)
    kept = graphs.fastest(ModelStep(p), p, capture=False)
    run_kept(p, kept)

    second = first.replace(seed=7, epochs=3)  # another seed and length: the same graphs
    eager_p, graphed_p = prepare(second), prepare(second)
    eager = events(eager_p, ModelStep(eager_p))
    step = graphs.fastest(ModelStep(graphed_p), graphed_p, capture=False)
    assert step is kept  # adopted, not captured again
    graphed = events(graphed_p, step)
    assert metrics(graphed) == metrics(eager) and len(metrics(eager)) == 3
    assert [ev.config.seed for ev in graphed if isinstance(ev, Started)] == [7]
    for a, b in zip(weights(step.module(0)), weights(eager_p.model), strict=True):
        assert torch.equal(a, b)


def test_only_a_fresh_run_of_the_same_shape_adopts_a_kept_step(tiny_data, nothing_kept):
    cfg = tiny(tiny_data, epochs=1)
    p = prepare(cfg)
    kept = graphs.fastest(ModelStep(p), p, capture=False)
    run_kept(p, kept)

    other = prepare(cfg.replace(lr=0.05))  # a learning rate is baked into a single run's graph
    step = graphs.fastest(ModelStep(other), other, capture=False)
    assert isinstance(step, GraphedStep) and step is not kept
    assert graphs.fastest(ModelStep(p), p, capture=False) is not kept  # dropped: one kept step per device
    run_kept(other, step)

    resumed = prepare(cfg.replace(lr=0.05))  # a resumed run's state is what a graph must capture
    assert graphs.fastest(ModelStep(resumed), resumed, capture=False, fresh=False) is not step
    assert graphs.fastest(ModelStep(resumed), resumed, capture=False) is not step  # taken by the resumed run


def test_the_engine_keeps_the_step_of_a_run_that_ended_not_of_one_abandoned(tiny_data, nothing_kept, monkeypatch):
    cfg = tiny(tiny_data, epochs=1, momentum=0.9)
    eager = metrics(list(engine.train(cfg.replace(seed=3))))
    fastest = graphs.fastest
    monkeypatch.setattr(graphs, "fastest", lambda step, at, **kw: fastest(step, at, capture=False, **kw))

    run = engine.train(cfg)
    next(run)
    run.close()  # abandoned mid-run: its graphs are not trusted with the next one
    assert not graphs._kept
    first = list(engine.train(cfg))
    assert first[0].step == "graphed" and set(graphs._kept) == {"cpu"}
    kept, trained = graphs._kept["cpu"], weights(first[-1].model)
    second = list(engine.train(cfg.replace(seed=3)))
    assert graphs._kept["cpu"] is kept and metrics(second) == eager
    assert all(torch.equal(a, b) for a, b in zip(weights(first[-1].model), trained, strict=True))  # still its own


def test_a_kept_stacked_step_takes_the_next_groups_per_copy_values(tiny_data, nothing_kept):
    configs = lecture_experiment(tiny(tiny_data))[:4]  # two normalizations x two learning rates
    at = place(configs[0])
    kept = graphs.fastest(StackedStep(configs, at), at, capture=False)
    run_kept(at, kept)

    changed = [c.replace(lr=c.lr * 3, momentum=0.5, weight_decay=1e-4, seed=5) for c in reversed(configs)]
    eager_at, graphed_at = place(changed[0]), place(changed[0])
    eager = events(eager_at, StackedStep(changed, eager_at))
    step = graphs.fastest(StackedStep(changed, graphed_at), graphed_at, capture=False)
    assert step is kept
    graphed = events(graphed_at, step)
    assert metrics(graphed) == metrics(eager)
    assert all(torch.equal(a, b) for a, b in zip(step.inner.stack.params(), eager_at_params(eager), strict=True))


def test_a_kept_step_holds_no_memory_a_run_of_another_shape_needs(tiny_data, nothing_kept, monkeypatch):
    cfg = tiny(tiny_data, epochs=1)
    p = prepare(cfg)

    def kept_one() -> GraphedStep:
        step = graphs.fastest(ModelStep(p), p, capture=False)
        run_kept(p, step)
        return step

    kept = kept_one()
    graphs.release("cpu", cfg.replace(seed=3, epochs=9))  # what a graph may take in place: kept
    assert graphs._kept["cpu"] is kept
    graphs.release("cpu", cfg.replace(hidden=(32,)))  # another network: dropped before its memory is checked
    assert not graphs._kept
    kept_one()
    graphs.release("cpu", cfg.replace(lr=0.5))  # a single run's graph bakes its learning rate in
    assert not graphs._kept

    kept_one()
    graphs.fastest(ModelStep(p), p)  # an eager run (here: the CPU's reason): the kept step goes at once
    assert not graphs._kept

    kept = kept_one()
    monkeypatch.setattr(GraphedStep, "adopt", lambda self, fresh, at: 1 / 0)
    step = graphs.fastest(ModelStep(p), p, capture=False)  # a failed adoption: a capture of its own
    assert isinstance(step, GraphedStep) and step is not kept and not graphs._kept

    monkeypatch.undo()
    kept_one()
    from fmtui import warm
    from fmtui.data import norm_stats

    x = p.splits.x_train
    warm.normalized(x, p.stats, lambda *a: None)
    assert graphs._kept  # the normalization the kept step reads: nothing replaced
    warm.normalized(x, norm_stats("unit", x), lambda *a: None)
    assert not graphs._kept  # another one replaces the copy a kept step reads: it goes first

"""Stacked training of several configs at once gives the results of separate runs."""

import pytest
import torch

from fmtui import engine
from fmtui.batched import batch_groups, can_batch, train_batched
from fmtui.config import RunConfig
from fmtui.engine import BatchProgress, EpochEnd, Finished, Started

pytestmark = pytest.mark.engine


def grid(tiny_data, norms=("none", "unit", "zscore", "per-image"), **kw):
    base = RunConfig(data_dir=str(tiny_data), epochs=2, batch_size=32).replace(**kw)
    return [base.replace(norm=n, lr=lr) for n in norms for lr in (0.05, 1e-5)]


# tanh on raw 0..255 pixels saturates, and then float rounding (bmm vs mm) decides: MLPs use scaled inputs
@pytest.mark.parametrize(
    "kw",
    [
        dict(model="softmax"),
        dict(
            hidden=(32, 16),
            activation="tanh",
            momentum=0.9,
            weight_decay=1e-3,
            schedule="cosine",
            norms=("unit", "symmetric", "zscore", "per-image"),
        ),
    ],
)
def test_stacked_runs_equal_separate_runs(tiny_data, kw):
    configs = grid(tiny_data, **kw)
    assert can_batch(configs)
    finished = {i: ev for i, ev in train_batched(configs) if isinstance(ev, Finished)}
    for i, cfg in enumerate(configs):
        alone = list(engine.train(cfg))[-1]
        together = finished[i]
        assert together.status == alone.status == "completed"
        for a, b in zip(alone.history, together.history):
            assert b.train_loss == pytest.approx(a.train_loss, rel=1e-4, abs=1e-5)
            assert b.test_loss == pytest.approx(a.test_loss, rel=1e-4, abs=1e-5)
            assert abs(b.test_accuracy - a.test_accuracy) <= 1.0
        for (name, p), q in zip(alone.model.state_dict().items(), together.model.state_dict().values()):
            assert torch.allclose(p.cpu(), q.cpu(), rtol=1e-3, atol=1e-4), name


def test_a_diverging_copy_leaves_the_others_alone(tiny_data):
    base = RunConfig(
        data_dir=str(tiny_data), norm="none", hidden=(256, 256, 256), activation="gelu", epochs=2, batch_size=16
    )
    configs = [base.replace(lr=100.0), base.replace(lr=0.001, norm="zscore")]
    events = list(train_batched(configs))
    done = {i: ev for i, ev in events if isinstance(ev, Finished)}
    assert done[0].status == "diverged" and done[0].message.startswith("diverged at epoch 1, batch ")
    assert done[1].status == "completed" and len(done[1].history) == 2
    assert not [ev for i, ev in events if i == 0 and isinstance(ev, EpochEnd)]
    alone = list(engine.train(configs[1]))[-1]
    assert done[1].history[-1].train_loss == pytest.approx(alone.history[-1].train_loss, rel=1e-4)


def test_groups_split_by_shape_and_leave_the_rest_alone(tiny_data):
    configs = grid(tiny_data, model="softmax")[:2] + grid(tiny_data)[:2] + [RunConfig(optimizer="adam")]
    assert batch_groups(configs) == [[0, 1], [2, 3], [4]]
    assert not can_batch([RunConfig(), RunConfig(dropout=0.5)])


def test_stacked_and_separate_runs_share_the_schedule_and_the_evaluation(tiny_data):
    base = RunConfig(data_dir=str(tiny_data), model="softmax", epochs=3, batch_size=32, schedule="cosine")
    configs = [base.replace(norm=n, lr=lr) for n in ("zscore", "unit") for lr in (0.005, 0.05)]
    finished = {i: ev for i, ev in train_batched(configs) if isinstance(ev, Finished)}
    for i, cfg in enumerate(configs):
        alone, together = list(engine.train(cfg))[-1].history, finished[i].history
        assert len(together) == len(alone) == 3
        assert [e.lr for e in together] == [e.lr for e in alone]  # the same schedule, read at the same step
        assert alone[-1].lr == 0.0 and all(e.eval_seconds > 0 for e in together)
        for a, b in zip(alone, together):
            assert b.train_loss == pytest.approx(a.train_loss, rel=1e-4)
            assert b.test_loss == pytest.approx(a.test_loss, rel=1e-4)
            assert b.train_accuracy == pytest.approx(a.train_accuracy, abs=0.5)
            assert b.test_accuracy == pytest.approx(a.test_accuracy, abs=0.5)


def test_stacked_runs_report_like_single_runs(tiny_data):
    # on the CPU: the eager step reports every batch at interval 0 (a graphed one, every replay)
    configs = grid(tiny_data, norms=("unit", "zscore"), model="softmax", device="cpu")
    events = list(train_batched(configs, progress_interval=0.0))
    for i in range(len(configs)):
        mine = [ev for j, ev in events if j == i]
        assert isinstance(mine[0], Started) and isinstance(mine[-1], Finished)
        assert [ev.epoch for ev in mine if isinstance(ev, EpochEnd)] == [1, 2]
        assert sum(isinstance(ev, BatchProgress) for ev in mine) == 2 * 19  # every batch, as a single run at 0 s
    done = [ev for _, ev in events if isinstance(ev, Finished)]
    assert all(
        ev.message.startswith("finished 2 epochs in ") and ev.message.endswith("(4 runs at once)") for ev in done
    )


def test_a_stop_finishes_every_copy(tiny_data):
    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return calls["n"] > 19 + 3

    done = [ev for _, ev in train_batched(grid(tiny_data, model="softmax", device="cpu"), should_stop=should_stop)]
    done = [ev for ev in done if isinstance(ev, Finished)]
    assert len(done) == 8 and {ev.status for ev in done} == {"stopped"}
    assert all(len(ev.history) == 1 and "after 1 complete epoch" in ev.message for ev in done)

"""The training engine on small IDX data: events, stopping, divergence, predictions, models."""

import math

import pytest
import torch

from fmtui import engine, models
from fmtui.config import ConfigError, RunConfig
from fmtui.engine import BatchProgress, EpochEnd, Finished, Started

pytestmark = pytest.mark.engine


def run(cfg, **kw):
    return list(engine.train(cfg, **kw))


def tiny(tiny_data, **kw):
    return RunConfig(data_dir=str(tiny_data), epochs=2, batch_size=32, lr=0.05).replace(**kw)


def test_events_in_order_with_metrics(tiny_data):
    events = run(tiny(tiny_data), progress_interval=0.0)
    assert isinstance(events[0], Started) and isinstance(events[-1], Finished)
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in epochs] == [1, 2]
    assert any(isinstance(e, BatchProgress) for e in events)
    start, done = events[0], events[-1]
    assert start.params == 784 * 256 + 256 + 256 * 10 + 10 and start.batches_per_epoch == 19
    assert done.status == "completed" and done.history == epochs
    assert epochs[-1].test_accuracy > 60 and epochs[-1].train_loss < epochs[0].train_loss
    assert epochs[-1].seconds > 0 and epochs[-1].samples_per_s > 0


def test_progress_is_throttled(tiny_data):
    """Slow progress events come after the run's first batch (a warm Start shows progress after one batch, not
    one interval), then only at the end of each epoch (so that its loss curve is complete)."""
    events = run(tiny(tiny_data), progress_interval=3600)
    assert [(e.epoch, e.batch) for e in events if isinstance(e, BatchProgress)] == [(1, 1), (1, 19), (2, 19)]


def curve(events) -> list[tuple[int, float]]:
    return [point for e in events if isinstance(e, BatchProgress) for point in e.losses]


def test_the_loss_curve_is_cut_by_steps_and_the_same_however_often_progress_comes(tiny_data, monkeypatch):
    """Real per-step losses, averaged over fixed runs of steps: one event per step or one per epoch, same curve."""
    monkeypatch.setattr(engine, "LOSS_POINTS", 10)  # 38 steps -> a point every 4 steps
    fast, slow = run(tiny(tiny_data), progress_interval=0.0), run(tiny(tiny_data), progress_interval=3600)
    assert len([e for e in fast if isinstance(e, BatchProgress)]) == 38
    assert curve(fast) == curve(slow)
    assert [step for step, _ in curve(slow)] == [4, 8, 12, 16, 19, 23, 27, 31, 35, 38]  # each epoch ends a point
    assert {e.loss_every for e in slow if isinstance(e, BatchProgress)} == {4}
    losses = [loss for _, loss in curve(slow)]
    epochs = [e for e in slow if isinstance(e, EpochEnd)]
    for i, epoch in enumerate(epochs):  # the points are means of the very batch losses the epoch's loss averages
        points = losses[5 * i : 5 * i + 5]
        assert sum(p * n for p, n in zip(points, (4, 4, 4, 4, 3))) / 19 == pytest.approx(epoch.train_loss, rel=1e-5)


def test_every_step_is_a_point_when_a_run_is_short(tiny_data):
    events = run(tiny(tiny_data), progress_interval=0.05)
    assert [step for step, _ in curve(events)] == list(range(1, 39))
    assert len({loss for _, loss in curve(events)}) == 38  # each step's own loss, not a mean over time


def test_results_give_the_error_browser_what_it_needs(tiny_data):
    res = run(tiny(tiny_data))[-1].results
    assert res.probs.shape == (200, 10) and torch.allclose(res.probs.sum(1), torch.ones(200), atol=1e-5)
    assert int(res.confusion.sum()) == 200
    wrong = res.mislabeled()
    assert len(wrong) == int((res.preds != res.labels).sum()) > 0
    conf = res.confidence[wrong]
    assert torch.all(conf[:-1] >= conf[1:])  # most confident mistakes first
    t, p = int(res.labels[wrong[0]]), int(res.preds[wrong[0]])
    cell = res.mislabeled(true=t, pred=p)
    assert wrong[0] in cell and len(cell) == int(res.confusion[t, p])
    assert res.top_k(wrong[0])[0][0] == p
    assert res.per_class_accuracy[t] == pytest.approx(100 * int(res.confusion[t, t]) / int(res.confusion[t].sum()))


def test_stop_between_batches_keeps_finished_epochs(tiny_data):
    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return calls["n"] > 19 + 5  # during the second epoch

    # the eager step polls between batches (a graphed one on a GPU polls between its replays: fmtui.graphs)
    events = run(tiny(tiny_data, epochs=3, device="cpu"), should_stop=should_stop)
    done = events[-1]
    assert done.status == "stopped" and len(done.history) == 1 and "after 1 complete epoch" in done.message
    assert done.results is not None


def test_nonfinite_loss_reports_where_it_diverged(tiny_data):
    cfg = RunConfig(
        data_dir=str(tiny_data),
        norm="none",
        lr=100.0,
        hidden=(256, 256, 256),
        activation="gelu",
        epochs=3,
        batch_size=16,
    )
    events = run(cfg)
    done = events[-1]
    assert done.status == "diverged"
    assert done.message.startswith("diverged at epoch 1, batch ")
    batch = int(done.message.split("batch ")[1].split(":")[0])
    assert 1 <= batch <= 38
    assert not any(isinstance(e, EpochEnd) for e in events)  # no epoch finished with a finite loss
    points = curve(events)  # the curve up to the divergence is reported, its end not finite
    assert [step for step, _ in points] == list(range(1, len(points) + 1)) and len(points) >= batch
    assert math.isfinite(points[0][1]) and not math.isfinite(points[batch - 1][1])


def test_same_seed_same_result(tiny_data):
    a = run(tiny(tiny_data))[-1].history[-1]
    b = run(tiny(tiny_data))[-1].history[-1]
    assert a.train_loss == b.train_loss and a.test_accuracy == b.test_accuracy


@pytest.mark.parametrize(
    "changes",
    [
        dict(model="softmax", norm="zscore"),
        dict(model="cnn", hidden=(16,)),
        dict(hidden=(32, 16), activation="gelu", dropout=0.1, batch_norm=True),
        dict(optimizer="adamw", lr=1e-3, weight_decay=0.01, schedule="cosine"),
        dict(optimizer="sgd", momentum=0.9, nesterov=True),
        dict(norm="per-image", val_split=0.1),
    ],
)
def test_every_model_optimizer_and_norm_learns_above_chance(tiny_data, changes):
    done = run(tiny(tiny_data, **changes).replace(epochs=1))[-1]
    assert done.status == "completed"
    epoch = done.history[0]
    # 10 classes: chance is 10% and a loss of ln 10 = 2.30; one epoch reaches 75-91% here (seeds 0-2)
    assert epoch.test_accuracy > 50 and epoch.test_loss < math.log(10)


def test_validation_metrics_when_holding_out(tiny_data):
    ep = run(tiny(tiny_data, val_split=0.25))[-1].history[-1]
    assert ep.val_accuracy is not None and ep.val_loss is not None


def test_schedule_anneals_learning_rate(tiny_data):
    hist = run(tiny(tiny_data, schedule="cosine"))[-1].history
    assert hist[-1].lr < 1e-6 < hist[0].lr


def test_bad_config_and_unavailable_device(tiny_data):
    with pytest.raises(ConfigError):
        run(tiny(tiny_data, lr=-1.0))
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            run(tiny(tiny_data, device="cuda"))


def test_model_shapes_and_parameter_counts():
    shape = (1, 28, 28)
    assert models.param_count_for(RunConfig(model="softmax"), shape, 10) == 7850
    assert models.param_count_for(RunConfig(hidden=(512, 256)), shape, 10) == 784 * 512 + 512 + 512 * 256 + 256 + 2570
    for name in ("softmax", "mlp", "cnn"):
        for shp in ((1, 28, 28), (3, 32, 32)):
            out = models.build_model(RunConfig(model=name), shp, 10)(torch.zeros(2, *shp))
            assert out.shape == (2, 10)
    assert models.describe(RunConfig(), shape, 10) == "784-256-10 relu"


def test_evaluate_saved_matches_training(tiny_data, tmp_path):
    done = run(tiny(tiny_data))[-1]
    torch.save(done.model.state_dict(), tmp_path / "m.pt")
    res, _ = engine.evaluate_saved(tiny(tiny_data), tmp_path / "m.pt")
    assert res.accuracy == done.history[-1].test_accuracy


def test_evaluate_saved_with_zscore_takes_the_statistics_from_the_training_part(tiny_data, tmp_path):
    """With a validation split, zscore's mean/std come from the training part only, at training and at re-evaluation.

    Accuracy alone cannot tell (statistics of the whole split give the same 91% here); loss and probabilities can."""
    cfg = tiny(tiny_data, norm="zscore", val_split=0.5)
    done = run(cfg)[-1]
    torch.save(done.model.state_dict(), tmp_path / "m.pt")
    res, _ = engine.evaluate_saved(cfg, tmp_path / "m.pt")
    assert res.accuracy == done.history[-1].test_accuracy
    assert res.loss == pytest.approx(done.history[-1].test_loss, rel=1e-6)
    assert torch.allclose(res.probs, done.results.probs, atol=1e-6)


@pytest.mark.parametrize("cores,threads", [(1, 1), (2, 1), (3, 1), (4, 2), (6, 3), (8, 4), (16, 8), (17, 8), (64, 8)])
@pytest.mark.parametrize("affinity", [True, False], ids=["sched_getaffinity", "cpu_count"])
def test_default_threads_policy(monkeypatch, cores, threads, affinity):
    """1 thread on up to 2 cores, else half the cores, at most 8; counting the cores this process may use."""
    if affinity:
        monkeypatch.setattr(engine.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
        monkeypatch.setattr(engine.os, "cpu_count", lambda: 1000)  # more cores than the process may use
    else:
        monkeypatch.delattr(engine.os, "sched_getaffinity", raising=False)
        monkeypatch.setattr(engine.os, "cpu_count", lambda: cores)
    assert engine.default_threads() == threads


def test_only_the_last_epoch_keeps_its_predictions(tiny_data):
    events = run(tiny(tiny_data, epochs=3))
    epochs, done = [e for e in events if isinstance(e, EpochEnd)], events[-1]
    assert all(e.results is not None for e in epochs)  # each epoch's predictions travel with its event
    assert all(e.results is None for e in done.history)  # but the history holds metrics only
    assert done.results is epochs[-1].results
    assert [e.metrics() for e in done.history] == [e.metrics() for e in epochs]


@pytest.mark.parametrize("changes,units", [(dict(model="softmax"), 10), (dict(hidden=(32, 16)), 32)])
def test_each_epoch_carries_what_the_model_learned(tiny_data, changes, units):
    events = run(tiny(tiny_data, **changes))
    epochs, done = [e for e in events if isinstance(e, EpochEnd)], events[-1]
    first, last = epochs[0].weights, epochs[-1].weights
    assert first.inputs.shape == (units, 784) and first.shape == (1, 28, 28)
    linears = [m for m in done.model if isinstance(m, torch.nn.Linear)]
    assert (last.inputs == linears[0].weight.detach().numpy()).all()  # the end of the last epoch
    assert not (first.inputs == last.inputs).all()  # a copy of its epoch, not the live weights
    if changes["model" if "model" in changes else "hidden"] == "softmax":
        assert last.outputs is None and last.per_class
    else:  # each first-layer unit's weight into each class, through the second layer (as if linear)
        expected = linears[2].weight.detach().double() @ linears[1].weight.detach().double()
        assert last.outputs.shape == (10, 32) and torch.allclose(torch.from_numpy(last.outputs).double(), expected)
    assert all(e.weights is None for e in done.history)


def test_a_cnn_has_no_weight_pictures(tiny_data):
    events = run(tiny(tiny_data, model="cnn", hidden=(16,), epochs=1))
    assert [e.weights for e in events if isinstance(e, EpochEnd)] == [None]

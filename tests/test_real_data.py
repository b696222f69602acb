"""On the real Fashion-MNIST files: the lecture's numbers hold (accuracy, and what normalization does)."""

import json

import pytest

from fmtui import engine
from fmtui.config import RunConfig
from fmtui.data import load_dataset
from fmtui.lrfind import lr_find
from fmtui.recorder import RunRecorder

pytestmark = [pytest.mark.engine, pytest.mark.real_data]


def final(cfg):
    done = list(engine.train(cfg))[-1]
    assert done.status == "completed", done.message
    return done.history


def test_official_files_load_and_verify(real_files, real_data):
    for name, first_label in (("fashion-mnist", 9), ("mnist", 5)):
        ds = load_dataset(name, real_files(name))
        assert ds.verified and ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
        assert int(ds.y_train[0]) == first_label and sum(ds.class_counts("test")) == 10000
    assert load_dataset("fashion-mnist", real_data).class_counts("test") == [1000] * 10


def test_lecture_step_by_step_mlp_reaches_its_accuracy(real_data):
    """MLP 784-256-10, Normalize(0.5, 0.5), batch 64, SGD lr 0.01, 5 epochs: the lecture gets 83.92% test."""
    history = final(RunConfig(data_dir=str(real_data)))
    last = history[-1]
    assert last.test_accuracy >= 83.5
    assert 83.0 <= last.train_accuracy <= 88.0  # the lecture: 85.13%
    assert history[0].train_loss > history[-1].train_loss


def test_softmax_without_normalization_blows_up_and_zscore_does_not(real_data):
    """The lecture's charts: raw pixels at lr 0.01 give test losses in the thousands; z-score stays below 1."""
    base = RunConfig(data_dir=str(real_data), model="softmax", lr=0.01, epochs=2)
    raw = final(base.replace(norm="none"))
    zscore = final(base.replace(norm="zscore"))
    assert min(e.test_loss for e in raw) >= 100
    assert max(e.test_loss for e in zscore) < 1
    assert zscore[-1].test_accuracy > raw[-1].test_accuracy


def test_health_of_the_lectures_raw_pixel_softmax_is_exploding_and_of_zscore_ok(real_data, tmp_path):
    """The lecture's softmax at lr 0.01, 2 epochs: summary.json says exploding without normalization (a train loss
    in the thousands, ~800x chance level) with a hint from the run's own pixels, and ok with z-score."""
    base = RunConfig(data_dir=str(real_data), model="softmax", lr=0.01, epochs=2)
    health = {}
    for norm in ("none", "zscore"):
        recorder = RunRecorder(lambda cfg, norm=norm: tmp_path / norm)
        for event in engine.train(base.replace(norm=norm)):
            recorder.handle(event)
        health[norm] = json.loads((tmp_path / norm / "summary.json").read_text())["health"]
    assert health["none"]["state"] == "exploding"
    assert "x chance level (ln 10 = 2.30)" in health["none"]["hint"]
    assert "inputs unnormalized (pixel mean 72.9, std 90.0) -> try --norm zscore" in health["none"]["hint"]
    assert health["zscore"] == {"state": "ok", "hint": ""}


def test_lr_finder_suggests_a_usable_rate_for_the_lecture_mlp(real_data):
    """The lecture's MLP trains at lr 0.01; the finder's suggestion must land within a decade or two of it."""
    done = list(lr_find(RunConfig(data_dir=str(real_data))))[-1]
    assert done.status == "completed" and "blew up" in done.message
    assert 1e-3 <= done.suggested_lr <= 1 and 1e-3 <= done.min_over_10 <= 1


def test_lr_finder_wants_orders_of_magnitude_less_for_raw_pixels_than_for_zscore(real_data):
    """The lecture's lesson, measured: softmax on raw pixels (0..255) needs a learning rate at least 100x lower
    than on z-scored pixels, by the steepest descent and by the minimum / 10 alike."""
    base = RunConfig(data_dir=str(real_data), model="softmax")
    raw, zscore = (list(lr_find(base.replace(norm=norm)))[-1] for norm in ("none", "zscore"))
    assert zscore.suggested_lr >= 100 * raw.suggested_lr
    assert zscore.min_over_10 >= 100 * raw.min_over_10

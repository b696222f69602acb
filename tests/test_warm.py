"""Warm re-runs: the engine keeps a placed dataset (and its statistics) for the next run of the same shape."""

from __future__ import annotations

import gzip

import pytest
import torch
from conftest import FILES, idx_bytes, synthetic_split

from fmtui import data, engine, warm
from fmtui.config import RunConfig
from fmtui.events import EpochEnd

pytestmark = pytest.mark.engine


@pytest.fixture(autouse=True)
def _cold():
    warm.forget()
    yield
    warm.forget()


def config(tiny_data, **changes) -> RunConfig:
    fields = dict(model="softmax", epochs=1, batch_size=100, data_dir=str(tiny_data), device="cpu")
    return RunConfig(**(fields | changes))


def test_a_second_run_of_the_same_shape_reuses_the_placed_data_and_its_statistics(tiny_data, monkeypatch):
    calls = []
    monkeypatch.setattr(warm, "norm_stats", lambda norm, x: calls.append(norm) or data.norm_stats(norm, x))
    cfg = config(tiny_data, norm="zscore", val_split=0.1)
    first = engine.prepare(cfg, data.load_dataset("fashion-mnist", tiny_data))
    second = engine.prepare(cfg.replace(lr=0.1, model="mlp"), data.load_dataset("fashion-mnist", tiny_data))
    assert second.splits is first.splits and second.stats == first.stats
    assert calls == ["zscore"]  # measured over the training images once
    engine.prepare(cfg.replace(norm="unit"))
    assert calls == ["zscore", "unit"]


def test_what_changes_the_data_gets_its_own_entry(tiny_data):
    cfg = config(tiny_data, val_split=0.1)
    base = engine.place(cfg).splits
    assert engine.place(cfg.replace(seed=1)).splits is not base  # another validation split
    assert engine.place(cfg.replace(val_split=0.2)).splits is not base
    assert engine.place(cfg).splits is not base  # LRU of 2: the first entry went out
    assert len(warm._entries) == warm.MAX_ENTRIES == 2


def test_without_a_validation_split_another_seed_trains_on_the_same_placed_data(tiny_data):
    cfg = config(tiny_data, val_split=0.0)
    base = engine.place(cfg).splits
    assert engine.place(cfg.replace(seed=5)).splits is base  # the seed draws only a validation split


def test_a_changed_file_is_a_new_entry_never_stale_data(tiny_data):
    before = engine.place(config(tiny_data)).splits
    xtr, ytr = synthetic_split(300, seed=9)
    for name, array in ((FILES[0], xtr), (FILES[1], ytr)):
        with gzip.open(tiny_data / name, "wb") as f:
            f.write(idx_bytes(array))
    after = engine.place(config(tiny_data)).splits
    assert after is not before and len(after.y_train) == 300
    assert torch.equal(after.x_train[:, 0], torch.from_numpy(xtr))


def test_a_dataset_made_in_memory_is_never_kept(tiny_data):
    ds = data.load_dataset("fashion-mnist", tiny_data)
    ds.source = None
    assert engine.place(config(tiny_data), ds).splits is not engine.place(config(tiny_data), ds).splits
    assert not warm._entries


def test_a_run_on_warm_data_trains_exactly_as_a_cold_one(tiny_data):
    cfg = config(tiny_data, norm="zscore", val_split=0.1, epochs=2)

    def metrics() -> list[dict]:
        rows = [ev.metrics() for ev in engine.train(cfg) if isinstance(ev, EpochEnd)]
        return [{k: v for k, v in row.items() if "second" not in k and k != "samples_per_s"} for row in rows]  # timings

    cold = metrics()
    assert warm._entries  # the data stayed
    assert metrics() == cold  # the shared tensors were not changed by the first run
    warm.forget()
    assert metrics() == cold


def test_one_normalized_copy_per_entry_for_the_latest_normalization(tiny_data):
    x = engine.place(config(tiny_data)).splits.x_train
    made = []

    def make(x_train, stats):
        made.append(stats.norm)
        return data.normalize(x_train, stats)

    unit, sym = data.norm_stats("unit", x), data.norm_stats("symmetric", x)
    first = warm.normalized(x, unit, make)
    assert warm.normalized(x, unit, make) is first and made == ["unit"]
    warm.normalized(x, sym, make)
    assert made == ["unit", "symmetric"]
    (entry,) = warm._entries.values()
    assert list(entry.normalized) == [sym]  # the unit copy was let go

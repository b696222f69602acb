"""Data kept warm between runs in one process: a dataset placed on its device, its normalization statistics
and (on a GPU) its normalized training images, for the next run of the same shape.

The dashboard trains run after run in one process; each Start used to move the dataset to the device again,
measure zscore's statistics over 47 million pixels again and, on a GPU, normalize the training set again.
`fmtui.engine.place` and `prepare` ask here first. An entry is keyed by what determines its tensors: the
dataset's source (its files and their stat stamps: a changed file is another key), the device, the
validation split and the seed that draws it (when there is one). At most MAX_ENTRIES entries are kept
(least recently used first out), and one per GPU, so memory stays bounded (placing another dataset on a
GPU also ends the graphed step kept there, fmtui.graphs.keep: it holds the data it was captured on). On a
GPU an entry of Fashion-MNIST is 47 MB of uint8 images, plus 188 MB for a normalized float copy; on the CPU
the images are the cache file's mapping. The tensors are shared by the runs that use them and never
written to.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import torch

from fmtui import graphs
from fmtui.data import Dataset, DeviceSplits, norm_stats, to_device
from fmtui.events import NormStats

MAX_ENTRIES = 2
"""Placed datasets kept (e.g. Fashion-MNIST with and without a validation split, or two datasets)."""


@dataclass
class Entry:
    """One placed dataset and what was computed from it."""

    splits: DeviceSplits
    stats: dict[str, NormStats] = field(default_factory=dict)
    """Normalization name -> its statistics over splits.x_train."""
    normalized: dict[NormStats, torch.Tensor] = field(default_factory=dict)
    """The training images normalized once (on a GPU), for the last normalization asked for."""


_entries: OrderedDict[tuple, Entry] = OrderedDict()
_lock = threading.Lock()  # the dashboard's Data pane and its training worker may ask at the same moment


def splits(ds: Dataset, device: torch.device, val_split: float, seed: int) -> DeviceSplits:
    """`fmtui.data.to_device(ds, device, val_split, seed)`, kept for the next run with the same key; a
    dataset made in memory (no source) is placed afresh every time."""
    if ds.source is None:
        return to_device(ds, device, val_split, seed)
    key = (ds.source, str(device), val_split, seed if val_split > 0 else 0)  # the seed draws only the split
    with _lock:
        entry = _entries.get(key)
        if entry is not None:
            _entries.move_to_end(key)
            return entry.splits
    if device.type == "cuda":  # one dataset per GPU: its memory is the scarce kind, free it before placing
        with _lock:
            for other in [k for k in _entries if k[1] == key[1]]:
                del _entries[other]
        graphs.forget(str(device))  # a kept graphed step holds the data it was captured on
    placed = to_device(ds, device, val_split, seed)
    with _lock:
        _entries[key] = Entry(placed)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return placed


def stats(norm: str, x_train: torch.Tensor) -> NormStats:
    """`fmtui.data.norm_stats(norm, x_train)`, kept with x_train's entry (zscore reads every pixel)."""
    entry = _entry_of(x_train)
    if entry is None:
        return norm_stats(norm, x_train)
    if norm not in entry.stats:
        entry.stats[norm] = norm_stats(norm, x_train)
    return entry.stats[norm]


def normalized(x_train: torch.Tensor, stats: NormStats, make) -> torch.Tensor | None:
    """`make(x_train, stats)` (the training images normalized once, or None), kept with x_train's entry for
    the latest normalization only: a float copy is four times the images."""
    entry = _entry_of(x_train)
    if entry is None:
        return make(x_train, stats)
    if stats not in entry.normalized:
        if entry.normalized:  # a graphed step kept for the last normalization holds its copy: not two at a time
            graphs.forget()
        entry.normalized.clear()  # before the new copy is made: at most one copy at a time
        entry.normalized[stats] = make(x_train, stats)
    return entry.normalized[stats]


def forget() -> None:
    """Drop every entry (their device memory is freed once no run holds the tensors)."""
    with _lock:
        _entries.clear()
    graphs.forget()


def _entry_of(x_train: torch.Tensor) -> Entry | None:
    with _lock:
        return next((e for e in _entries.values() if e.splits.x_train is x_train), None)

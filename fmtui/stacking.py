"""Stacked or one after another: which way a sweep trains a group of runs that could be stacked, by a rule
measured on the devices fmtui runs on (benchmarks/stacking.py; BENCHMARKS.md, "Stacked or sequential").

Stacking (fmtui.batched) turns K runs into one model of K copies. On a GPU a small model's step is bound by
kernel launches, and K copies cost little more than one: the lecture's 8-run sweep took 1.41x one run on an
H200, against 7.17x one after another. On a CPU every copy's arithmetic is still done, and the stacked
step (one normalized copy of the batch per run, batched matmuls) only paid for softmax regression at small
batches, where the per-step overhead of 8 separate runs outweighs it; from batch 128 on, and for the MLP at
almost every batch size, 8 plain runs one after another were faster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fmtui.config import RunConfig

CPU_MAX_BATCH = {"softmax": 64}
"""The largest batch at which stacking was measured faster than one run after another on a CPU, per model
(absent: at no batch size). The lecture's 8-run sweep, 1 epoch, whole sweep wall time, stacked / sequential,
on a 2-core CPU with 1 thread shared with other work (BENCHMARKS.md, "Stacked or sequential"):

- softmax: 0.81 and 0.66 at batch 32; 0.77 at 64 (1.09 in the run under heavier load); 1.28 to 1.31 at 128;
  1.38, 1.62, 1.63 at 256, 512, 1024.
- MLP 784-256-10: slower stacked at every batch size but one (1.24 to 2.0 at 32 and 64, 0.92 at 128, 1.10
  to 1.16 at 256 to 1024): an MLP sweep on a CPU trains one run after another.
"""


def pays(device_type: str, batch_size: int, model: str, copies: int) -> bool:
    """Whether `copies` runs of `model` at `batch_size` on a device of this type train faster stacked."""
    if copies < 2:
        return False
    if device_type == "cuda":
        return True
    if device_type == "cpu":
        return batch_size <= CPU_MAX_BATCH.get(model, 0)
    return False  # not measured (Apple MPS): each run alone, as a single run trains


def groups(
    configs: list[RunConfig], stacked: bool | None, device_type: Callable[[str], str] | None = None
) -> list[list[int]]:
    """Indices of configs in training groups: stacked where they can be (`stacked=True`), never (`False`), or
    where they can be and the rule says it pays (`None`, the default). `device_type` maps a config's device
    option to a device type (fmtui.engine.resolve_device's, which imports torch, unless given)."""
    singles = [[i] for i in range(len(configs))]
    if stacked is False:
        return singles
    from fmtui.batched import batch_groups

    grouped = batch_groups(configs)
    if stacked:
        return grouped
    if device_type is None:
        from fmtui.engine import resolve_device

        def device_type(name: str) -> str:
            return resolve_device(name).type

    out: list[list[int]] = []
    for group in grouped:
        cfg = configs[group[0]]
        if pays(device_type(cfg.device), cfg.batch_size, cfg.model, len(group)):
            out.append(group)
        else:
            out.extend([i] for i in group)
    return out

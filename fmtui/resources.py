"""What a run will take from its machine, checked before anything is allocated: memory and CPU threads.

`--hidden 65536,65536` used to pass validation and die in the allocator (4.3 G parameters: 17 GB for one
weight matrix); `--threads 999` ran 45x slower than 1 thread on 2 cores. `check_memory` estimates what a run
keeps on its device (weights, gradients, optimizer state, the activations of one batch, and the dataset on a
GPU) and refuses a run that cannot fit in what the device has free, with one line; threads are capped at the
cores this process may use (`usable_threads`), and the CLI notes it. Only the standard library at import time:
the CLI imports this module before torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fmtui.config import ConfigError, RunConfig
from fmtui.registry import model_spec

if TYPE_CHECKING:
    import torch

EVAL_BATCH = 4096  # fmtui.engine.EVAL_BATCH (not imported: the engine imports torch)
FLOAT = 4  # bytes of a float32
BACKWARD = 2  # backward keeps a gradient the size of each saved activation, at worst all at once


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), else the machine's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def usable_threads(requested: int) -> int:
    """--threads N capped at the available cores: more threads than cores only wait for each other (measured:
    999 threads on 2 cores ran 45x slower than 1)."""
    return min(requested, available_cores())


@dataclass(frozen=True)
class Estimate:
    """Bytes a run keeps on its device while it trains (all copies of a stacked sweep group together)."""

    params: int
    """Parameters of one copy."""
    model: int
    """Weights, their gradients and the optimizer's state."""
    activations: int
    """One training batch forward and backward, or one evaluation batch, whichever is larger."""
    data: int
    """The dataset moved to the device (0 on the CPU: it is already in memory when this is checked)."""

    @property
    def total(self) -> int:
        return self.model + self.activations + self.data


def estimate(
    cfg: RunConfig, shape: tuple[int, int, int], n_classes: int, images: tuple[int, int], device: str, copies: int = 1
) -> Estimate:
    """What `copies` stacked runs of cfg keep on `device` ("cpu", "cuda", ...), for a dataset of
    images = (training, test) images of `shape`."""
    from fmtui.models import param_count_for  # counts on torch's meta device: nothing is allocated

    params = param_count_for(cfg, shape, n_classes)
    state = {"adam": 2, "adamw": 2}.get(cfg.optimizer, 1 if cfg.momentum > 0 else 0)  # momentum, Adam's moments
    model = copies * params * FLOAT * (2 + state)
    train, evaluation = model_spec(cfg.model).activations(cfg, shape, n_classes)  # the model's own estimate
    batch, eval_batch = min(cfg.batch_size, images[0]), min(EVAL_BATCH, max(images))
    activations = copies * FLOAT * max(BACKWARD * batch * train, eval_batch * evaluation)
    c, h, w = shape
    data = 0 if device == "cpu" else sum(images) * (c * h * w + 8)  # uint8 pixels and an int64 label each
    return Estimate(params, model, activations, data)


def free_memory(device: torch.device) -> int | None:
    """Bytes the run may still take on `device`; None where this is not known (MPS, non-Linux CPUs)."""
    if device.type == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)  # + torch's cache
    if device.type == "cpu":
        return _ram_available()
    return None


def _ram_available() -> int | None:
    """MemAvailable of /proc/meminfo, lowered to what a cgroup (a container's memory limit) leaves."""
    known = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                known.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            known.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    if not known and hasattr(os, "sysconf"):
        try:
            known.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError):
            pass
    return min(known) if known else None


def check_memory(
    cfg: RunConfig,
    shape: tuple[int, int, int],
    n_classes: int,
    images: tuple[int, int],
    device: torch.device,
    copies: int = 1,
) -> Estimate:
    """Raise ConfigError (one line) when the run cannot fit in what `device` has free; return the estimate."""
    need = estimate(cfg, shape, n_classes, images, device.type, copies)
    free = free_memory(device)
    if free is not None and need.total > free:
        runs = f"{copies} stacked runs" if copies > 1 else "the run"
        raise ConfigError(
            f"{runs} would need about {gb(need.total)} on {device.type} but {gb(free)} is free: "
            f"{need.params:,} parameters ({gb(need.model)} with gradients and {cfg.optimizer} state), "
            f"activations ({gb(need.activations)})"
            + (f", the dataset ({gb(need.data)})" if need.data else "")
            + f"; {_advice(cfg, need)}"
        )
    return need


def _advice(cfg: RunConfig, need: Estimate) -> str:
    if need.model >= need.activations and "hidden" in model_spec(cfg.model).options:
        return "use smaller --hidden sizes"
    return "use a smaller --batch-size" if need.activations > need.data else "use a device with more memory"


def gb(n: float) -> str:
    """Bytes as people read them: 512 MB, 17.2 GB."""
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"

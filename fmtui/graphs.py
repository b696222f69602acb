"""The training step replayed as CUDA graphs: on a GPU, small models spend their time launching kernels.

An epoch of the lecture's MLP at batch 64 is 938 steps of ~20 small kernels each; eager PyTorch needs
about a millisecond of CPU per step to launch them (measured on an H200: 1.3 s per epoch, slower than
the CPU), while the GPU's arithmetic takes microseconds. `GraphedStep` captures CHUNK training steps
(gather by index, normalize, forward, loss, backward, optimizer step, metrics) in one CUDA graph, and a
single step in another for the batches left over, then replays them with the epoch's indices copied
into a static index buffer. The last, shorter batch of an epoch runs eagerly.

Before capture, a few warm-up steps run on a side stream (as CUDA graphs need) and the weights,
buffers and optimizer state are then put back in place, so the run trains exactly as the eager one:
the same kernels in the same order, the same numbers. Where a graph cannot hold the step the eager
step is kept and the reason is named: not on CUDA, `--no-graphs`, a learning-rate schedule (its value
changes every step on the host), dropout (its random masks), or a capture that failed.

Capture costs a few hundred steps' time (warm-up and recording, twice), paid again at every Start in the
dashboard. So a graphed step that ended normally is kept (`keep`, one per device) and the next fresh run of
the same shape adopts it (`fastest`): the new run's initial weights and per-copy values are copied into the
captured tensors in place and the optimizer state is zeroed (its fresh value, as after the warm-up), so the
graphs replay at once and the run trains exactly as it would have with graphs of its own. "Same shape" is
the step's `warm_key()`: every config field a graph bakes in (all but the seed and the number of epochs,
and for stacked copies their per-copy values, which live in tensors) and the very data tensors it reads.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Hashable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # the engine imports this module to pick its step
    from fmtui.config import RunConfig
    from fmtui.engine import EagerStep, Placement, Step

CHUNK = 32
"""Training steps per graph replay: enough that the host's per-replay work (index copy, replay, metric
copies, the stop check) vanishes beside the GPU's, few enough that Stop answers within a few ms."""
WARMUP = 3
"""Eager steps on a side stream before capture (CUDA graphs need the libraries' lazy setup done)."""


def why_eager(at: Placement, step: Step) -> str | None:
    """Why this run's step cannot be graphed, or None when it can."""
    cfg = at.config
    if at.device.type != "cuda":
        return f"CUDA graphs need a CUDA device (this run is on {at.device.type})"
    if not cfg.graphs:
        return "--no-graphs"
    if cfg.schedule != "none":
        return f"the {cfg.schedule} schedule changes the learning rate on the host every step"
    if cfg.dropout > 0:
        return "dropout draws new random masks every step"
    return None


_kept: dict[str, GraphedStep] = {}
"""Device -> the graphed step of the last run there that ended normally, waiting for a run of its shape."""
_lock = threading.Lock()  # the dashboard's worker and a search's trials may start runs from other threads


def fastest(step: EagerStep, at: Placement, *, capture: bool = True, fresh: bool = True) -> Step:
    """The graphed step where it can be used, else `step` itself (its `eager_reason` says why).

    A `fresh` step (initial weights, no optimizer state: not a resumed run) adopts the kept graphed step of
    its shape where there is one, instead of capturing anew. `capture=False` runs the functions a capture
    would record without capturing them (the tests' way on the CPU)."""
    reason = why_eager(at, step) if capture else None
    if reason is None:
        key = step.warm_key() if fresh else None
        kept = _take(str(at.device), key)
        if kept is not None:
            try:
                kept.adopt(step, at)
                return kept
            except Exception:  # reuse must never cost the run either: capture anew (the kept step is gone)
                pass
        try:
            graphed = GraphedStep(step, at, capture=capture)
            graphed.key = key
            return graphed
        except Exception as e:  # capture is new ground on every driver: never let it cost the run
            reason = f"capture failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    forget(str(at.device))  # an eager run: a kept step would only hold its memory for as long as the run lasts
    step.eager_reason = reason  # type: ignore[attr-defined]
    return step


def keep(step: Step) -> None:
    """After a run that ended normally (completed, stopped or diverged): its graphed step waits for the next
    fresh run of its shape on its device (one per device; a resumed run's step is not kept)."""
    if isinstance(step, GraphedStep) and step.key is not None:
        with _lock:
            _kept[str(step.device)] = step


def release(device: str, config: RunConfig) -> None:
    """Before a run on `device` measures the memory it needs (fmtui.resources): drop the kept step there unless
    it may serve this run (the same config but for what a graph does not bake in), so that it holds no memory
    the run is refused for."""
    with _lock:
        kept = _kept.get(device)
        if kept is None:
            return
        mine, free = kept.configs[0], kept.inner.UNKEYED
        if any(getattr(mine, f) != getattr(config, f) for f in mine.__dataclass_fields__ if f not in free):
            del _kept[device]


def forget(device: str | None = None) -> None:
    """Drop the kept step of a device (all devices: None); its graphs' memory is freed with it."""
    with _lock:
        for name in [d for d in _kept if device is None or d == device]:
            del _kept[name]


def _take(device: str, key: Hashable | None) -> GraphedStep | None:
    """The device's kept step when its key is `key`; any other is dropped (one set of graphs per device)."""
    with _lock:
        kept = _kept.pop(device, None)
    return kept if kept is not None and key is not None and kept.key == key else None


class GraphedStep:
    """A Step (fmtui.engine) whose full-size batches replay captured graphs of the inner step.

    `capture=False` runs the very functions a capture would record, without capturing them: the tests
    check on the CPU that this path trains exactly as the eager loop does.
    """

    kind = "graphed"
    key: Hashable | None = None
    """The inner step's `warm_key()` when it may be kept for the next run of its shape (`keep`)."""

    def __init__(self, inner: EagerStep, at: Placement, *, capture: bool = True, chunk: int = CHUNK):
        self.inner, self.at, self.capture = inner, at, capture
        self.configs, self.stats, self.params = inner.configs, inner.stats, inner.params
        self.batch_size, self.device = at.config.batch_size, at.device
        self.chunk = max(1, min(chunk, len(at.splits.y_train) // self.batch_size))
        k = len(inner.configs)
        self.index = torch.zeros(self.chunk, self.batch_size, dtype=torch.int64, device=self.device)
        self.out_losses = torch.zeros(k, self.chunk, device=self.device)
        self.out_correct = torch.zeros(k, self.chunk, dtype=torch.int64, device=self.device)
        self.replays = {n: self._recorded(n) for n in sorted({self.chunk, 1})}

    # --- the Step protocol ---------------------------------------------------------------------------

    @property
    def losses(self) -> torch.Tensor:
        return self.inner.losses

    @property
    def correct(self) -> torch.Tensor:
        return self.inner.correct

    def begin_epoch(self, batches: int) -> None:
        self.inner.begin_epoch(batches)

    def train(self, b: int, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inner.train(b, idx)

    def run(self, b: int, batches: list[torch.Tensor]) -> int:
        full = 0
        while full < min(self.chunk, len(batches)) and len(batches[full]) == self.batch_size:
            full += 1
        n = self.chunk if full == self.chunk else min(full, 1)
        if n == 0:  # the epoch's last, shorter batch
            return self.inner.run(b, batches)
        torch.cat(batches[:n], out=self.index[:n].view(-1))
        self.replays[n]()
        with torch.no_grad():
            self.inner.losses[:, b - 1 : b - 1 + n] = self.out_losses[:, :n]
            self.inner.correct += self.out_correct[:, :n].sum(1)
        return n

    def lrs(self) -> list[float]:
        return self.inner.lrs()

    def evaluate(self, x: torch.Tensor, y: torch.Tensor, keep_probs: bool = False):
        return self.inner.evaluate(x, y, keep_probs)

    def module(self, k: int):
        """Copy k's model as it is now; in tensors of its own where this step may be kept (`keep`): the
        captured ones will train the next run of its shape, and a finished run's model must stay its own."""
        model = self.inner.module(k)
        if self.key is None:
            return model
        return copy.deepcopy(model)  # (a Parameter's deepcopy takes its data, not its gradient)

    def snapshot(self):
        return self.inner.snapshot()

    def state(self, k: int):
        return self.inner.state(k)

    # --- reuse ------------------------------------------------------------------------------------------

    @torch.no_grad()
    def adopt(self, fresh: EagerStep, at: Placement) -> None:
        """Become `fresh`'s run: its initial values copied into the captured tensors (same shapes, in the
        same order: the key says so), the optimizer state zeroed, its configs and placement taken."""
        values, state = self.inner.warm_tensors()
        new_values, new_state = fresh.warm_tensors()
        assert not new_state, "only a fresh step (no optimizer state) adopts a kept graph"
        for t, v in zip(values, new_values, strict=True):
            t.copy_(v)
        for t in state:
            t.zero_()
        self.inner.take_place_of(fresh)
        self.at, self.configs, self.stats, self.params = at, fresh.configs, fresh.stats, fresh.params

    # --- capture ---------------------------------------------------------------------------------------

    def _steps(self, n: int) -> None:
        """n training steps on the static index buffer, metrics into the static output buffers."""
        for j in range(n):
            loss, right = self.inner.train(1, self.index[j])
            with torch.no_grad():
                self.out_losses[:, j] = loss
                self.out_correct[:, j] = right

    def _recorded(self, n: int):
        """A function that runs `_steps(n)`: a replayed CUDA graph, or the plain calls without capture."""
        restore = self.inner.snapshot()
        self.index[:n] = torch.arange(n * self.batch_size, device=self.device).view(n, -1)
        side = torch.cuda.Stream(self.device) if self.capture else None
        if side is not None:
            side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side) if side is not None else contextlib.nullcontext():
            for _ in range(WARMUP):
                self._steps(n)
        if side is not None:
            torch.cuda.current_stream(self.device).wait_stream(side)
        restore()
        if not self.capture:  # the tests' path: the warm-up and its undoing, then the plain calls
            return lambda: self._steps(n)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._steps(n)
        restore()  # capture records the kernels without running them; this only makes sure
        torch.cuda.synchronize(self.device)
        return graph.replay

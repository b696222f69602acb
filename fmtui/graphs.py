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
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # the engine imports this module to pick its step
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


def fastest(step: EagerStep, at: Placement, *, capture: bool = True) -> Step:
    """The graphed step where it can be used, else `step` itself (its `eager_reason` says why)."""
    reason = why_eager(at, step) if capture else None
    if reason is None:
        try:
            return GraphedStep(step, at, capture=capture)
        except Exception as e:  # capture is new ground on every driver: never let it cost the run
            reason = f"capture failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    step.eager_reason = reason  # type: ignore[attr-defined]
    return step


class GraphedStep:
    """A Step (fmtui.engine) whose full-size batches replay captured graphs of the inner step.

    `capture=False` runs the very functions a capture would record, without capturing them: the tests
    check on the CPU that this path trains exactly as the eager loop does.
    """

    kind = "graphed"

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
        return self.inner.module(k)

    def snapshot(self):
        return self.inner.snapshot()

    def state(self, k: int):
        return self.inner.state(k)

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

"""Train several configs of one network shape at once, with stacked weights (for sweeps).

A sweep of softmax regressions or MLPs that differ only in normalization, learning rate, momentum or
weight decay runs as one model of K stacked copies: every layer is one batched matmul (B, in) x K, so a
GPU does K runs for little more than the launches of one. The copies train in the engine's own epoch
loop (fmtui.engine.run_steps; only the step differs), so they get the same events, learning-rate
schedule, evaluation and divergence checks as separate runs. Each copy starts from the weights a
separate run with the same seed would build and sees the same batches in the same order. Gradients of
the copies are independent: a copy that diverges finishes as diverged and leaves the others untouched.

What holds, and what does not: the learning rates are exactly those of separate runs; the weights
and metrics agree up to float rounding (a batched matmul adds in another order than a plain one).
For a stable config that rounding stays at the last digits (the tests check the metrics to a relative
1e-4). A chaotic config, such as softmax regression on raw 0..255 pixels (norm none) at lr 0.01,
amplifies one ulp of difference within a few hundred steps: its curve then parts from a separate run's
(a few points of accuracy after an epoch, measured), equally valid, but not the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fmtui import models
from fmtui.config import RunConfig
from fmtui.data import Dataset, norm_stats, normalize
from fmtui.engine import EVAL_BATCH, UNBAKED, EagerStep, Placement, make_schedule, place, run_steps, snapshot_of
from fmtui.events import Event
from fmtui.registry import model_spec

# Fields that may differ between the stacked copies; all others must be equal.
PER_COPY = ("norm", "lr", "momentum", "weight_decay")
FUNCTIONS = {"relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "gelu": F.gelu}


def can_batch(configs: list[RunConfig]) -> bool:
    """True when the configs' model can be stacked (its registry entry says so: softmax regressions, plain MLPs),
    they train with SGD and differ only in PER_COPY fields."""
    if len(configs) < 2:
        return False
    first = configs[0]
    shared = {f: getattr(first, f) for f in first.__dataclass_fields__ if f not in PER_COPY}
    return (
        model_spec(first.model).stackable(first)
        and first.optimizer == "sgd"
        and not first.nesterov
        and all(getattr(c, f) == v for c in configs for f, v in shared.items())
    )


def batch_groups(configs: list[RunConfig]) -> list[list[int]]:
    """Indices of configs grouped so that each group of two or more can train stacked; others alone."""
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        key = tuple((f, getattr(c, f)) for f in c.__dataclass_fields__ if f not in PER_COPY)
        groups.setdefault(key, []).append(i)
    out: list[list[int]] = []
    for idx in groups.values():
        out.extend([idx] if can_batch([configs[i] for i in idx]) else [[i] for i in idx])
    return out


@dataclass
class Stack:
    """K stacked copies of one Flatten-Linear(-act-Linear)* network: weights (K, in, out), biases (K, 1, out)."""

    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    activation: Callable[[torch.Tensor], torch.Tensor]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(K, B, features) -> (K, B, classes)."""
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)
            if i < len(self.weights) - 1:
                x = self.activation(x)
        return x

    def params(self) -> list[torch.Tensor]:
        return [*self.weights, *self.biases]

    def module(self, k: int, cfg: RunConfig, shape, n_classes: int) -> nn.Module:
        """Copy k as the ordinary model a sequential run would have saved (same state_dict keys)."""
        model = models.build_model(cfg, shape, n_classes)
        linears = [m for m in model if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for lin, w, b in zip(linears, self.weights, self.biases):
                lin.weight.copy_(w[k].T)
                lin.bias.copy_(b[k, 0])
        return model


def build_stack(cfg: RunConfig, shape, n_classes: int, k: int, device: torch.device) -> Stack:
    """The seeded initial model of a sequential run, repeated k times."""
    torch.manual_seed(cfg.seed)
    model = models.build_model(cfg, shape, n_classes)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    ws = [lin.weight.detach().T.contiguous().expand(k, -1, -1).clone().to(device).requires_grad_() for lin in linears]
    bs = [lin.bias.detach().view(1, 1, -1).expand(k, 1, -1).clone().to(device).requires_grad_() for lin in linears]
    return Stack(ws, bs, FUNCTIONS[cfg.activation])


class Inputs:
    """Normalizes one uint8 batch for every copy at once: (B, C, H, W) -> (K, B, features)."""

    def __init__(self, configs: list[RunConfig], x_train: torch.Tensor, device: torch.device):
        stats = [norm_stats(c.norm, x_train) for c in configs]
        self.stats = stats
        self.per_image = torch.tensor([s.norm == "per-image" for s in stats], device=device)
        # x_norm = x * a + c with a = 1/scale, c = -shift/scale (one channel: the MNIST family)
        self.a = torch.tensor([1.0 / s.scale[0] for s in stats], device=device).view(-1, 1, 1)
        self.c = torch.tensor([-s.shift[0] / s.scale[0] for s in stats], device=device).view(-1, 1, 1)
        self.any_per_image = bool(self.per_image.any())

    def __call__(self, xb: torch.Tensor) -> torch.Tensor:
        flat = xb.flatten(1).float()
        out = torch.addcmul(self.c, flat.unsqueeze(0), self.a)
        if self.any_per_image:
            per = normalize(xb, next(s for s in self.stats if s.norm == "per-image")).flatten(1)
            out = torch.where(self.per_image.view(-1, 1, 1), per.unsqueeze(0), out)
        return out


class StackedStep(EagerStep):
    """The step of K stacked copies (see fmtui.engine.Step): one forward and backward for all, then
    torch.optim.SGD's update with each copy's lr, momentum and weight decay."""

    UNKEYED = (*UNBAKED, *PER_COPY)  # the per-copy values live in tensors a graph reads

    def __init__(self, configs: list[RunConfig], at: Placement):
        cfg, ds, device = at.config, at.dataset, at.device
        self.configs, self.at = configs, at
        self.inputs = Inputs(configs, at.splits.x_train, device)
        self.stats = self.inputs.stats
        self.stack = build_stack(cfg, ds.shape, len(ds.classes), len(configs), device)
        self.params = sum(p[0].numel() for p in self.stack.params())
        self.momentum = torch.tensor([c.momentum for c in configs], device=device)
        self.decay = torch.tensor([c.weight_decay for c in configs], device=device)
        self.bufs: list[torch.Tensor | None] = [None] * len(self.stack.params())
        # the learning rates: one parameter group per copy, stepped by the engine's schedule
        self.groups = torch.optim.SGD([{"params": [torch.zeros(0, requires_grad=True)], "lr": c.lr} for c in configs])
        self.schedule = make_schedule(self.groups, cfg, at.batches * cfg.epochs)
        self.groups.step()  # no gradients, so no change: the schedule only checks that the optimizer stepped

        self.constant_lr = torch.tensor(self.lrs(), device=at.device)
        """(K,) the learning rates when there is no schedule: made once, so a CUDA graph may read it."""

    def begin_epoch(self, batches: int) -> None:
        device, k = self.at.device, len(self.configs)
        self.losses = torch.empty(k, batches, device=device)
        self.correct = torch.zeros(k, device=device, dtype=torch.int64)
        self.lr = self._epoch_lrs(batches)

    def _epoch_lrs(self, batches: int) -> torch.Tensor:
        """(batches, K): each copy's learning rate at every step of the epoch, from the schedule."""
        if self.schedule is None:
            return self.constant_lr.expand(batches, -1)
        rows = []
        for _ in range(batches):
            rows.append(self.lrs())
            self.schedule.step()
        return torch.tensor(rows, device=self.at.device)

    def train(self, b: int, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, k = self.at.splits, len(self.configs)
        yb = s.y_train[idx]
        out = self.stack.forward(self.inputs(s.x_train[idx]))  # (K, B, classes)
        losses = F.cross_entropy(out.flatten(0, 1), yb.repeat(k), reduction="none").view(k, -1).mean(1)
        grads = torch.autograd.grad(losses.sum(), self.stack.params())
        lr = self.constant_lr if self.schedule is None else self.lr[b - 1]
        _sgd_step(self.stack.params(), grads, self.bufs, lr, self.momentum, self.decay)
        with torch.no_grad():
            return losses.detach(), (out.argmax(2) == yb).sum(1)

    def snapshot(self) -> Callable[[], None]:
        return snapshot_of(self.stack.params(), lambda: [b for b in self.bufs if b is not None])

    def warm_key(self) -> Hashable:
        cfg = self.configs[0]
        baked = tuple((f, getattr(cfg, f)) for f in cfg.__dataclass_fields__ if f not in self.UNKEYED)
        per_image = tuple(s.norm == "per-image" for s in self.stats)  # a branch on the host, not a tensor
        return ("stacked", baked, per_image, id(self.at.splits))  # the data a kept step holds alive

    def warm_tensors(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        per_copy = [self.momentum, self.decay, self.constant_lr, self.inputs.a, self.inputs.c, self.inputs.per_image]
        return [*self.stack.params(), *per_copy], [b for b in self.bufs if b is not None]

    def take_place_of(self, fresh: EagerStep) -> None:
        assert isinstance(fresh, StackedStep)
        self.configs, self.at, self.stats, self.groups = fresh.configs, fresh.at, fresh.stats, fresh.groups
        self.schedule, self.inputs.stats = fresh.schedule, fresh.inputs.stats

    def lrs(self) -> list[float]:
        return [g["lr"] for g in self.groups.param_groups]

    def evaluate(
        self, x: torch.Tensor, y: torch.Tensor, keep_probs: bool = False
    ) -> list[tuple[float, float, torch.Tensor | None]]:
        """(loss, accuracy %, probabilities if keep_probs) of every copy, EVAL_BATCH images at a time."""
        probs, loss_sum, correct = [], 0.0, 0
        with torch.no_grad():
            for xb, yb in zip(x.split(EVAL_BATCH), y.split(EVAL_BATCH)):
                out = self.stack.forward(self.inputs(xb)).float()  # (K, B, classes)
                loss_sum = loss_sum + F.cross_entropy(
                    out.transpose(1, 2), yb.expand(out.shape[0], -1), reduction="none"
                ).double().sum(1)
                correct = correct + (out.argmax(2) == yb).sum(1)
                if keep_probs:
                    probs.append(out.softmax(2))
        n = max(len(y), 1)
        losses, rights = (loss_sum / n).tolist(), correct.tolist()
        kept = torch.cat(probs, 1).cpu() if keep_probs else None
        return [(losses[i], 100.0 * rights[i] / n, kept[i] if kept is not None else None) for i in range(len(losses))]

    def module(self, k: int) -> nn.Module:
        ds = self.at.dataset
        return self.stack.module(k, self.configs[k], ds.shape, len(ds.classes))

    def state(self, k: int) -> dict[str, Any]:
        """Copy k's weights as its single run's state_dict, and its SGD momentum buffers in the same layout
        and under the same names (`stacked`). There is no torch optimizer or schedule: stacked runs are
        recorded, but only single runs are resumed."""
        model = self.module(k)
        n, momentum = len(self.stack.weights), {}
        linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
        for i, name in enumerate(linears):
            if self.bufs[i] is not None:
                momentum[f"{name}.weight"] = self.bufs[i][k].T.detach().cpu().clone()  # own storage, not all K
                momentum[f"{name}.bias"] = self.bufs[n + i][k, 0].detach().cpu().clone()
        return {"model": model.state_dict(), "optimizer": None, "scheduler": None, "stacked": {"momentum": momentum}}


def train_batched(
    configs: list[RunConfig],
    *,
    dataset: Dataset | None = None,
    should_stop: Callable[[], object] = lambda: False,
    progress_interval: float = 0.1,
    should_drop: Callable[[int], object] = lambda k: False,
) -> Iterator[tuple[int, Event]]:
    """Yield (copy index, event) with the same events a sequential run of each config would yield. A copy that
    `should_drop` drops after an epoch (fmtui.engine.run_steps) finishes as stopped; the others go on."""
    assert can_batch(configs), "configs differ in more than " + ", ".join(PER_COPY)
    for c in configs:
        c.validate()
    at = place(configs[0], dataset, copies=len(configs))
    if at.dataset.shape[0] != 1:
        raise ValueError("batched sweeps support one-channel datasets")
    from fmtui.graphs import fastest, keep

    step = fastest(StackedStep(configs, at), at)
    yield from run_steps(
        at, step, should_stop=should_stop, progress_interval=progress_interval, should_drop=should_drop
    )
    keep(step)  # the group ended normally: its graphs wait for the next group of its shape (fmtui.graphs)


@torch.no_grad()
def _sgd_step(params, grads, bufs, lr, momentum, decay) -> None:
    """torch.optim.SGD's update with per-copy lr, momentum and weight decay (dampening 0)."""
    for j, (p, g) in enumerate(zip(params, grads)):
        shape = (-1,) + (1,) * (p.dim() - 1)
        g = g + decay.view(shape) * p
        if bufs[j] is None:
            bufs[j] = g.clone()
        else:
            bufs[j].mul_(momentum.view(shape)).add_(g)
        p.sub_(lr.view(shape) * torch.where(momentum.view(shape) > 0, bufs[j], g))

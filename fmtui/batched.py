"""Train several configs of one network shape at once, with stacked weights (for sweeps).

A sweep of softmax regressions or MLPs that differ only in normalization, learning rate, momentum or
weight decay runs as one model of K stacked copies: every layer is one batched matmul (B, in) x K, so a
GPU does K runs for little more than the launches of one. Each copy starts from the weights a sequential
run with the same seed would build and sees the same batches in the same order, so the results are
those of K separate runs (up to float rounding). Gradients of the copies are independent: a copy that
diverges is marked and leaves the others untouched.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fmtui import models
from fmtui.config import RunConfig
from fmtui.data import Dataset, batch_indices, load_dataset, norm_stats, normalize, to_device
from fmtui.engine import EpochEnd, Finished, Results, Started, default_threads, device_name, resolve_device

# Fields that may differ between the stacked copies; all others must be equal.
PER_COPY = ("norm", "lr", "momentum", "weight_decay")
FUNCTIONS = {"relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "gelu": F.gelu}


def can_batch(configs: list[RunConfig]) -> bool:
    """True when the configs are softmax/plain MLPs with SGD and differ only in PER_COPY fields."""
    if len(configs) < 2:
        return False
    first = configs[0]
    shared = {f: getattr(first, f) for f in first.__dataclass_fields__ if f not in PER_COPY}
    plain = first.model == "softmax" or (first.model == "mlp" and not first.batch_norm and first.dropout == 0)
    return (
        plain
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


def train_batched(
    configs: list[RunConfig], *, dataset: Dataset | None = None, should_stop: Callable[[], bool] = lambda: False
) -> Iterator[tuple[int, object]]:
    """Yield (copy index, event) with the same events a sequential run of each config would yield."""
    assert can_batch(configs), "configs differ in more than " + ", ".join(PER_COPY)
    cfg, k = configs[0].validate(), len(configs)
    device = resolve_device(cfg.device)
    threads = cfg.threads or default_threads()
    if device.type == "cpu":
        torch.set_num_threads(threads)
    ds = dataset if dataset is not None else load_dataset(cfg.dataset, cfg.data_dir)
    if ds.shape[0] != 1:
        raise ValueError("batched sweeps support one-channel datasets")
    s = to_device(ds, device, cfg.val_split, cfg.seed)
    inputs = Inputs(configs, s.x_train, device)
    stack = build_stack(cfg, ds.shape, len(ds.classes), k, device)
    lr = torch.tensor([c.lr for c in configs], device=device)
    momentum = torch.tensor([c.momentum for c in configs], device=device)
    decay = torch.tensor([c.weight_decay for c in configs], device=device)
    bufs: list[torch.Tensor | None] = [None] * len(stack.params())
    n, classes = len(s.y_train), ds.classes
    batches = math.ceil(n / cfg.batch_size)
    total_steps = batches * cfg.epochs
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    for i, c in enumerate(configs):
        yield (
            i,
            Started(
                c,
                ds.title,
                classes,
                device_name(device, threads),
                models.describe(c, ds.shape, len(classes)),
                models.count_params(stack.module(0, c, ds.shape, len(classes))),
                n,
                0 if s.y_val is None else len(s.y_val),
                len(s.y_test),
                batches,
                inputs.stats[i],
                threads,
            ),
        )

    histories: list[list[EpochEnd]] = [[] for _ in configs]
    diverged: dict[int, str] = {}
    stopped, train_time, step = False, 0.0, 0
    for epoch in range(1, cfg.epochs + 1):
        loss_sum = torch.zeros(k, device=device)
        correct = torch.zeros(k, device=device, dtype=torch.int64)
        first_bad = torch.full((k,), -1, device=device, dtype=torch.int64)
        t0 = time.perf_counter()
        b = 0
        for b, idx in enumerate(batch_indices(n, cfg.batch_size, gen, device), 1):
            if should_stop():
                stopped = True
                break
            yb = s.y_train[idx]
            out = stack.forward(inputs(s.x_train[idx]))  # (K, B, classes)
            losses = F.cross_entropy(out.flatten(0, 1), yb.repeat(k), reduction="none").view(k, -1).mean(1)
            grads = torch.autograd.grad(losses.sum(), stack.params())
            scale = lr * (0.5 * (1 + math.cos(math.pi * step / total_steps)) if cfg.schedule == "cosine" else 1.0)
            _sgd_step(stack.params(), grads, bufs, scale, momentum, decay)
            step += 1
            with torch.no_grad():
                loss_sum += losses.detach()
                correct += (out.argmax(2) == yb).sum(1)
                bad = ~torch.isfinite(losses.detach())
                first_bad = torch.where((first_bad < 0) & bad, b, first_bad)
        seconds = time.perf_counter() - t0
        train_time += seconds
        if stopped:
            break
        for i, bad in enumerate(first_bad.tolist()):
            if bad >= 0 and i not in diverged:
                diverged[i] = f"diverged at epoch {epoch}, batch {bad}: the loss is not finite"
        evals = _evaluate(stack, inputs, s.x_test, s.y_test)
        vals = _evaluate(stack, inputs, s.x_val, s.y_val) if s.x_val is not None else None
        sums, rights = loss_sum.tolist(), correct.tolist()
        for i in range(k):
            if i in diverged:
                continue
            res = evals[i]
            ev = EpochEnd(
                epoch,
                cfg.epochs,
                sums[i] / b,
                100.0 * rights[i] / n,
                res.loss,
                res.accuracy,
                seconds,
                0.0,
                n / max(seconds, 1e-9),
                float(scale[i]),
                vals[i].loss if vals else None,
                vals[i].accuracy if vals else None,
                res,
            )
            histories[i].append(ev)
            yield i, ev
    for i, c in enumerate(configs):
        status = "stopped" if stopped else "diverged" if i in diverged else "completed"
        done = len(histories[i])
        message = diverged.get(i) or (
            f"stopped during epoch {done + 1} after {done} complete epoch{'s' * (done != 1)}"
            if stopped
            else f"finished {cfg.epochs} epochs in {train_time:.1f}s of training ({k} runs at once)"
        )
        model = stack.module(i, c, ds.shape, len(classes))
        yield (
            i,
            Finished(
                status, message, histories[i], histories[i][-1].results if histories[i] else None, train_time, model
            ),
        )


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


@torch.no_grad()
def _evaluate(stack: Stack, inputs: Inputs, x: torch.Tensor, y: torch.Tensor) -> list[Results]:
    """Test/val results of every copy: probabilities, confusion matrix, loss and accuracy."""
    probs, loss_sum = [], 0.0
    for xb, yb in zip(x.split(4096), y.split(4096)):
        out = stack.forward(inputs(xb)).float()  # (K, B, classes)
        loss_sum = loss_sum + F.cross_entropy(
            out.transpose(1, 2), yb.expand(out.shape[0], -1), reduction="none"
        ).double().sum(1)
        probs.append(out.softmax(2))
    all_probs = torch.cat(probs, 1).cpu()
    losses = (loss_sum / max(len(y), 1)).tolist()
    return [Results.from_probs(all_probs[i], y, losses[i]) for i in range(all_probs.shape[0])]

"""The training engine: `train(config)` yields events (fmtui.events); the CLI and the TUI worker only consume them.

No UI imports here. Data lives on the training device as uint8, batches are slices of a device-side
permutation, normalization runs on the device per batch, and metrics are accumulated on the device
and read back only when an event is emitted (a few times a second and at the end of an epoch).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fmtui import models
from fmtui.config import ConfigError, RunConfig
from fmtui.data import Dataset, DeviceSplits, batch_indices, load_dataset, norm_stats, normalize, to_device
from fmtui.events import BatchProgress, EpochEnd, Event, Finished, NormStats, Started
from fmtui.results import Results

EVAL_BATCH = 4096


# --- device and threads -----------------------------------------------------------------------


def resolve_device(name: str) -> torch.device:
    """auto -> cuda, else mps, else cpu; an explicit device that is not available is a ConfigError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: CUDA is not available on this machine")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps: Apple MPS is not available on this machine")
    if name not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device: unknown value {name!r}; choose from auto, cpu, cuda, mps")
    return torch.device(name)


def default_threads() -> int:
    """CPU threads for training: 1 on machines of up to 2 cores, else half the cores up to 8.

    Measured (BENCHMARKS.md): on 2 cores, torch's default of 2 threads ran the batch-64 MLP epoch
    several times slower than 1 thread whenever anything else was busy, and gained little when idle.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1 if cores <= 2 else min(cores // 2, 8)


def device_name(device: torch.device, threads: int) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.current_device()} {torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        return f"cpu ({threads} thread{'s' if threads != 1 else ''})"
    return device.type


# --- building blocks ---------------------------------------------------------------------------


def make_optimizer(cfg: RunConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, stats: NormStats, keep_probs: bool = False
) -> tuple[float, float, torch.Tensor | None]:
    """Mean loss and accuracy (%) of model on uint8 images x; optionally the (N, C) probabilities."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device, dtype=torch.float64)
    correct = torch.zeros((), device=x.device, dtype=torch.int64)
    probs = []
    for xb, yb in zip(x.split(EVAL_BATCH), y.split(EVAL_BATCH)):
        out = model(normalize(xb, stats)).float()
        loss_sum += F.cross_entropy(out, yb, reduction="sum").double()
        correct += (out.argmax(1) == yb).sum()
        if keep_probs:
            probs.append(out.softmax(1))
    model.train(was_training)
    n = max(len(y), 1)
    return loss_sum.item() / n, 100.0 * correct.item() / n, torch.cat(probs).cpu() if keep_probs else None


def test_results(model: nn.Module, x: torch.Tensor, y: torch.Tensor, stats: NormStats) -> Results:
    """Evaluate on the test split and keep predictions, confusion matrix and probabilities."""
    loss, _, probs = evaluate(model, x, y, stats, keep_probs=True)
    return Results.from_probs(probs, y, loss)


@dataclass
class Prepared:
    """Data, model and optimizer on the device, ready for `train` (also used by the benchmark)."""

    config: RunConfig
    dataset: Dataset
    device: torch.device
    splits: DeviceSplits
    stats: NormStats
    model: nn.Module
    optimizer: torch.optim.Optimizer
    threads: int


def prepare(cfg: RunConfig, dataset: Dataset | None = None) -> Prepared:
    """Validate, load the data, place it and a freshly seeded model on the device."""
    cfg.validate()
    device = resolve_device(cfg.device)
    threads = cfg.threads or default_threads()
    if device.type == "cpu":
        torch.set_num_threads(threads)
    ds = dataset if dataset is not None else load_dataset(cfg.dataset, cfg.data_dir)
    if cfg.model == "cnn" and min(ds.shape[1:]) < 4:
        raise ConfigError("--model cnn needs images of at least 4x4 pixels")
    splits = to_device(ds, device, cfg.val_split, cfg.seed)
    stats = norm_stats(cfg.norm, splits.x_train)
    torch.manual_seed(cfg.seed)
    model = models.build_model(cfg, ds.shape, len(ds.classes)).to(device)
    return Prepared(cfg, ds, device, splits, stats, model, make_optimizer(cfg, model.parameters()), threads)


# --- the loop ----------------------------------------------------------------------------------


def train(
    cfg: RunConfig,
    *,
    dataset: Dataset | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress_interval: float = 0.1,
) -> Iterator[Event]:
    """Train as cfg says and yield Started, BatchProgress*, EpochEnd per epoch, then Finished.

    `should_stop` is polled between batches; when it returns True the current batch completes, the
    partial epoch is discarded from the metrics and Finished(status="stopped") is yielded.
    Raises ConfigError/DataError for bad input (before any event) and lets device errors propagate.
    """
    p = prepare(cfg, dataset)
    yield from run_prepared(p, should_stop=should_stop, progress_interval=progress_interval)


def run_prepared(
    p: Prepared, *, should_stop: Callable[[], bool] = lambda: False, progress_interval: float = 0.1
) -> Iterator[Event]:
    cfg, device, s, model, opt = p.config, p.device, p.splits, p.model, p.optimizer
    n, classes = len(s.y_train), p.dataset.classes
    batches = math.ceil(n / cfg.batch_size)
    total_steps = batches * cfg.epochs
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps) if cfg.schedule == "cosine" else None
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    yield Started(
        cfg,
        p.dataset.title,
        classes,
        device_name(device, p.threads),
        models.describe(cfg, p.dataset.shape, len(classes)),
        models.count_params(model),
        n,
        0 if s.y_val is None else len(s.y_val),
        len(s.y_test),
        batches,
        p.stats,
        p.threads,
    )

    history: list[EpochEnd] = []
    started = time.perf_counter()
    train_time = 0.0
    status, message = "completed", ""
    step = 0
    last_emit = time.perf_counter()  # progress events come every progress_interval, across epochs too
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        losses = torch.empty(batches, device=device)  # every batch's loss, read back only at events
        correct = torch.zeros((), device=device, dtype=torch.int64)
        last_b = 0
        t0 = time.perf_counter()
        b = 0
        for b, idx in enumerate(batch_indices(n, cfg.batch_size, gen, device), 1):
            if should_stop():
                status, b = "stopped", b - 1
                break
            xb, yb = normalize(s.x_train.index_select(0, idx), p.stats), s.y_train.index_select(0, idx)
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            step += 1
            with torch.no_grad():
                losses[b - 1] = loss.detach()
                correct += (out.argmax(1) == yb).sum()
            now = time.perf_counter()
            if now - last_emit >= progress_interval:
                recent = losses[last_b:b].mean().item()  # the one sync of this progress event
                if not math.isfinite(recent):
                    status, message = "diverged", _diverged(epoch, losses, last_b, b)
                    break
                elapsed = train_time + now - t0
                yield BatchProgress(
                    epoch,
                    cfg.epochs,
                    b,
                    batches,
                    recent,
                    100.0 * correct.item() / min(b * cfg.batch_size, n),
                    step * cfg.batch_size / max(elapsed, 1e-9),
                    now - started,
                    (total_steps - step) * elapsed / step,
                    step,
                    _gpu_memory(device),
                )
                last_emit, last_b = time.perf_counter(), b
        loss_sum = losses[:b].sum()
        if status == "completed" and not math.isfinite(loss_sum.item()):
            status, message = "diverged", _diverged(epoch, losses, last_b, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
        train_time += seconds
        if status != "completed":
            break
        history.append(_end_epoch(p, epoch, b, loss_sum, correct, seconds, opt))
        yield history[-1]

    results = history[-1].results if history else None
    if status == "stopped":
        message = (
            f"stopped during epoch {len(history) + 1} after {len(history)} complete epoch{'s' * (len(history) != 1)}"
        )
    elif status == "completed":
        message = f"finished {cfg.epochs} epoch{'s' * (cfg.epochs != 1)} in {train_time:.1f}s of training"
    yield Finished(status, message, history, results, train_time, model)


def _diverged(epoch: int, losses: torch.Tensor, start: int, stop: int) -> str:
    """Name the first batch (1-based) in losses[start:stop] whose loss is not finite."""
    bad = (~torch.isfinite(losses[start:stop])).nonzero()
    batch = start + int(bad[0]) + 1 if len(bad) else stop
    return f"diverged at epoch {epoch}, batch {batch}: the loss is not finite"


def _end_epoch(
    p: Prepared,
    epoch: int,
    batches: int,
    loss_sum: torch.Tensor,
    correct: torch.Tensor,
    seconds: float,
    opt: torch.optim.Optimizer,
) -> EpochEnd:
    """Read back the epoch's training metrics and evaluate on val (if any) and test."""
    s, n = p.splits, len(p.splits.y_train)
    t0 = time.perf_counter()
    val_loss = val_acc = None
    if s.x_val is not None:
        val_loss, val_acc, _ = evaluate(p.model, s.x_val, s.y_val, p.stats)
    results = test_results(p.model, s.x_test, s.y_test, p.stats)
    return EpochEnd(
        epoch,
        p.config.epochs,
        loss_sum.item() / max(batches, 1),
        100.0 * correct.item() / n,
        results.loss,
        results.accuracy,
        seconds,
        time.perf_counter() - t0,
        n / max(seconds, 1e-9),
        opt.param_groups[0]["lr"],
        val_loss,
        val_acc,
        results,
    )


def _gpu_memory(device: torch.device) -> int:
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0


def evaluate_saved(
    cfg: RunConfig, model_path, *, device: str | None = None, data_dir: str | None = None
) -> tuple[Results, float]:
    """Rebuild a saved run's model, load its state_dict and evaluate it on the test split."""
    cfg = cfg.replace(device=device or cfg.device, data_dir=data_dir or cfg.data_dir)
    dev = resolve_device(cfg.device)
    ds = load_dataset(cfg.dataset, cfg.data_dir)
    model = models.build_model(cfg, ds.shape, len(ds.classes))
    try:
        model.load_state_dict(torch.load(model_path, map_location="cpu", weights_only=True))
    except (RuntimeError, OSError, EOFError) as e:
        raise ConfigError(f"{model_path} does not fit the run's config.json ({str(e).splitlines()[0]})") from None
    model.to(dev)
    x_train = ds.x_train
    if cfg.val_split > 0:  # zscore statistics come from the training part only, as at training time
        x_train = to_device(ds, torch.device("cpu"), cfg.val_split, cfg.seed).x_train
    stats = norm_stats(cfg.norm, x_train)
    t0 = time.perf_counter()
    results = test_results(model, ds.x_test.to(dev), ds.y_test.to(dev), stats)
    return results, time.perf_counter() - t0

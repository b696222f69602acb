"""The training engine: `train(config)` yields events (fmtui.events); the CLI and the TUI worker only consume them.

No UI imports here. Data lives on the training device as uint8, batches are slices of a device-side
permutation, normalization runs on the device per batch, and metrics are accumulated on the device
and read back only when an event is emitted (a few times a second and at the end of an epoch).

There is one epoch loop (`run_steps`) for single runs and for stacked sweeps (fmtui.batched); what
differs is the `Step` it calls per batch. The schedule, evaluation, divergence checks, the events and
their messages all come from here.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from fmtui import models, resources, warm
from fmtui.config import ConfigError, RunConfig
from fmtui.data import Dataset, DeviceSplits, batch_indices, load_dataset, norm_stats, normalize, pixel_stats, to_device
from fmtui.events import BatchProgress, EpochEnd, Event, Finished, Health, NormStats, Started
from fmtui.health import Inputs, assess
from fmtui.registry import model_spec
from fmtui.results import Results
from fmtui.runfolder.schema import METRIC_FIELDS, Status

EVAL_BATCH = 4096
CHECKPOINT_FORMAT = 1
"""The version of the checkpoint dict that EpochEnd.checkpoint builds (see fmtui.runfolder.tensors)."""
LOSS_POINTS = 1000
"""Points of a run's step-by-step loss curve (BatchProgress.losses), about: each is the mean loss of
ceil(steps / LOSS_POINTS) steps, so hours of training send and keep a bounded curve."""
UNBAKED = ("seed", "epochs")
"""Config fields a captured step does not bake in (fmtui.graphs: the seed only draws the initial weights and
the batches' order, the epochs only how often the loop replays it); every other field is part of its key."""


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
    # capturable: Adam keeps its step count on the device, so that a CUDA graph can replay the update
    capturable = cfg.graphs and torch.cuda.is_available() and resolve_device(cfg.device).type == "cuda"
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, capturable=capturable)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, capturable=capturable)


def make_schedule(
    optimizer: torch.optim.Optimizer, cfg: RunConfig, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate schedule over a run's steps, stepped after every optimizer step (None: constant).

    Single runs step it on their optimizer; stacked runs on one parameter group per copy (fmtui.batched),
    so that a copy follows, and records, the same learning rates as a single run of its config.
    """
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return None


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


def evaluate_predictions(model: nn.Module, x: torch.Tensor, y: torch.Tensor, stats: NormStats) -> Results:
    """Evaluate on the test split and keep predictions, confusion matrix and probabilities."""
    loss, _, probs = evaluate(model, x, y, stats, keep_probs=True)
    return Results.from_probs(probs, y, loss)


# --- setup -------------------------------------------------------------------------------------


@dataclass
class Placement:
    """A run's data on its training device: what single and stacked runs set up alike."""

    config: RunConfig
    dataset: Dataset
    device: torch.device
    splits: DeviceSplits
    threads: int

    @property
    def batches(self) -> int:
        """Batches per epoch (the last one may be short)."""
        return math.ceil(len(self.splits.y_train) / self.config.batch_size)


def place(cfg: RunConfig, dataset: Dataset | None = None, copies: int = 1) -> Placement:
    """Validate, pick the device and CPU threads, load the data, check that `copies` runs of cfg fit in the
    device's memory (fmtui.resources) and put the data on the device (or take it from fmtui.warm, where
    the last runs of this process left it)."""
    cfg.validate()
    device = resolve_device(cfg.device)
    threads = resources.usable_threads(cfg.threads) if cfg.threads else default_threads()
    if device.type == "cpu":
        torch.set_num_threads(threads)
    ds = dataset if dataset is not None else load_dataset(cfg.dataset, cfg.data_dir)
    refused = model_spec(cfg.model).check(cfg, ds.shape)  # the data's own shape (validate: the spec's)
    if refused:
        raise ConfigError(refused)
    if device.type == "cuda":
        from fmtui import graphs

        graphs.release(str(device), cfg)  # a kept graphed step of another shape: its memory is this run's
    resources.check_memory(cfg, ds.shape, len(ds.classes), (len(ds.y_train), len(ds.y_test)), device, copies)
    return Placement(cfg, ds, device, warm.splits(ds, device, cfg.val_split, cfg.seed), threads)


@dataclass
class Prepared(Placement):
    """Data, model and optimizer on the device, ready for `run_prepared` (also used by the benchmarks)."""

    stats: NormStats
    model: nn.Module
    optimizer: torch.optim.Optimizer


def prepare(cfg: RunConfig, dataset: Dataset | None = None) -> Prepared:
    """Validate, load the data, place it and a freshly seeded model on the device."""
    at = place(cfg, dataset)
    stats = warm.stats(cfg.norm, at.splits.x_train)
    torch.manual_seed(cfg.seed)
    model = models.build_model(cfg, at.dataset.shape, len(at.dataset.classes)).to(at.device)
    return Prepared(**vars(at), stats=stats, model=model, optimizer=make_optimizer(cfg, model.parameters()))


# --- the step ----------------------------------------------------------------------------------


class Step(Protocol):
    """One training step of K models on one batch; K = 1 for a single run, K > 1 for stacked copies.

    A step is the unit a CUDA graph would capture: gather the batch by index, normalize, forward, loss,
    backward, optimizer and schedule step, and the metrics accumulated into device buffers that the
    loop reads only when it emits an event.
    """

    configs: list[RunConfig]
    """The K configs; they differ at most in what the step trains per copy."""
    stats: list[NormStats]
    params: int
    """Parameters of one copy."""
    losses: torch.Tensor
    """(K, batches): every batch's mean loss in this epoch, per copy."""
    correct: torch.Tensor
    """(K,): right training predictions in this epoch, per copy."""

    def begin_epoch(self, batches: int) -> None:
        """Fresh metric buffers, training mode."""

    def train(self, b: int, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on the training samples idx, batch b (1-based) of the epoch: the unit a CUDA
        graph captures. Returns each copy's batch loss and right predictions, (K,) tensors on the device."""
        ...

    def run(self, b: int, batches: list[torch.Tensor]) -> int:
        """Train from batch b on (batches[0] is batch b's indices), recording the metrics; return how many
        batches were trained (1 for the eager step; a graphed step may take several at once)."""
        ...

    def snapshot(self) -> Callable[[], None]:
        """Remember the trainable state (weights, buffers, optimizer state); the returned function puts it
        back in place (same tensors), so steps run to warm up a CUDA graph leave no trace."""
        ...

    def lrs(self) -> list[float]:
        """Each copy's learning rate for the next step."""
        ...

    def evaluate(
        self, x: torch.Tensor, y: torch.Tensor, keep_probs: bool = False
    ) -> list[tuple[float, float, torch.Tensor | None]]:
        """(loss, accuracy %, probabilities if keep_probs) of each copy on uint8 images x."""
        ...

    def module(self, k: int) -> nn.Module:
        """Copy k as the ordinary model a single run trains."""
        ...

    def state(self, k: int) -> dict[str, Any]:
        """Copy k's `model`, `optimizer` and `scheduler` state dicts, for a checkpoint (CPU tensors that may
        share storage with the live ones: serialize them before the next step)."""
        ...


class EagerStep:
    """What every step shares: run one batch at a time and record its metrics in the epoch's buffers."""

    losses: torch.Tensor
    correct: torch.Tensor
    UNKEYED: tuple[str, ...] = UNBAKED
    """Config fields a graph of this step does not bake in: its warm_key leaves them out."""

    def train(self, b: int, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def run(self, b: int, batches: list[torch.Tensor]) -> int:
        loss, right = self.train(b, batches[0])
        self.record(b, loss, right)
        return 1

    # what a captured graph of this step needs to replay for another run (fmtui.graphs.keep)

    def warm_key(self) -> Hashable | None:
        """What a graph of this step bakes in besides its tensors' values (None: never reused)."""
        return None

    def warm_tensors(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(the tensors a graph reads whose values start each run: weights, buffers, per-copy values; the
        optimizer's state tensors, zero when fresh), each in an order fixed by the key."""
        raise NotImplementedError

    def take_place_of(self, fresh: EagerStep) -> None:
        """Take fresh's configs and placement (after its values were copied into this step's tensors)."""
        raise NotImplementedError

    @torch.no_grad()
    def record(self, b: int, loss: torch.Tensor, right: torch.Tensor) -> None:
        """Batch b's (K,) losses and right predictions into the epoch's buffers (no host sync)."""
        self.losses[:, b - 1] = loss
        self.correct += right


def snapshot_of(tensors: list[torch.Tensor], state: Callable[[], list[torch.Tensor]]) -> Callable[[], None]:
    """Copies of tensors and of the tensors of state() now; the returned function copies them back in
    place and zeroes every tensor of state() made since (an optimizer's state created by the steps in
    between, such as momentum buffers: zero is its fresh value)."""
    kept = [*tensors, *state()]
    saved = [t.detach().clone() for t in kept]

    @torch.no_grad()
    def restore() -> None:
        before = {id(t) for t in kept}
        for t, copy in zip(kept, saved):
            t.copy_(copy)
        for t in state():
            if id(t) not in before:
                t.zero_()

    return restore


def normalized_on_gpu(x: torch.Tensor, stats: NormStats, device: torch.device) -> torch.Tensor | None:
    """On a GPU, x normalized once as float32 (elementwise: exactly what normalizing each batch gives);
    None elsewhere (on the CPU a batch's normalization costs what the copy would, and memory is scarcer).
    Per-image normalization reduces over each image, so it stays per batch (its sums may round otherwise)."""
    if device.type != "cuda" or stats.norm == "per-image":
        return None
    return torch.cat([normalize(part, stats) for part in x.split(8192)])


class ModelStep(EagerStep):
    """The step of one nn.Module and its torch optimizer: the lecture's loop body, op for op."""

    def __init__(self, p: Prepared):
        self.p, self.configs, self.stats = p, [p.config], [p.stats]
        self.params = models.count_params(p.model)
        self.schedule = make_schedule(p.optimizer, p.config, p.batches * p.config.epochs)
        self.x_norm = warm.normalized(p.splits.x_train, p.stats, lambda x, st: normalized_on_gpu(x, st, p.device))
        """The training images normalized once, on a GPU (the same numbers, three kernels fewer a step)."""

    def begin_epoch(self, batches: int) -> None:
        self.p.model.train()
        self.losses = torch.empty(1, batches, device=self.p.device)
        self.correct = torch.zeros(1, device=self.p.device, dtype=torch.int64)

    def train(self, b: int, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p, s = self.p, self.p.splits
        if self.x_norm is not None:
            xb = self.x_norm.index_select(0, idx)
        else:
            xb = normalize(s.x_train.index_select(0, idx), p.stats)
        yb = s.y_train.index_select(0, idx)
        out = p.model(xb)
        loss = F.cross_entropy(out, yb)
        p.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        p.optimizer.step()
        if self.schedule is not None:
            self.schedule.step()
        with torch.no_grad():
            return loss.detach().view(1), (out.argmax(1) == yb).sum().view(1)

    def snapshot(self) -> Callable[[], None]:
        return snapshot_of(self.warm_tensors()[0], lambda: self.warm_tensors()[1])

    def warm_key(self) -> Hashable:
        cfg = self.p.config
        baked = tuple((f, getattr(cfg, f)) for f in cfg.__dataclass_fields__ if f not in self.UNKEYED)
        return ("single", baked, id(self.p.splits), id(self.x_norm))  # the data a kept step holds alive

    def warm_tensors(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        model, opt = self.p.model, self.p.optimizer
        state = [v for st in opt.state.values() for v in st.values() if torch.is_tensor(v)]
        return [*model.parameters(), *model.buffers()], state

    def take_place_of(self, fresh: EagerStep) -> None:
        assert isinstance(fresh, ModelStep)
        self.p = replace(fresh.p, model=self.p.model, optimizer=self.p.optimizer)
        self.configs, self.stats = fresh.configs, fresh.stats

    def lrs(self) -> list[float]:
        return [self.p.optimizer.param_groups[0]["lr"]]

    def evaluate(
        self, x: torch.Tensor, y: torch.Tensor, keep_probs: bool = False
    ) -> list[tuple[float, float, torch.Tensor | None]]:
        return [evaluate(self.p.model, x, y, self.p.stats, keep_probs)]

    def module(self, k: int) -> nn.Module:
        return self.p.model

    def state(self, k: int) -> dict[str, Any]:
        return {
            "model": to_cpu(self.p.model.state_dict()),
            "optimizer": to_cpu(self.p.optimizer.state_dict()),
            "scheduler": self.schedule.state_dict() if self.schedule is not None else None,
        }

    def load(self, checkpoint: dict[str, Any]) -> None:
        """Continue from a checkpoint of this config: weights, optimizer state and schedule position."""
        try:
            self.p.model.load_state_dict(checkpoint["model"])
            self.p.optimizer.load_state_dict(checkpoint["optimizer"])
            if self.schedule is not None:
                self._load_schedule(checkpoint["scheduler"])
        except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as e:
            lines = [line.strip() for line in str(e).splitlines() if line.strip() and not line.endswith(":")]
            reason = (lines[0] if lines else type(e).__name__)[:200]
            raise ConfigError(f"checkpoint.pt does not fit config.json ({reason})") from None

    def _load_schedule(self, state: dict[str, Any]) -> None:
        """The saved schedule position; a run given more (or fewer) epochs than it was planned for goes on
        along the schedule of its new length: a cosine's next learning rates are those that a run planned
        for the new number of epochs has at these steps."""
        schedule = self.schedule
        total = schedule.T_max
        schedule.load_state_dict(state)
        if schedule.T_max != total:
            schedule.T_max, t = total, schedule.last_epoch
            lrs = [
                schedule.eta_min + (b - schedule.eta_min) * (1 + math.cos(math.pi * t / total)) / 2
                for b in schedule.base_lrs
            ]
            for group, lr in zip(self.p.optimizer.param_groups, lrs):
                group["lr"] = lr
            schedule._last_lr = lrs


def to_cpu(obj: Any) -> Any:
    """A nested state dict with every tensor detached and on the CPU (the same tensors when they are there)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


# --- the loop ----------------------------------------------------------------------------------


StopCheck = Callable[[], object]
"""Polled between batches: falsy goes on; True stops; a string stops and says why ("SIGTERM")."""


def train(
    cfg: RunConfig,
    *,
    dataset: Dataset | None = None,
    should_stop: StopCheck = lambda: False,
    progress_interval: float = 0.1,
    resume: dict[str, Any] | None = None,
) -> Iterator[Event]:
    """Train as cfg says and yield Started, BatchProgress*, EpochEnd per epoch, then Finished.

    `should_stop` is polled between batches; when it returns something true the current batch completes,
    the partial epoch is discarded from the metrics and Finished(status="stopped") is yielded (a string
    names the cause in its message). `resume` is a checkpoint of this config (an EpochEnd.checkpoint(),
    as saved): training goes on after its epoch with its weights, optimizer, schedule and random states,
    so on the same device the numbers are those of the run that was never stopped.
    Raises ConfigError/DataError for bad input (before any event) and lets device errors propagate.
    """
    p = prepare(cfg, dataset)
    yield from run_prepared(p, should_stop=should_stop, progress_interval=progress_interval, resume=resume)


def run_prepared(
    p: Prepared,
    *,
    should_stop: StopCheck = lambda: False,
    progress_interval: float = 0.1,
    resume: dict[str, Any] | None = None,
) -> Iterator[Event]:
    """The events of one prepared run (see `train`)."""
    from fmtui.graphs import fastest, keep

    step = ModelStep(p)
    if resume is not None:
        step.load(resume)
    # after a resumed state is in place: a graph captures it. A fresh step may adopt a kept one (fmtui.graphs): then
    # p.model and p.optimizer are not those trained; the loop reads the step's (module, state), never p's.
    step = fastest(step, p, fresh=resume is None)
    loop = _Loop(p, step, should_stop, progress_interval, resume)
    for _, event in loop.run():
        yield event
    keep(step)  # the run ended normally: its graphs wait for the next run of its shape (fmtui.graphs)


DropCheck = Callable[[int], object]
"""Asked of each copy still training once its epoch's EpochEnd is handled: something true drops copy k (a string
says why, as for StopCheck); it finishes as stopped after that epoch and the others go on."""


def run_steps(
    at: Placement,
    step: Step,
    *,
    should_stop: StopCheck = lambda: False,
    progress_interval: float = 0.1,
    should_drop: DropCheck = lambda k: False,
) -> Iterator[tuple[int, Event]]:
    """The one epoch loop: yield (copy k, event), each copy's events as a single run of its config has them.

    Every copy gets Started, BatchProgress*, an EpochEnd per epoch and Finished. A copy whose loss turns
    non-finite finishes as diverged at the end of that epoch and the others go on; so does a copy that
    `should_drop` drops (a search prunes it); a stop finishes all.
    """
    yield from _Loop(at, step, should_stop, progress_interval, should_drop=should_drop).run()


class _Loop:
    """run_steps' state between events: the copies still training, their histories, the clock."""

    def __init__(
        self,
        at: Placement,
        step: Step,
        should_stop: StopCheck,
        progress_interval: float,
        resume: dict[str, Any] | None = None,
        should_drop: DropCheck = lambda k: False,
    ):
        self.at, self.step, self.cfg = at, step, at.config
        self.should_stop, self.progress_interval, self.should_drop = should_stop, progress_interval, should_drop
        self.n, self.batches = len(at.splits.y_train), at.batches
        self.live = list(range(len(step.configs)))
        """Copies still training, in order."""
        self.diverged: dict[int, str] = {}
        """Copies found diverged in this epoch, with their message; they finish at its end."""
        self.history: list[list[EpochEnd]] = [[] for _ in step.configs]
        self.results: list[Results | None] = [None] * len(step.configs)
        """Each copy's test predictions of its last finished epoch (only the last: they are large)."""
        self.steps, self.train_time = 0, 0.0
        self.started = self.last_emit = 0.0
        self.inputs: dict[NormStats, Inputs] = {}
        """What the model sees under each normalization, measured when a health hint first needs it."""
        self.initial: list[float] = []
        """Each copy's loss on its first batch, before any step (fmtui.health); empty for a resumed run."""
        self.gen = torch.Generator(device=at.device).manual_seed(self.cfg.seed)
        """The batch order: one permutation per epoch."""
        self.first = 0
        """Epochs done before this loop began (those of the checkpoint it resumes)."""
        self.loss_every = max(1, math.ceil(self.batches * self.cfg.epochs / LOSS_POINTS))
        """Steps per point of the loss curve (BatchProgress.losses)."""
        self.sent = 0
        """Batches of this epoch whose losses are in a BatchProgress already (a multiple of loss_every)."""
        self.stop_reason = ""
        if resume is not None:
            self._restore(resume)

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        """Go on after the checkpoint's epoch: its metrics, step count, training time and random states."""
        assert len(self.step.configs) == 1, "only single runs resume"
        rows = checkpoint["metrics"]
        self.first = checkpoint["epoch"]
        self.history = [[EpochEnd(**{f: row.get(f) for f in METRIC_FIELDS}) for row in rows]]
        self.steps, self.train_time = self.first * self.batches, float(sum(r["seconds"] for r in rows))
        rng = checkpoint["rng"]
        torch.set_rng_state(rng["torch"])
        if rng.get("cuda") is not None and self.at.device.type == "cuda":
            try:
                torch.cuda.set_rng_state_all(rng["cuda"])
            except (RuntimeError, ValueError, IndexError):  # another number of GPUs: dropout masks differ
                pass
        try:
            self.gen.set_state(rng["generator"])
        except (RuntimeError, TypeError):  # saved on another device type: its generator state does not fit
            self.gen.manual_seed(self.cfg.seed + self.first)

    def run(self) -> Iterator[tuple[int, Event]]:
        for k in self.live:
            yield k, self._started(k)
        self.started = time.perf_counter()
        self.last_emit = -math.inf  # the first batch shows at once (a warm Start: progress after one batch), then
        # progress comes every interval, across epochs too
        status = Status.COMPLETED
        for epoch in range(self.first + 1, self.cfg.epochs + 1):
            b, seconds, stopped = yield from self._train_epoch(epoch, self.gen)
            for k, message in sorted(self.diverged.items()):
                yield k, self._finished(k, Status.DIVERGED, message)
            self.diverged.clear()
            if stopped:
                status = Status.STOPPED
            if stopped or not self.live:
                break
            yield from self._end_epoch(epoch, b, seconds)
            if epoch < self.cfg.epochs:  # after the last epoch a copy is complete: nothing left to drop
                yield from self._drop()
            if not self.live:
                break
        for k in self.live:
            yield k, self._finished(k, status)

    def _drop(self) -> Iterator[tuple[int, Event]]:
        """Finish as stopped the copies that should_drop drops after their epoch; the others go on."""
        for k in list(self.live):
            reason = self.should_drop(k)
            if reason:
                self.live.remove(k)
                yield k, self._finished(k, Status.STOPPED, by=reason if isinstance(reason, str) else "")

    def _started(self, k: int) -> Started:
        at, s, cfg = self.at, self.at.splits, self.step.configs[k]
        shape, classes = at.dataset.shape, at.dataset.classes
        return Started(
            cfg,
            at.dataset.title,
            classes,
            device_name(at.device, at.threads),
            models.describe(cfg, shape, len(classes)),
            self.step.params,
            self.n,
            0 if s.y_val is None else len(s.y_val),
            len(s.y_test),
            self.batches,
            self.step.stats[k],
            at.threads,
            getattr(self.step, "kind", "eager"),
            "" if at.device.type != "cuda" else getattr(self.step, "eager_reason", ""),
            self.first,
            at.dataset.files,
        )

    def _train_epoch(self, epoch: int, gen: torch.Generator) -> Iterator[tuple[int, Event]]:
        """Train one epoch, yielding progress; return (batches done, seconds, stopped)."""
        self.step.begin_epoch(self.batches)
        last_b, b, stopped = 0, 0, False
        self.sent = 0
        t0 = time.perf_counter()
        batches = list(batch_indices(self.n, self.cfg.batch_size, gen, self.at.device))
        while b < len(batches):
            reason = self.should_stop()
            if reason:
                stopped = True
                self.stop_reason = reason if isinstance(reason, str) else ""
                break
            done = self.step.run(b + 1, batches[b:])
            b += done
            self.steps += done
            now = time.perf_counter()
            if now - self.last_emit >= self.progress_interval or b == len(batches):  # the epoch's end: its curve
                yield from self._progress(epoch, b, last_b, now, self.train_time + now - t0)
                if not self.live:
                    break
                self.last_emit, last_b = time.perf_counter(), b
        if not stopped:
            sums = self.step.losses[:, :b].sum(1).tolist()
            for k in [k for k in self.live if not math.isfinite(sums[k])]:
                self._diverge(k, epoch, b)
        if self.at.device.type == "cuda":
            torch.cuda.synchronize(self.at.device)
        seconds = time.perf_counter() - t0
        self.train_time += seconds
        return b, seconds, stopped

    def _progress(self, epoch: int, b: int, last_b: int, now: float, elapsed: float) -> Iterator[tuple[int, Event]]:
        """BatchProgress for every copy still training, including those whose recent loss is not finite
        (their curve up to the divergence), which are then marked diverged."""
        end = b if b == self.batches else b - b % self.loss_every
        curve = self._curve(self.sent, end)
        recent = self.step.losses[:, last_b:b].mean(1, keepdim=True)
        values = torch.cat([recent, curve], 1).tolist()  # the one sync of this progress event
        reporting = list(self.live)
        for k in [k for k in self.live if not math.isfinite(values[k][0])]:
            self._diverge(k, epoch, b)
        ends = [min(self.sent + (i + 1) * self.loss_every, end) for i in range(curve.shape[1])]
        first = (epoch - 1) * self.batches
        self.sent = end
        cfg, correct = self.cfg, self.step.correct.tolist()
        total_steps = self.batches * cfg.epochs
        for k in reporting:
            yield (
                k,
                BatchProgress(
                    epoch,
                    cfg.epochs,
                    b,
                    self.batches,
                    values[k][0],
                    100.0 * correct[k] / min(b * cfg.batch_size, self.n),
                    self.steps * cfg.batch_size / max(elapsed, 1e-9),
                    now - self.started,
                    (total_steps - self.steps) * elapsed / self.steps,
                    self.steps,
                    _gpu_memory(self.at.device),
                    [(first + e, v) for e, v in zip(ends, values[k][1:])],
                    self.loss_every,
                ),
            )

    def _curve(self, lo: int, hi: int) -> torch.Tensor:
        """(K, points): the mean loss of each run of loss_every batches in [lo, hi) of this epoch, on the device;
        lo is a multiple of loss_every, and only the epoch's last point may be shorter."""
        losses, every = self.step.losses[:, lo:hi], self.loss_every
        full = (hi - lo) // every * every
        points = losses[:, :full].reshape(len(losses), -1, every).mean(2)
        if full < hi - lo:
            points = torch.cat([points, losses[:, full:].mean(1, keepdim=True)], 1)
        return points

    def _diverge(self, k: int, epoch: int, b: int) -> None:
        """Copy k's loss is not finite: it stops training and finishes as diverged at the end of the epoch."""
        bad = (~torch.isfinite(self.step.losses[k, :b])).nonzero()
        batch = int(bad[0]) + 1 if len(bad) else b
        self.diverged[k] = f"diverged at epoch {epoch}, batch {batch}: the loss is not finite"
        self.live.remove(k)

    def _end_epoch(self, epoch: int, b: int, seconds: float) -> Iterator[tuple[int, Event]]:
        """Evaluate every copy still training on val (if any) and test; yield their EpochEnd."""
        s, step = self.at.splits, self.step
        t0 = time.perf_counter()
        vals = step.evaluate(s.x_val, s.y_val) if s.x_val is not None else None
        tests = step.evaluate(s.x_test, s.y_test, keep_probs=True)
        results = {k: Results.from_probs(tests[k][2], s.y_test, tests[k][0]) for k in self.live}
        eval_seconds = time.perf_counter() - t0
        sums, correct, lrs = step.losses[:, :b].sum(1).tolist(), step.correct.tolist(), step.lrs()
        if epoch == 1 and b:
            self.initial = step.losses[:, 0].tolist()
        for k in self.live:
            res = results[k]
            event = EpochEnd(
                epoch,
                self.cfg.epochs,
                sums[k] / max(b, 1),
                100.0 * correct[k] / self.n,
                res.loss,
                res.accuracy,
                seconds,
                eval_seconds,
                self.n / max(seconds, 1e-9),
                lrs[k],
                vals[k][0] if vals else None,
                vals[k][1] if vals else None,
                res,
                functools.partial(self._checkpoint, k, epoch),
                models.learned_weights(step.module(k), self.at.dataset.shape),
            )
            self.history[k].append(replace(event, results=None, checkpoint=None, weights=None))
            event.health = self.history[k][-1].health = self._health(k)
            self.results[k] = res
            yield k, event

    def _checkpoint(self, k: int, epoch: int) -> dict[str, Any]:
        """Copy k's state at the end of `epoch`: all that a resumed run needs to go on as if never stopped."""
        cuda = self.at.device.type == "cuda"
        return {
            "format": CHECKPOINT_FORMAT,
            "epoch": epoch,
            **self.step.state(k),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if cuda else None,
                "generator": self.gen.get_state(),
                "device": self.at.device.type,
            },
            "metrics": [e.metrics() for e in self.history[k]],
        }

    def _finished(self, k: int, status: Status, message: str = "", by: str | None = None) -> Finished:
        """Copy k's last event; a stopped copy's message names what stopped it (`by`, else the stop's reason)."""
        done, runs = len(self.history[k]), len(self.step.configs)
        if status == Status.STOPPED:
            reason = self.stop_reason if by is None else by
            by = f" by {reason}" if reason else ""
            message = f"stopped{by} during epoch {done + 1} after {done} complete epoch{'s' * (done != 1)}"
        elif status == Status.COMPLETED:
            epochs = self.cfg.epochs
            message = f"finished {epochs} epoch{'s' * (epochs != 1)} in {self.train_time:.1f}s of training"
            message += f" ({runs} runs at once)" if runs > 1 else ""
            message += f" (resumed after epoch {self.first})" if self.first else ""
        health = self._health(k, message if status == Status.DIVERGED else "")
        return Finished(status, message, self.history[k], self.results[k], self.train_time, self.step.module(k), health)

    def _health(self, k: int, diverged: str = "") -> Health:
        """Copy k's health after its epochs so far (fmtui.health); `diverged`: the message of a non-finite loss."""
        classes, lr = len(self.at.dataset.classes), self.step.configs[k].lr
        initial = self.initial[k] if self.initial else None
        return assess(self.history[k], classes, lr, lambda: self._inputs(self.step.stats[k]), diverged, initial)

    def _inputs(self, stats: NormStats) -> Inputs:
        """Mean and std of the training pixels after a normalization (exact, from a histogram of the uint8 pixels)."""
        if stats not in self.inputs:
            mean, std = (0.0, 1.0) if stats.norm == "per-image" else pixel_stats(self.at.dataset.x_train, stats)[:2]
            self.inputs[stats] = Inputs(stats.norm, mean, std)
        return self.inputs[stats]


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
    results = evaluate_predictions(model, ds.x_test.to(dev), ds.y_test.to(dev), stats)
    return results, time.perf_counter() - t0

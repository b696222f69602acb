"""A run folder's files turned back into the engine's events: a metrics.jsonl row into an EpochEnd, live.json
into a BatchProgress (with losses.jsonl's step curve), config.json's `resolved` part into a Started. What the
writer (fmtui.recorder) writes from events, a follower (fmtui.watch) reads back as events, so a watched run shows
as one trained here.

Every string taken from a folder goes through `safe_text` (it may be someone else's); every number is checked
(a field that is no number is left out, never guessed from this machine). No torch.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from fmtui.config import RunConfig
from fmtui.events import BatchProgress, EpochEnd, NormStats, Started
from fmtui.runfolder.read import RunRecord
from fmtui.runfolder.schema import PROGRESS_FIELDS, Status
from fmtui.text import safe_text


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: Any, default: str) -> str:
    return safe_text(value) if isinstance(value, str) and value else default


def _floats(value: Any, default: tuple[float, ...]) -> tuple[float, ...]:
    if isinstance(value, list) and value and all(_number(v) for v in value):
        return tuple(float(v) for v in value)
    return default


def epoch_end(row: dict, cfg: RunConfig) -> EpochEnd:
    """The EpochEnd a metrics.jsonl row records (a row checked by fmtui.runfolder.parse; fields it lacks are 0)."""
    epochs = _int(row.get("epochs"), cfg.epochs)
    return EpochEnd(
        row["epoch"],
        epochs if epochs >= row["epoch"] else cfg.epochs,
        row["train_loss"],
        row["train_accuracy"],
        row["test_loss"],
        row["test_accuracy"],
        row.get("seconds") or 0.0,
        row.get("eval_seconds") or 0.0,
        row.get("samples_per_s") or 0.0,
        row.get("lr") if row.get("lr") is not None else cfg.lr,
        row.get("val_loss"),
        row.get("val_accuracy"),
    )


def started_event(record: RunRecord) -> Started:
    """The Started of a run as config.json's `resolved` part recorded it (written by the recorder at Started;
    what a folder does not say is left empty, never guessed from this machine)."""
    cfg, r, live = record.config, record.resolved, record.live
    n_train = _int(r.get("n_train"))
    batches = _int(live.get("batches")) or (math.ceil(n_train / cfg.batch_size) if n_train else 0)
    classes = r.get("classes")
    return Started(
        cfg,
        _text(r.get("dataset_title"), cfg.dataset),
        [safe_text(c) for c in classes if isinstance(c, str)] if isinstance(classes, list) else [],
        _text(r.get("device"), _text(live.get("device"), "an unknown device")),
        _text(r.get("model_summary"), cfg.model),
        _int(r.get("params")),
        n_train,
        _int(r.get("n_val")),
        _int(r.get("n_test")),
        max(batches, 1),
        NormStats(cfg.norm, _floats(r.get("norm_shift"), (0.0,)), _floats(r.get("norm_scale"), (1.0,))),
        _int(r.get("threads"), 1),
        _text(r.get("step"), "eager"),
        _text(r.get("step_note"), ""),
    )


def progress_event(live: dict, *, ended: bool = False) -> BatchProgress | None:
    """live.json's progress as a BatchProgress (its loss curve empty: losses.jsonl has it, see `loss_points`);
    None before the first batch, when a field is no number, or when the writer no longer says `running` (unless
    `ended`: the last progress of a run that ended)."""
    values = {k: live.get(k) for k in PROGRESS_FIELDS}
    if not (ended or live.get("status") == Status.RUNNING) or not all(_number(v) for v in values.values()):
        return None
    if values["epoch"] < 1 or values["batch"] < 1 or values["batches"] < 1 or values["epochs"] < 1:
        return None
    ints = ("epoch", "epochs", "batch", "batches", "step")
    numbers = {k: int(v) if k in ints else float(v) for k, v in values.items()}
    return BatchProgress(**numbers, gpu_memory=_int(live.get("gpu_memory")))


def loss_points(rows: list[dict]) -> list[tuple[int, float]]:
    """losses.jsonl's lines (checked by fmtui.runfolder.parse.check_loss) as BatchProgress.losses: (step, loss),
    NaN where the loss was not finite."""
    return [(row["step"], math.nan if row["loss"] is None else float(row["loss"])) for row in rows]


def loss_every(rows: list[dict]) -> int:
    """The steps a point of the curve averages, as BatchProgress.loss_every says it: the median of the lines' (most
    lines are the engine's own points; a line merged with an epoch's short last point covers more, the run's last
    may cover fewer)."""
    return statistics.median_low(row["steps"] for row in rows) if rows else 1

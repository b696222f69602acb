"""The run folder's format, defined once: its file names, the fields of each file, the statuses a run can
have and the live-run protocol's time limits. Writers (fmtui.recorder), readers (fmtui.runfolder.read),
watchers (fmtui.watch), exporters and the --json schema (fmtui.events_schema) all import these names.

Standard library only, and nothing from the rest of fmtui: this module is the protocol, not its code.

    .lock            held (flock) by the process writing the run, for its whole life; holds its pid and host
    config.json      the RunConfig plus what the engine resolved (`resolved`: device, parameters, data files)
    metrics.jsonl    one JSON object per finished epoch (METRIC_FIELDS), appended (metrics.csv: the same table)
    summary.json     status (a writer's Status), message, final and best metrics, health (SUMMARY_FIELDS)
    live.json        the writer's latest progress and heartbeat, pid and host, while it trains (LIVE_FIELDS)
    losses.jsonl     the training loss step by step (LOSS_FIELDS), appended as live.json is written; bounded
    model.pt         the state_dict of the last complete epoch, loadable with torch.load(weights_only=True)
    checkpoint.pt    all that a resume needs after the last complete epoch (weights only, no pickled objects)
    predictions.pt   test-set probabilities and labels, for the error browser without retraining
    mislabeled.csv   wrong test predictions, most confident first
    system.jsonl     the machine while it trains: one sample of CPU, memory and each GPU every few seconds
                     (SYSTEM_FIELDS, SYSTEM_GPU_FIELDS), appended, thinned to SYSTEM_ROWS rows at most
"""

from __future__ import annotations

import re
from enum import Enum

# --- folder names -------------------------------------------------------------------------------------------

STAMP_FORMAT = "%Y%m%d-%H%M%S"
"""How fmtui begins a run (and sweep) folder's name: the local date and time it started, `20261208-023000-...`."""
STAMPED = re.compile(r"(\d{8})-(\d{6})(?=-|$)")
"""A folder name that begins with STAMP_FORMAT (groups: date, time; `match`, not `fullmatch`). A name only says
so: `--out NAME` names a folder anything."""

# --- file names ---------------------------------------------------------------------------------------------

LOCK = ".lock"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
METRICS_CSV = "metrics.csv"
SUMMARY = "summary.json"
LIVE = "live.json"
LOSSES = "losses.jsonl"
MODEL = "model.pt"
CHECKPOINT = "checkpoint.pt"
PREDICTIONS = "predictions.pt"
MISLABELED = "mislabeled.csv"
SYSTEM = "system.jsonl"

RUN_FILES = (
    LOCK,
    CONFIG,
    METRICS,
    METRICS_CSV,
    SUMMARY,
    LIVE,
    LOSSES,
    MODEL,
    CHECKPOINT,
    PREDICTIONS,
    MISLABELED,
    SYSTEM,
)
"""Every file a run folder holds. None of them may be a symbolic link (fmtui.runfolder.files refuses one)."""
RUN_MARKERS = frozenset({CONFIG, METRICS, MODEL, PREDICTIONS, LOCK, LIVE})
"""A folder holding any of these is a run folder (readable or broken); others may be sweep folders."""
EXPORTS = "exports"
"""The folder inside a runs folder that the Runs pane's exports go to (no run folder)."""

MAX_BYTES = {CONFIG: 1 << 20, SUMMARY: 1 << 20, LIVE: 1 << 20, METRICS: 256 << 20, LOSSES: 4 << 20, SYSTEM: 16 << 20}
"""Larger files are refused unread (a run writes a few kB; 256 MiB of metrics is over 500,000 epochs; a run's
losses.jsonl holds at most about LOSS_RECORD_POINTS lines of ~50 bytes for each time it was started or resumed;
a system.jsonl of SYSTEM_ROWS rows is under a megabyte with one GPU, 3 MB with 8)."""
DEFAULT_MAX_BYTES = 1 << 20
"""The limit of a small file that MAX_BYTES does not name (.lock)."""
MAX_EPOCH = 10_000_000
"""Epoch numbers above this are no run's (the CLI allows 100,000 epochs)."""


# --- statuses -------------------------------------------------------------------------------------------


class Status(str, Enum):
    """How a run stands. A writer records the first five in summary.json and live.json; a reader adds
    `interrupted` (summary says running, but its writer is gone) and `broken` (the folder cannot be read).

    A str enum: it is equal to its value and is written to JSON as it, so files and --json lines hold the
    same strings as before there was an enum."""

    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"
    DIVERGED = "diverged"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    BROKEN = "broken"

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__  # f"{status}" is its value on every Python (3.11 changed Enum's format)


WRITTEN = (Status.RUNNING, Status.COMPLETED, Status.STOPPED, Status.DIVERGED, Status.ERROR)
"""What summary.json may say."""
ENDED = (Status.COMPLETED, Status.STOPPED, Status.DIVERGED, Status.ERROR, Status.INTERRUPTED)
"""How a run can end: a Finished event's status (the engine's first three; a watched run's all five)."""


# --- the live-run protocol --------------------------------------------------------------------------------

LIVE_INTERVAL = 0.5
"""Seconds between two live.json writes at most (progress comes faster)."""
HEARTBEAT = 2.0
"""Seconds between live.json writes at least while the writer lives, progress or not (long evaluations)."""
QUIET_AFTER = 30.0
"""A writer that holds its lock but has not beaten for this long is shown as paused (SIGSTOP, a frozen
machine): 15 heartbeats missed."""
STALE_AFTER = 600.0
"""Seconds after which a run whose writer cannot be asked directly (another host: its heartbeat; an old
folder without live.json or .lock: its last write) is taken for dead. Generous: an epoch can be long. A
heartbeat dated more than this into the future counts as stale too (clock skew between hosts)."""


# --- fields ----------------------------------------------------------------------------------------------------

Field = tuple[str, str, str]
"""A JSON field's type ("number", "integer or null", ...), unit ("" when none) and meaning."""

METRIC_DOCS: dict[str, Field] = {
    "epoch": ("integer", "", "the epoch, 1-based"),
    "epochs": ("integer", "", "epochs the run was asked for"),
    "train_loss": ("number", "", "mean cross-entropy of the epoch's training batches"),
    "train_accuracy": ("number", "percent", "training accuracy over the epoch, 0..100"),
    "val_loss": ("number or null", "", "validation loss; null without --val-split"),
    "val_accuracy": ("number or null", "percent", "validation accuracy, 0..100; null without --val-split"),
    "test_loss": ("number", "", "test loss after the epoch"),
    "test_accuracy": ("number", "percent", "test accuracy after the epoch, 0..100"),
    "seconds": ("number", "seconds", "training time of the epoch, evaluation excluded"),
    "eval_seconds": ("number", "seconds", "evaluation time after the epoch"),
    "samples_per_s": ("number", "samples/s", "training samples per second in the epoch"),
    "lr": ("number", "", "the learning rate after the epoch's last step"),
}
"""A metrics.jsonl row (an EpochEnd's numbers, and the --json epoch line's), in the order it is written."""
METRIC_FIELDS = tuple(METRIC_DOCS)
TABLE_FIELDS = tuple(f for f in METRIC_FIELDS if f != "epochs")
"""The columns of metrics.csv and of summary.json's final and best (a row's numbers but the epochs asked for)."""
ROW_REQUIRED = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy")
"""What a reader insists on in a row (folders of older versions lack the rest)."""
ROW_PERCENTS = tuple(f for f, (_, unit, _) in METRIC_DOCS.items() if unit == "percent")
ROW_NUMBERS = tuple(f for f, (kind, unit, _) in METRIC_DOCS.items() if kind.startswith("number") and unit != "percent")

PROGRESS_DOCS: dict[str, Field] = {
    "epoch": ("integer", "", "the epoch in progress, 1-based"),
    "epochs": ("integer", "", "epochs the run was asked for"),
    "batch": ("integer", "", "batches done in this epoch"),
    "batches": ("integer", "", "batches in one epoch"),
    "loss": ("number or null", "", "mean training loss since the previous progress line; null: not finite"),
    "accuracy": ("number", "percent", "training accuracy so far in this epoch, 0..100"),
    "samples_per_s": ("number", "samples/s", "training samples per second so far"),
    "elapsed": ("number", "seconds", "since training started"),
    "eta": ("number", "seconds", "estimated time left"),
    "step": ("integer", "", "optimizer steps so far"),
}
"""A BatchProgress's numbers: the --json progress line's fields and live.json's progress."""
PROGRESS_FIELDS = tuple(PROGRESS_DOCS)

LIVE_DOCS: dict[str, Field] = {
    "status": ("string", "", "the writer's status (running until it records how the run ended)"),
    **PROGRESS_DOCS,
    "device": ("string", "", "where it trains"),
    "gpu_memory": ("integer", "bytes", "peak GPU memory allocated by torch; 0 off the GPU"),
    "heartbeat": ("number", "seconds", "when it was written, as seconds since 1970 (the writer's clock)"),
    "pid": ("integer", "", "the writer's process id on its host"),
    "host": ("string", "", "the writer's host name"),
    "updated_at": ("string", "ISO 8601", "the heartbeat, as local time"),
}
"""live.json: replaced twice a second at most, and every HEARTBEAT seconds while the writer lives."""
LIVE_FIELDS = tuple(LIVE_DOCS)

SYSTEM_DOCS: dict[str, Field] = {
    "t": ("number", "seconds", "when it was sampled, as seconds since 1970 (the writer's clock)"),
    "cpu": ("number", "percent", "the machine's CPU use since the previous sample, of all its cores, 0..100"),
    "rss": ("integer", "bytes", "the writer process's resident memory"),
    "ram_used": ("integer", "bytes", "the machine's memory in use"),
    "ram_total": ("integer", "bytes", "the machine's memory"),
    "gpus": ("array", "", "one object per GPU (SYSTEM_GPU_DOCS); absent without NVML or a GPU"),
}
"""A system.jsonl row (fmtui.sysmetrics). What could not be measured is absent, never 0 or null."""
SYSTEM_FIELDS = tuple(SYSTEM_DOCS)
SYSTEM_GPU_DOCS: dict[str, Field] = {
    "index": ("integer", "", "the GPU's NVML index"),
    "name": ("string", "", "its name, as NVML gives it"),
    "util": ("number", "percent", "time the GPU was busy over the driver's last sample period, 0..100"),
    "mem_used": ("integer", "bytes", "its memory in use, by every process"),
    "mem_total": ("integer", "bytes", "its memory"),
    "temp": ("number", "degrees Celsius", "its temperature"),
    "power": ("number", "watts", "its power draw"),
}
"""A GPU of a system.jsonl row: a reading the GPU does not give (no power sensor) is absent."""
SYSTEM_GPU_FIELDS = tuple(SYSTEM_GPU_DOCS)
SYSTEM_ROWS = 2000
"""Rows a system.jsonl holds at most: past them it is thinned to every second row (its start and end kept)."""

SUMMARY_DOCS: dict[str, Field] = {
    "status": ("string", "", "one of the written statuses: running, completed, stopped, diverged, error"),
    "message": ("string", "", "how the run stands or ended, in words"),
    "epochs_done": ("integer", "", "complete epochs (metrics.jsonl's lines)"),
    "final": ("object", "", "the last epoch's numbers (TABLE_FIELDS)"),
    "best_by": ("string", "", "val_accuracy, or test_accuracy without a validation split"),
    "best_epoch": ("integer", "", "the best epoch by best_by"),
    "best": ("object", "", "the best epoch's numbers"),
    "seconds": ("number", "seconds", "training time so far, evaluation excluded"),
    "health": ("object", "", 'the run\'s training health: {"state", "hint"}'),
    "started_at": ("string", "ISO 8601", "when the run started (its first start, when resumed)"),
    "updated_at": ("string", "ISO 8601", "when this file was written"),
    "resumed_from": ("array", "", "the epochs it was resumed after, oldest first"),
    "pruned_at": ("integer", "", "a trial its search pruned (fmtui tune): the epoch whose report pruned it"),
}
"""summary.json: replaced after every epoch and at the end."""
SUMMARY_FIELDS = tuple(SUMMARY_DOCS)

LOSS_DOCS: dict[str, Field] = {
    "step": ("integer", "", "the optimizer step the point ends at, counted from the run's first step (1-based)"),
    "loss": ("number or null", "", "mean training loss of the `steps` steps up to `step`; null: not finite"),
    "steps": ("integer", "", "how many steps the point averages"),
}
"""A losses.jsonl line: one point of the training loss by step, the steps counting up from line to line."""
LOSS_FIELDS = tuple(LOSS_DOCS)
LOSS_RECORD_POINTS = 2000
"""Points a writer records of one run's step curve, at most about: the engine's points (about 1,000 a run, and
one more at each epoch's end) are merged where they come closer than 1/LOSS_RECORD_POINTS of the run's steps, so
a run of 100,000 short epochs records 2,000 points, not 100,000."""

LOCK_FIELDS = ("pid", "host")
""".lock's content: who took the lock (informative only: the kernel's lock table says who holds it)."""
DATA_FILES = "data_files"
"""config.json's resolved key for the data's fingerprint: [{"name", "size", "md5"}, ...] (fmtui.session)."""
STUDY = "study"
"""config.json's resolved key of a search's trial (fmtui tune): {"name", "trial", "params", "worker"}, the study,
the trial's number, the parameters it was given and the worker that trained it."""

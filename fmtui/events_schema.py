"""The --json event schema, defined once: every line's envelope and each event's fields with their type, unit
and meaning. docs/events.md is made from it (scripts/events_doc.py); fmtui.report writes the lines.

The fields of an epoch line and a progress line are the run folder's own (fmtui.runfolder.schema): a
metrics.jsonl row and live.json's progress. Standard library and fmtui.config only.
"""

from __future__ import annotations

from fmtui.config import OPTIONS, RunConfig
from fmtui.events import HEALTH_STATES
from fmtui.runfolder.schema import ENDED, METRIC_DOCS, PROGRESS_DOCS, WRITTEN, Field, Status

SCHEMA_VERSION = 1
"""The version of the --json event schema (JSON_EVENTS): raised when a field changes meaning or goes away."""


def _one_of(statuses: tuple[Status, ...]) -> str:
    """`completed, stopped or error`."""
    *most, last = [str(s) for s in statuses]
    return f"{', '.join(most)} or {last}"


STATES = ", ".join(HEALTH_STATES)

HEALTH = f'`{{"state", "hint"}}`: state one of {STATES}; hint: what the numbers show and what to try ("" when ok)'
"""The health object of the epoch and finished events and of run_folder lines (as in summary.json)."""


def _sweep_row_fields() -> dict[str, Field]:
    """A sweep run's row: its options (as in config.json), then its results (also summary.csv's columns)."""
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string", tuple: "array"}
    defaults = RunConfig()
    fields: dict[str, Field] = {"run": ("string or null", "", "the run's folder in the sweep folder; null: none made")}
    for name, opt in OPTIONS.items():
        fields[name] = (kinds[type(getattr(defaults, name))], "", f"option --{opt.cli}: {opt.help}")
    return fields | {
        "test_loss": ("number or null", "", "final test loss; null when no epoch finished"),
        "test_accuracy": ("number or null", "percent", "final test accuracy"),
        "best_test_accuracy": ("number or null", "percent", "best test accuracy of any epoch"),
        "best_test_epoch": ("integer or null", "", "the epoch of best_test_accuracy"),
        "val_accuracy": ("number or null", "percent", "final validation accuracy; null without --val-split"),
        "best_val_accuracy": ("number or null", "percent", "best validation accuracy of any epoch"),
        "best_val_epoch": ("integer or null", "", "the epoch of best_val_accuracy"),
        "diverged": ("boolean", "", "the loss turned NaN or infinite"),
        "health": ("string or null", "", f"the run's health at its end: {STATES}; null for a failed run"),
        "health_hint": ("string or null", "", "what its numbers show and what to try; empty when ok"),
        "status": ("string", "", _one_of(WRITTEN[1:])),
        "message": ("string", "", "how it ended, in words (the error of a failed run)"),
        "seconds": ("number", "seconds", "wall-clock time of the run (shared by runs trained together)"),
        "varying": ("string", "", "the options that vary in the sweep, as `norm=zscore lr=0.01`"),
    }


ENVELOPE: dict[str, Field] = {
    "event": (
        "string",
        "",
        "started, progress, epoch, finished (train); eval; run_folder (runs); run, summary (sweep); lr_find",
    ),
    "schema_version": ("integer", "", f"the version of this schema, {SCHEMA_VERSION}"),
    "time": ("string", "ISO 8601", "wall-clock time of the event, with the UTC offset: 2026-11-27T12:03:04.123+01:00"),
    "unix_time": ("number", "seconds", "the same time as seconds since 1970-01-01 UTC"),
}
"""The fields every JSON line starts with."""

SWEEP_ROW = _sweep_row_fields()

JSON_EVENTS: dict[str, dict[str, Field]] = {
    "started": {
        "config": ("object", "", "the run's options, as in config.json (lr a number, hidden a list, ...)"),
        "dataset": ("string", "", "the dataset's name: Fashion-MNIST, MNIST, KMNIST, CIFAR-10"),
        "classes": ("array", "", "the class names, by label"),
        "device": ("string", "", "where it trains: cpu (1 thread), cuda:0 <GPU name>, mps"),
        "model": ("string", "", "the model in one line: 784-256-10 relu"),
        "params": ("integer", "", "trainable parameters"),
        "n_train": ("integer", "samples", "training samples (after the validation split)"),
        "n_val": ("integer", "samples", "validation samples; 0 without --val-split"),
        "n_test": ("integer", "samples", "test samples"),
        "batches_per_epoch": ("integer", "", "batches in one epoch"),
        "norm": ("string", "", "the normalization: none, unit, symmetric, zscore, per-image"),
        "norm_shift": ("array", "pixel values 0..255", "per channel: x_normalized = (x - shift) / scale"),
        "norm_scale": ("array", "pixel values 0..255", "per channel; zscore: the population std of the training split"),
        "threads": ("integer", "", "CPU threads torch uses"),
        "step": ("string", "", "how the training step runs: eager, or graphed (replayed as CUDA graphs)"),
        "step_note": ("string", "", "why the step stayed eager where CUDA graphs were possible; empty otherwise"),
        "run_dir": ("string", "", "the run folder being written"),
    },
    "progress": PROGRESS_DOCS
    | {
        "gpu_memory_bytes": ("integer or null", "bytes", "peak GPU memory allocated by torch; null when not on a GPU"),
    },
    "epoch": METRIC_DOCS
    | {"health": ("object", "", f"the run's training health, judged on the epochs so far: {HEALTH}")},
    "finished": {
        "status": ("string", "", "completed, stopped (Ctrl+C) or diverged"),
        "message": ("string", "", "what happened, in words"),
        "seconds": ("number", "seconds", "training time of the run, evaluation excluded"),
        "epochs_done": ("integer", "", "epochs finished"),
        "run_dir": ("string", "", "the run folder"),
        "final": ("object or null", "", "the last epoch's fields (as in the epoch event); null when none finished"),
        "health": ("object", "", f"the run's training health at the end (as in summary.json): {HEALTH}"),
    },
    "eval": {
        "run_dir": ("string", "", "the run folder evaluated"),
        "status": ("string", "", f"how the run ended: {_one_of((*ENDED, Status.RUNNING))}"),
        "epochs_done": ("integer", "", "complete epochs: model.pt holds the weights after the last one"),
        "diverged": ("boolean", "", "the run diverged or its weights give a non-finite loss (exit code 1)"),
        "test_loss": ("number or null", "", "test loss of the saved model; null when not finite"),
        "test_accuracy": ("number or null", "percent", "test accuracy of the saved model, 0..100; null: no model"),
        "recorded_test_accuracy": ("number or null", "percent", "the test accuracy recorded at training"),
        "seconds": ("number or null", "seconds", "evaluation time; null when there was no model to evaluate"),
    },
    "run_folder": {
        "run": ("string", "", "the run folder, relative to the runs folder listed"),
        "path": ("string", "", "the run folder's path"),
        "status": ("string", "", _one_of((*ENDED, Status.RUNNING, Status.BROKEN))),
        "reason": ("string or null", "", "why a broken folder cannot be read; null otherwise (and then the rest)"),
        "message": ("string or null", "", "how the run ended, in words"),
        "health": ("object or null", "", f"summary.json's health (ok for a run saved without one): {HEALTH}"),
        "system_peaks": (
            "object or null",
            "",
            "the highest readings of its system.jsonl: `{cpu, rss, ram_used, ram_total, gpus, samples, first, last}`, "
            "units as in the file, `gpus` one `{index, name, util, mem_used, mem_total, temp, power}` per GPU, each "
            "reading only where measured, `first`/`last` the first and last sample's unix time; null: no samples",
        ),
        "epochs_done": ("integer or null", "", "complete epochs"),
        "epochs": ("integer or null", "", "epochs the run was asked for"),
        "final_test_accuracy": ("number or null", "percent", "test accuracy after the last complete epoch"),
        "final_test_loss": ("number or null", "", "test loss after the last complete epoch; null when not finite"),
        "best_test_accuracy": ("number or null", "percent", "the best epoch's test accuracy (by validation, if any)"),
        "best_epoch": ("integer or null", "", "the best epoch"),
        "config": ("object or null", "", "the run's options, as in config.json"),
    },
    "run": SWEEP_ROW,
    "summary": {
        "ranked_by": ("string", "", "best_val_accuracy, or best_test_accuracy when a run has no validation split"),
        "best": ("string or null", "", "the recommended run's folder: the best healthy run; null when none is healthy"),
        "not_ranked": (
            "string or null",
            "",
            "an unhealthy run that scored above the best, in one line (`... scored 79.53% (test) but its loss "
            "exploded: not ranked`); null when none did",
        ),
        "sweep_dir": ("string", "", "the sweep folder"),
        "runs": (
            "array",
            "",
            "every finished run (the run event's fields after the first four), best first: healthy runs, then "
            "unhealthy ones (fmtui.ranking)",
        ),
    },
    "lr_find": {
        "config": ("object", "", "the options it trained with, as in config.json (its lr, epochs and schedule unused)"),
        "device": ("string", "", "where it trained: cpu (1 thread), cuda:0 <GPU name>, mps"),
        "model": ("string", "", "the model in one line: 784-256-10 relu"),
        "start_lr": ("number", "", "the first learning rate of the range"),
        "end_lr": ("number", "", "the last learning rate of the range"),
        "max_steps": ("integer", "", "the most steps, first learning rate to last"),
        "status": ("string", "", "completed (the loss blew up, or the range ended) or stopped (Ctrl+C)"),
        "message": ("string", "", "how the search ended, in words"),
        "suggested_lr": ("number or null", "", "where the smoothed loss falls fastest; null: no suggestion (exit 1)"),
        "min_loss_lr": ("number or null", "", "the learning rate at the smoothed loss's minimum"),
        "min_loss_lr_over_10": ("number or null", "", "min_loss_lr / 10, the usual rule of thumb"),
        "steps": ("integer", "", "steps taken"),
        "seconds": ("number", "seconds", "time of the search, data loading excluded"),
        "csv": ("string", "", "the CSV file the curve was written to (columns step, lr, loss, smoothed)"),
        "curve": (
            "array",
            "",
            'one object per step: `{"step", "lr", "loss", "smoothed"}`, numbers; a loss that is not finite is null',
        ),
    },
}
"""Every --json line: its `event`, then ENVELOPE's fields, then these (docs/events.md is made from this)."""


def json_events_markdown() -> str:
    """JSON_EVENTS as the Markdown tables of docs/events.md."""
    out = []
    for name, fields in {"every line": ENVELOPE, **JSON_EVENTS}.items():
        title = name if name == "every line" else f'`"event": "{name}"`'
        out += [f"### {title}", "", "| field | type | unit | meaning |", "|---|---|---|---|"]
        out += [f"| `{k}` | {kind} | {unit} | {text} |" for k, (kind, unit, text) in fields.items()]
        out.append("")
    return "\n".join(out)

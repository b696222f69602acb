"""The --json event schema, defined once: every line's envelope and each event's fields with their type, unit
and meaning, and the shapes inside them (enums, nested objects). docs/events.md and docs/events.schema.json
(a JSON Schema, draft 2020-12) are made from it by scripts/events_doc.py; fmtui.report writes the lines.

The fields of an epoch line and a progress line are the run folder's own (fmtui.runfolder.schema): a
metrics.jsonl row and live.json's progress. Standard library and fmtui.config only.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

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

HEALTH_FIELDS: dict[str, Field] = {
    "state": ("string", "", f"one of {STATES}, mildest first"),
    "hint": ("string", "", 'what the numbers show and what to try; "" when ok'),
}
"""The health object's fields."""

CURVE_POINT: dict[str, Field] = {
    "step": ("integer", "", "the step, 1-based"),
    "lr": ("number", "", "the learning rate of the step"),
    "loss": ("number or null", "", "the batch's loss; null when not finite"),
    "smoothed": ("number or null", "", "the smoothed loss (bias-corrected moving average); null when not finite"),
}
"""One point of the lr finder's curve (lr_find's `curve`)."""

STUDY_TRIAL: dict[str, Field] = {
    "trial": ("integer", "", "the trial's number in the study"),
    "val_accuracy": ("number or null", "percent", "validation accuracy after its last epoch (the objective)"),
    "test_accuracy": ("number or null", "percent", "test accuracy after its last epoch"),
    "params": ("object", "", "the parameters it was given, by name"),
    "run": ("string or null", "", "its run folder in the study folder"),
}
"""A complete trial in the tune study line (`ranked`, and `best` with its `command`)."""
BEST_TRIAL: dict[str, Field] = STUDY_TRIAL | {
    "command": ("string", "", "the command line that trains it alone (fmtui train --no-ui ...)")
}

FINISHED_STATUSES = (Status.COMPLETED, Status.STOPPED, Status.DIVERGED)
"""How a trained run ends (the engine's Finished)."""


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
        "started, progress, epoch, finished (train); eval; run_folder (runs); run, summary (sweep); lr_find; "
        "trial, study (tune)",
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
        "final": (
            "object or null",
            "",
            "the last epoch's fields, as in the epoch event (its health included); null when none finished",
        ),
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
        "pruned_at": ("integer or null", "", "a trial its search pruned: the epoch whose report pruned it"),
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
            'one object per step: `{"step", "lr", "loss", "smoothed"}` (a point of the curve, below)',
        ),
    },
    "trial": {
        "study": ("string", "", "the study's name"),
        "trial": ("integer", "", "the trial's number in the study"),
        "state": ("string", "", "complete, pruned or failed"),
        "detail": ("string", "", "how it ended, in words: `pruned at epoch 2: the asha pruner (...)`, an error"),
        "val_accuracy": ("number or null", "percent", "validation accuracy after its last epoch (the objective)"),
        "test_accuracy": ("number or null", "percent", "test accuracy after its last epoch, never ranked on"),
        "params": ("object", "", "the parameters it was given, by name (lr, weight_decay, hidden1, ...)"),
        "run_dir": ("string or null", "", "its run folder; null when it failed before it began"),
        "seconds": ("number", "seconds", "wall-clock time of the trial (shared by trials trained stacked)"),
        "retry_of": ("integer or null", "", "the trial it runs again (its worker died or was stopped)"),
        "worker": ("string", "", "the worker that trained it: host-pid-id"),
        "best_trial": ("integer or null", "", "the best complete trial of the study so far"),
        "best_val_accuracy": ("number or null", "percent", "that trial's validation accuracy"),
    },
    "study": {
        "study": ("string", "", "the study's name"),
        "study_dir": ("string", "", "the study's folder (its trials' run folders, study.json)"),
        "planned": ("integer", "", "the trials the study plans, over all its workers"),
        "complete": ("integer", "", "trials complete"),
        "pruned": ("integer", "", "trials pruned"),
        "failed": ("integer", "", "trials failed (a trial queued again for a dead or stopped worker counts too)"),
        "running": ("integer", "", "trials other workers train now"),
        "queued": ("integer", "", "trials queued again, waiting for a worker"),
        "ranked": ("array", "", "every complete trial, best first (a trial of a study, below)"),
        "best": ("object or null", "", "the best trial, as in ranked, and its command (the best trial, below)"),
    },
}
"""Every --json line: its `event`, then ENVELOPE's fields, then these (docs/events.md is made from this)."""


NESTED: dict[str, dict[str, Field]] = {
    "health": HEALTH_FIELDS,
    "a point of lr_find's curve": CURVE_POINT,
    "a trial of a study": STUDY_TRIAL,
    "the best trial": BEST_TRIAL,
}
"""The objects inside the lines that docs/events.md lists field by field (config is config.json's)."""


def json_events_markdown() -> str:
    """JSON_EVENTS (and the NESTED objects) as the Markdown tables of docs/events.md."""
    out = []
    tables = {"every line": ENVELOPE, **{f'`"event": "{k}"`': v for k, v in JSON_EVENTS.items()}}
    tables |= {f"inside: {name}": fields for name, fields in NESTED.items()}
    for title, fields in tables.items():
        out += [f"### {title}", "", "| field | type | unit | meaning |", "|---|---|---|---|"]
        out += [f"| `{k}` | {kind} | {unit} | {text} |" for k, (kind, unit, text) in fields.items()]
        out.append("")
    return "\n".join(out)


# --- the JSON Schema (docs/events.schema.json) --------------------------------------------------------------

TIME_PATTERN = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$"
"""The envelope's `time`: local time to the millisecond, with the UTC offset written with a colon."""


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{name}"}


def _choices(name: str) -> list[str]:
    return list(OPTIONS[name].choices)


def _option_shapes() -> dict[str, dict[str, Any]]:
    """The options' shapes (in config objects and sweep rows): their choices (a yes/no flag is a boolean),
    and hidden's sizes."""
    shapes: dict[str, dict[str, Any]] = {
        n: {"enum": _choices(n)} for n, o in OPTIONS.items() if o.choices and not o.flag
    }
    return shapes | {"hidden": {"items": {"type": "integer"}}}


def _shapes() -> dict[str, dict[str, dict[str, Any]]]:
    """What the types of JSON_EVENTS do not say, by event and field: enums, array items, nested objects."""
    statuses = {
        "finished": FINISHED_STATUSES,
        "eval": (*ENDED, Status.RUNNING),
        "run_folder": (*ENDED, Status.RUNNING, Status.BROKEN),
        "run": WRITTEN[1:],
        "lr_find": (Status.COMPLETED, Status.STOPPED),
    }
    shapes: dict[str, dict[str, dict[str, Any]]] = {
        "": {"schema_version": {"const": SCHEMA_VERSION}, "time": {"pattern": TIME_PATTERN}},
        "started": {
            "config": _ref("config"),
            "classes": {"items": {"type": "string"}},
            "norm": {"enum": _choices("norm")},
            "norm_shift": {"items": {"type": "number"}},
            "norm_scale": {"items": {"type": "number"}},
            "step": {"enum": ["eager", "graphed"]},
        },
        "epoch": {"health": _ref("health")},
        "finished": {"final": _ref("epoch_fields"), "health": _ref("health")},
        "run_folder": {"health": _ref("health"), "config": _ref("config")},
        "run": _option_shapes() | {"health": {"enum": list(HEALTH_STATES)}},
        "summary": {
            "ranked_by": {"enum": ["best_val_accuracy", "best_test_accuracy"]},
            "runs": {"items": _ref("sweep_row")},
        },
        "lr_find": {"config": _ref("config"), "curve": {"items": _ref("curve_point")}},
        "trial": {"state": {"enum": ["complete", "pruned", "failed"]}},
        "study": {"ranked": {"items": _ref("study_trial")}, "best": _ref("best_trial")},
    }
    for event, allowed in statuses.items():
        shapes.setdefault(event, {})["status"] = {"enum": [str(s) for s in allowed]}
    return shapes


def _property(kind: str, unit: str, text: str, shape: dict[str, Any]) -> dict[str, Any]:
    """One field: its type ("number or null" -> ["number", "null"]), its meaning and unit, and its shape."""
    base, nullable = kind.removesuffix(" or null"), kind.endswith(" or null")
    described = {"description": f"{text} [{unit}]" if unit else text}
    if "$ref" in shape:  # a nested object: the definition says its type
        return described | ({"anyOf": [shape, {"type": "null"}]} if nullable else shape)
    out = described | {"type": [base, "null"] if nullable else base} | shape
    if nullable and "enum" in shape:
        out["enum"] = [*shape["enum"], None]
    return out


def _object(fields: dict[str, Field], shapes: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A strict object: every field listed is required, and no other field may appear."""
    shapes = shapes or {}
    props = {k: _property(kind, unit, text, shapes.get(k, {})) for k, (kind, unit, text) in fields.items()}
    return {"type": "object", "properties": props, "required": list(fields), "additionalProperties": False}


def _config_fields() -> dict[str, Field]:
    """config.json's options (RunConfig.to_dict), typed by their defaults."""
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string", tuple: "array"}
    defaults = RunConfig()
    fields: dict[str, Field] = {}
    for f in dataclasses.fields(RunConfig):
        if f.name in OPTIONS:
            fields[f.name] = (
                kinds[type(getattr(defaults, f.name))],
                "",
                f"--{OPTIONS[f.name].cli}: {OPTIONS[f.name].help}",
            )
        else:
            fields[f.name] = ("string or null", "", "--data-dir as given; null: $FMTUI_DATA_DIR or the user cache")
    return fields


def json_schema() -> dict[str, Any]:
    """The --json lines as a JSON Schema (draft 2020-12): one definition per event, chosen by `event`, each
    strict (every documented field required, no other allowed) for this schema_version."""
    shapes = _shapes()
    defs = {
        name: _object(ENVELOPE | fields, shapes[""] | {"event": {"const": name}} | shapes.get(name, {}))
        for name, fields in JSON_EVENTS.items()
    }
    defs |= {
        "health": _object(HEALTH_FIELDS, {"state": {"enum": list(HEALTH_STATES)}}),
        "config": _object(_config_fields(), _option_shapes()),
        "epoch_fields": _object(JSON_EVENTS["epoch"], shapes["epoch"]),
        "sweep_row": _object(SWEEP_ROW, shapes["run"]),
        "curve_point": _object(CURVE_POINT),
        "study_trial": _object(STUDY_TRIAL),
        "best_trial": _object(BEST_TRIAL),
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"fmtui --json events, schema_version {SCHEMA_VERSION}",
        "description": (
            "One JSON object per line of `fmtui train|eval|runs|sweep|lr-find|tune --json`; see docs/events.md. "
            "Made by scripts/events_doc.py from fmtui/events_schema.py. Strict for this version: a reader "
            "that must accept a later fmtui's lines should ignore fields it does not know."
        ),
        "type": "object",
        "required": ["event"],
        "properties": {"event": {"enum": list(JSON_EVENTS)}},
        "allOf": [{"if": {"properties": {"event": {"const": name}}}, "then": _ref(name)} for name in JSON_EVENTS],
        "$defs": defs,
    }


def json_schema_text() -> str:
    """docs/events.schema.json's text."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"

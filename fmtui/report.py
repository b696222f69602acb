"""All text made for people from what a run reports: epoch lines, the closing line, JSON lines, the sweep
table, durations and rates, eval's lines and `fmtui runs`' table.

The headless CLI, the TUI and the sweep all print through these functions, so they say the same thing.
No torch, textual or click here: formatting a run must not need the engine or a user interface. Exit codes
and error lines are fmtui.errors'; the --json schema is fmtui.events_schema's; every string read from a run
folder is shown through fmtui.text.safe_text.
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmtui.config import cli_name, format_value
from fmtui.errors import ExitCode, error_message  # noqa: F401  (their old home: re-exported for older imports)
from fmtui.events import BatchProgress, EpochEnd, Event, Finished, Health, Started
from fmtui.events_schema import JSON_EVENTS, SCHEMA_VERSION
from fmtui.ranking import not_ranked_line, summary_fields, verdict
from fmtui.runfolder.read import BrokenRun, Run, RunRecord
from fmtui.runfolder.schema import PROGRESS_FIELDS, Status
from fmtui.sysmetrics import read_peaks
from fmtui.text import plural, safe_text

if TYPE_CHECKING:  # the finder imports torch; its events are only read here
    from fmtui.lrfind import Finished as LrFinished
    from fmtui.lrfind import Started as LrStarted


def fmt_duration(seconds: float) -> str:
    """0:42, 12:03 or 1:02:03."""
    s = max(int(round(seconds)), 0)
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_rate(per_s: float) -> str:
    """Samples per second, short: 950, 15.2k, 1.3M."""
    if per_s >= 1e6:
        return f"{per_s / 1e6:.1f}M"
    return f"{per_s / 1e3:.1f}k" if per_s >= 1e4 else f"{per_s:,.0f}"


# --- one run ------------------------------------------------------------------------------------


def header_line(ev: Started) -> str:
    """What is trained on what: data, device, model, normalization, optimizer, batch and epochs."""
    cfg = ev.config
    split = f"{ev.n_train:,} train" + (f" / {ev.n_val:,} val" if ev.n_val else "") + f" / {ev.n_test:,} test"
    return (
        f"{ev.dataset} ({split}) on {ev.device}{_step(ev)} | {ev.model}, {ev.params:,} parameters | "
        f"{ev.norm.describe()} | {cfg.optimizer} lr {cfg.lr:g}, batch {cfg.batch_size}, {plural(cfg.epochs, 'epoch')}"
    )


def _step(ev: Started) -> str:
    """', CUDA graphs' for a graphed step; why not, for an eager step on a GPU; nothing on the CPU."""
    if ev.step == "graphed":
        return ", CUDA graphs"
    return f", eager step ({ev.step_note})" if ev.step_note else ""


def epoch_line(ev: EpochEnd) -> str:
    """`Epoch [1/5], Loss: 0.7866, Accuracy: 74.73%, Test Loss: 0.5817, Test Accuracy: 79.18%` (+ val, time)."""
    line = (
        f"Epoch [{ev.epoch}/{ev.epochs}], Loss: {ev.train_loss:.4f}, Accuracy: {ev.train_accuracy:.2f}%, "
        f"Test Loss: {ev.test_loss:.4f}, Test Accuracy: {ev.test_accuracy:.2f}%"
    )
    if ev.val_accuracy is not None:
        line += f", Val Loss: {ev.val_loss:.4f}, Val Accuracy: {ev.val_accuracy:.2f}%"
    line += f", Time: {ev.seconds:.2f}s"
    return line if ev.health.ok else f"{line}, Health: {ev.health.state}"


def health_line(health: Health) -> str:
    """`Health: exploding: train loss 1879 is 816x chance level ...; inputs unnormalized ... -> try --norm zscore`."""
    return f"Health: {health.state}: {health.hint}"


OUTCOME_LABELS = {Status.COMPLETED: "Done", Status.STOPPED: "Stopped", Status.DIVERGED: "Diverged"}
"""How a run's ending is named for people, by its Finished status."""


def outcome(status: str, message: str, label: str | None = None) -> str:
    """`Done: Finished 5 epochs...`, `Stopped during epoch 3...`, `Diverged at epoch 1, batch 3...`.

    The engine's message often starts with the status word already ("stopped during...", "diverged at..."):
    then it is the label itself, capitalized, rather than "Stopped: stopped during...". `label` replaces the
    status word (the Train pane's banner says DIVERGED)."""
    label = label or OUTCOME_LABELS.get(status, status.capitalize())
    first = message.split(" ", 1)[0].lower()
    if first == status or first == OUTCOME_LABELS.get(status, "").lower():
        return label + message[len(first) :]
    return f"{label}: {message[:1].upper()}{message[1:]}" if message else label


def closing_line(ev: Finished, run_dir: Path | None) -> str:
    """`Done: Finished 5 epochs in 12.3s of training. Run saved in runs/...` (Stopped, Diverged with a hint);
    a run that is not healthy says so: `Done (exploding): Finished 3 epochs ...; <hint>. Run saved in ...`."""
    unhealthy = ev.status != Status.DIVERGED and not ev.health.ok
    label = f"{OUTCOME_LABELS.get(ev.status, ev.status.capitalize())} ({ev.health.state})" if unhealthy else None
    text = outcome(ev.status, ev.message, label)
    if ev.status == Status.DIVERGED:
        hint = ev.health.hint.removeprefix(ev.message + "; ") if ev.health.state == "diverged" else ""
        text = f"{text}; {hint or 'try a smaller --lr or a normalization'}"
    elif unhealthy:
        text = f"{text}; {ev.health.hint}"
    return f"{text}. Run saved in {run_dir}"


def run_status(run: Run) -> str:
    """A run's status with its health where that is not ok: `completed`, `exploding`, `stopped, at chance`; a
    running run whose writer holds its lock but went quiet: `running, paused?` (its message says for how long);
    a search's trial that its pruner stopped: `stopped, pruned at epoch 2`."""
    status = run.status
    if isinstance(run, RunRecord) and status == Status.RUNNING and run.writer is not None and run.writer.quiet:
        return f"{status}, paused?"
    if isinstance(run, RunRecord) and run.pruned_at is not None:
        return f"{status}, pruned at epoch {run.pruned_at}"
    health = run.health if isinstance(run, RunRecord) else Health()
    if health.ok or health.state == status:
        return status
    return health.state if status == Status.COMPLETED else f"{status}, {health.state}"


def eval_text(summary: str, loss: float, accuracy: float, recorded: float | None) -> str:
    """The config's summary, then the test loss and accuracy of a re-evaluated run (and the recorded one)."""
    note = f" (recorded at training: {recorded:.2f}%)" if recorded is not None else ""
    return f"{summary}\nTest Loss: {loss:.4f}, Test Accuracy: {accuracy:.2f}%{note}"


def eval_note(status: str, message: str, epochs_done: int) -> str:
    """What eval says before evaluating a run that did not end normally ('' for the others)."""
    saved = f"evaluating model.pt, the weights of its last complete epoch ({epochs_done})"
    if status == Status.INTERRUPTED:
        return f"Interrupted: {safe_text(message)}; {saved}"
    if status == Status.RUNNING:
        return f"Running: still training ({epochs_done} epochs done); {saved}"
    return ""


def eval_diverged(message: str, epochs_done: int | None = None) -> str:
    """eval's line for a diverged run (exit code 1). epochs_done: the complete epochs whose weights model.pt
    holds (saved before the loss turned non-finite); 0 = it saved none; None = unknown (weights evaluated)."""
    what = safe_text(message) or "the loss is not finite"
    if epochs_done == 0:
        return f"Diverged: {what}; it saved no model: it diverged before its first complete epoch"
    if epochs_done is not None:
        return f"Diverged: {what}; model.pt holds the weights of epoch {epochs_done}, before the loss turned non-finite"
    return f"Diverged: {what}; the saved weights are not a trained model"


# --- run folders: fmtui runs ---------------------------------------------------------------


def run_facts(run: Run, key: str) -> dict[str, Any]:
    """One run folder for `runs --json` (the run_folder line): numbers as numbers, None where there is none;
    a broken folder has its reason and None for the rest."""
    facts: dict[str, Any] = {"run": key, "path": str(run.path), "status": run.status}
    if isinstance(run, BrokenRun):
        return {**facts, "reason": run.reason, **dict.fromkeys(list(JSON_EVENTS["run_folder"])[4:])}
    best = run.best_row or {}
    final_loss = run.metrics[-1]["test_loss"] if run.metrics else None
    return {
        **facts,
        "reason": None,
        "message": run.message,
        "health": run.health.to_dict(),
        "system_peaks": read_peaks(run.path),
        "epochs_done": run.epochs_done,
        "epochs": run.config.epochs,
        "final_test_accuracy": run.final_accuracy,
        "final_test_loss": final_loss if final_loss is not None and math.isfinite(final_loss) else None,
        "best_test_accuracy": best.get("test_accuracy"),
        "best_epoch": best.get("epoch"),
        "config": run.config.to_dict(),
        "pruned_at": run.pruned_at,
    }


def runs_table(runs: list[Run], keys: list[str]) -> str:
    """One line per run folder: folder, status, epoch k/N, final and best test accuracy, config (or why broken)."""
    rows = []
    for run, key in zip(runs, keys):
        if isinstance(run, BrokenRun):
            rows.append([key, Status.BROKEN, "", "", "", run.reason])
            continue
        best = run.best_row
        rows.append(
            [
                key,
                run_status(run),
                f"epoch {run.epochs_done}/{run.config.epochs}",
                f"final {_pct(run.final_accuracy)}",
                f"best {_pct(best['test_accuracy'])} (epoch {best['epoch']})" if best else "best -",
                run.config.summary(),
            ]
        )
    rows = [[safe_text(c) for c in row] for row in rows]
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[5] for r in rows)


def json_line(event: str, fields: dict[str, Any], now: float | None = None) -> str:
    """One line of --json output: the envelope (kind, schema version, wall-clock time), then the fields."""
    now = round(time.time() if now is None else now, 3)
    stamp = datetime.fromtimestamp(now).astimezone().isoformat(timespec="milliseconds")
    head = {"event": event, "schema_version": SCHEMA_VERSION, "time": stamp, "unix_time": now}
    return json.dumps(head | fields)


def event_json(ev: Event, run_dir: Path | None) -> str:
    """The --json line of one training event."""
    match ev:
        case Started():
            return json_line(
                "started",
                {
                    "config": ev.config.to_dict(),
                    "dataset": ev.dataset,
                    "classes": list(ev.classes),
                    "device": ev.device,
                    "model": ev.model,
                    "params": ev.params,
                    "n_train": ev.n_train,
                    "n_val": ev.n_val,
                    "n_test": ev.n_test,
                    "batches_per_epoch": ev.batches_per_epoch,
                    "norm": ev.norm.norm,
                    "norm_shift": list(ev.norm.shift),
                    "norm_scale": list(ev.norm.scale),
                    "threads": ev.threads,
                    "step": ev.step,
                    "step_note": ev.step_note,
                    "run_dir": str(run_dir),
                },
            )
        case BatchProgress():
            fields = {k: getattr(ev, k) for k in PROGRESS_FIELDS}
            fields["loss"] = ev.loss if math.isfinite(ev.loss) else None  # strict JSON has no NaN
            return json_line("progress", fields | {"gpu_memory_bytes": ev.gpu_memory or None})
        case EpochEnd():
            return json_line("epoch", _epoch_fields(ev))
        case Finished():
            return json_line(
                "finished",
                {
                    "status": ev.status,
                    "message": ev.message,
                    "seconds": ev.seconds,
                    "epochs_done": len(ev.history),
                    "run_dir": str(run_dir),
                    "final": _epoch_fields(ev.history[-1]) if ev.history else None,
                    "health": ev.health.to_dict(),
                },
            )
    raise TypeError(f"not a training event: {type(ev).__name__}")


def _epoch_fields(ev: EpochEnd) -> dict[str, Any]:
    """An epoch line's fields (after the envelope), also finished's `final`: the metrics, then the health."""
    return ev.metrics() | {"health": ev.health.to_dict()}


# --- sweeps -------------------------------------------------------------------------------------


def sweep_header(runs: int, varying: list[str], summary: str, sweep_dir: Path, together: int) -> str:
    """`Sweep of 8 runs over norm, lr (<config>) into <folder>; 8 of them train together as stacked models`."""
    note = f"; {together} of them train together as stacked models" if together else ""
    return (
        f"Sweep of {plural(runs, 'run')} over {', '.join(varying) or 'one config'} ({summary}) into {sweep_dir}{note}"
    )


def sweep_line(i: int, n: int, row: dict) -> str:
    """`[3/8] norm=zscore lr=0.01: test accuracy 84.12%, test loss 0.4521, 12.3s` (+ [status] unless completed,
    with the error of a failed run)."""
    loss = "-" if row["test_loss"] is None else format(row["test_loss"], ".4g")
    status = "" if row["status"] == Status.COMPLETED else f" [{row['status']}]"
    if row["status"] == Status.ERROR:
        status = f" [error: {row.get('message') or 'unknown'}]"
    if row.get("health") not in (None, "ok", row["status"]):
        status += f" [{row['health']}]"
    return (
        f"[{i}/{n}] {_name(row)}: test accuracy {_pct(row['test_accuracy'])}, "
        f"test loss {loss}, {row['seconds']:.1f}s{status}"
    )


def sweep_stopped(finished: int, total: int) -> str:
    """What a Ctrl+C left of a sweep: `finished` runs completed or diverged (a stopped run keeps its epochs)."""
    if not finished:
        return f"Stopped before any of the {plural(total, 'run')} finished."
    return f"Stopped after {finished} of {plural(total, 'run')} finished; finished runs are kept."


def sweep_failed(failed: list[dict], total: int, summary: Path) -> str:
    """`Error: 1 of 3 runs failed: lr=0.02 (RuntimeError: ...); every run's status is in <summary.csv>`."""
    names = ", ".join(_name(r) for r in failed[:3]) + (f" and {len(failed) - 3} more" if len(failed) > 3 else "")
    return (
        f"Error: {len(failed)} of {plural(total, 'run')} failed: {names} ({failed[0].get('message') or 'unknown'}); "
        f"every run's status is in {summary}"
    )


def _name(row: dict) -> str:
    return row["varying"] or row["run"] or "the run"


def run_json(row: dict) -> str:
    """The JSON line of one finished run of a sweep."""
    return json_line("run", row)


def summary_json(ranked: list[dict], by: str, sweep_dir: Path) -> str:
    """The closing JSON line of a sweep: every run, best first."""
    choice = summary_fields(verdict(ranked))
    return json_line("summary", {"ranked_by": by, **choice, "sweep_dir": str(sweep_dir), "runs": ranked})


def format_table(ranked: list[dict], by: str, columns: list[str]) -> str:
    """A plain-text table of sweep rows (best first, ranked by `by`), for terminals and logs alike.

    `columns` name the RunConfig fields that vary between the runs (shown under their option names)."""
    by_val = by == "best_val_accuracy"
    cols = (
        [cli_name(c) for c in columns]
        + (["val best"] if by_val else [])
        + ["test final", "test best", "best ep", "health", "seconds"]
    )
    body = []
    for r in ranked:
        cells = [format_value(r[c]) for c in columns] + ([_pct(r["best_val_accuracy"])] if by_val else [])
        cells += [
            _pct(r["test_accuracy"]),
            _pct(r["best_test_accuracy"]),
            str(r["best_test_epoch"] or "-"),
            str(Status.ERROR)
            if r["status"] == Status.ERROR
            else r.get("health") or ("diverged" if r["diverged"] else "ok"),
            f"{r['seconds']:.1f}",
        ]
        body.append(cells)
    widths = [max(len(c), *(len(row[i]) for row in body)) for i, c in enumerate(cols)] if body else list(map(len, cols))

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i >= len(columns) else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [line(cols), line(["-" * w for w in widths])] + [line(b) for b in body]
    choice = verdict(ranked)  # only a healthy run is the best (fmtui.ranking)
    if choice.best is not None:
        out.append(_choice_line(choice.best, by_val))
    elif choice.passed_over is not None:
        out.append("Best: none (no run with a result is healthy; see the health column)")
    if choice.passed_over is not None:
        out.append(not_ranked_line(choice.passed_over, by, _name(choice.passed_over)))
    return "\n".join(out)


def _choice_line(best: dict, by_val: bool) -> str:
    name = _name(best)
    if by_val:
        return (
            f"Chosen by validation accuracy: {name} -> test accuracy "
            f"{_pct(best['test_accuracy'])} (val {_pct(best['best_val_accuracy'])})"
        )
    return f"Best: {name} (ranked on the test set; use --val-split for an honest choice)"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


# --- the learning-rate finder (fmtui.lrfind) ----------------------------------------------------------


def lr_find_header(ev: LrStarted) -> str:
    """What the finder trains: `lr finder on Fashion-MNIST, cpu (1 thread) | 784-256-10 relu | norm symmetric | ...`."""
    cfg = ev.config
    return (
        f"lr finder on {ev.dataset}, {ev.device} | {ev.model} | norm {cfg.norm} | {cfg.optimizer}, batch "
        f"{cfg.batch_size}, seed {cfg.seed}: fresh weights, lr {ev.start_lr:g} to {ev.end_lr:g} in at most {ev.steps} steps"
    )


def lr_find_text(ev: LrFinished, csv_path: Path | None) -> str:
    """The suggestion (or why there is none), how the search ended, and where the curve is."""
    if ev.suggested_lr is None or ev.min_over_10 is None:
        first = "No suggestion: the smoothed loss never fell (too few steps, or a range that starts too high)"
    else:
        first = (
            f"Suggested learning rate: {ev.suggested_lr:.2g} (steepest relative fall of the smoothed loss); "
            f"minimum / 10: {ev.min_over_10:.2g} (lowest loss at lr {ev.min_loss_lr:.2g})"
        )
    status = ev.message[0].upper() + ev.message[1:]
    return f"{first}\n{status}." + (f" Curve: {csv_path}" if csv_path else "")


def lr_find_json(started: LrStarted, ev: LrFinished, csv_path: Path) -> str:
    """The finder's --json line (lr_find): what it trained, the suggestion, how it ended, and the curve
    (non-finite losses as null)."""

    def num(x: float) -> float | None:
        return x if math.isfinite(x) else None

    facts = {"config": started.config.to_dict(), "device": started.device, "model": started.model}
    facts |= {"start_lr": started.start_lr, "end_lr": started.end_lr, "max_steps": started.steps}
    return json_line(
        "lr_find",
        facts
        | {
            "status": ev.status,
            "message": ev.message,
            "suggested_lr": ev.suggested_lr,
            "min_loss_lr": ev.min_loss_lr,
            "min_loss_lr_over_10": ev.min_over_10,
            "steps": len(ev.lrs),
            "seconds": ev.seconds,
            "csv": str(csv_path),
            "curve": [
                {"step": i, "lr": lr, "loss": num(loss), "smoothed": num(s)}
                for i, (lr, loss, s) in enumerate(zip(ev.lrs, ev.losses, ev.smoothed), 1)
            ],
        },
    )

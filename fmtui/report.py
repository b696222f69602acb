"""All text made for people from what a run reports: epoch lines, the closing line, JSON lines, the sweep
table, durations and rates, error lines, and the exit code a command returns.

The headless CLI, the TUI and the sweep all print through these functions, so they say the same thing.
No torch, textual or click here: formatting a run must not need the engine or a user interface.
"""

from __future__ import annotations

import json
import math
from enum import IntEnum
from pathlib import Path
from typing import Any

from fmtui.config import ConfigError
from fmtui.events import BatchProgress, EpochEnd, Event, Finished, Started
from fmtui.runs import BrokenRun, Run, RunError


class ExitCode(IntEnum):
    """What a `fmtui --no-ui` command returns to the shell."""

    OK = 0
    """The run completed, or the command did what it was asked."""
    FAILED = 1
    """The run diverged or failed on the device (out of memory, ...); its metrics so far are saved."""
    USAGE = 2
    """Bad input (an option, a missing or broken dataset, a folder that is no run): nothing was trained."""
    INTERRUPTED = 130
    """Stopped by Ctrl+C (128 + SIGINT, as shells count it); the finished epochs or runs are kept."""

    @classmethod
    def of_status(cls, status: str) -> ExitCode:
        """The code of a run that ended with Finished(status): completed, stopped, or anything else (diverged)."""
        return {"completed": cls.OK, "stopped": cls.INTERRUPTED}.get(status, cls.FAILED)


def plural(n: int, word: str) -> str:
    """`1 epoch`, `2 epochs`."""
    return f"{n} {word}{'s' if n != 1 else ''}"


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
    return line + f", Time: {ev.seconds:.2f}s"


OUTCOME_LABELS = {"completed": "Done", "stopped": "Stopped", "diverged": "Diverged"}
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
    """`Done: Finished 5 epochs in 12.3s of training. Run saved in runs/...` (Stopped, Diverged with a hint)."""
    text = outcome(ev.status, ev.message)
    if ev.status == "diverged":
        text = f"{text}; try a smaller --lr or a normalization"
    return f"{text}. Run saved in {run_dir}"


def error_line(message: str, run_dir: Path | None) -> str:
    """`Error: <one line>; metrics so far are in <run folder>`."""
    return f"Error: {message}" + (f"; metrics so far are in {run_dir}" if run_dir else "")


def error_message(exc: BaseException) -> str:
    """One line for the user: our own errors as they are, device errors with a hint, the rest named."""
    name = type(exc).__name__
    text = next(iter(str(exc).strip().splitlines()), "")
    if isinstance(exc, KeyboardInterrupt):
        return "aborted by a second Ctrl+C"
    if isinstance(exc, (ConfigError, RunError)) or name == "DataError":  # fmtui.data imports torch: by name only
        return text
    if name == "OutOfMemoryError":
        return f"out of GPU memory: try a smaller batch size or model ({text[:100]})"
    return f"{name}: {text}" if text else name


def eval_text(summary: str, loss: float, accuracy: float, recorded: float | None) -> str:
    """The config's summary, then the test loss and accuracy of a re-evaluated run (and the recorded one)."""
    note = f" (recorded at training: {recorded:.2f}%)" if recorded is not None else ""
    return f"{summary}\nTest Loss: {loss:.4f}, Test Accuracy: {accuracy:.2f}%{note}"


def eval_note(status: str, message: str, epochs_done: int) -> str:
    """What eval says before evaluating a run that did not end normally ('' for the others)."""
    saved = f"evaluating model.pt, the weights of its last complete epoch ({epochs_done})"
    if status == "interrupted":
        return f"Interrupted: {printable(message)}; {saved}"
    if status == "running":
        return f"Running: still training ({epochs_done} epochs done); {saved}"
    return ""


def eval_diverged(message: str) -> str:
    """eval's closing line for a diverged run (exit code 1): its weights are not a trained model."""
    return f"Diverged: {printable(message) or 'the loss is not finite'}; the saved weights are not a trained model"


# --- run folders: fmtui --no-ui runs ---------------------------------------------------------------


def printable(text: str) -> str:
    """Text from files and folder names, safe for a terminal: control characters shown as escapes."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(text))


def run_facts(run: Run, key: str) -> dict[str, Any]:
    """One run folder for `runs --json`: numbers as numbers, None where there is none."""
    facts: dict[str, Any] = {"run": key, "path": str(run.path), "status": run.status}
    if isinstance(run, BrokenRun):
        return {**facts, "reason": run.reason}
    best = run.best_row or {}
    final_loss = run.metrics[-1]["test_loss"] if run.metrics else None
    return {
        **facts,
        "message": run.message,
        "epochs_done": run.epochs_done,
        "epochs": run.config.epochs,
        "final_test_accuracy": run.final_accuracy,
        "final_test_loss": final_loss if final_loss is not None and math.isfinite(final_loss) else None,
        "best_test_accuracy": best.get("test_accuracy"),
        "best_epoch": best.get("epoch"),
        "config": run.config.to_dict(),
    }


def runs_table(runs: list[Run], keys: list[str]) -> str:
    """One line per run folder: folder, status, epoch k/N, final and best test accuracy, config (or why broken)."""
    rows = []
    for run, key in zip(runs, keys):
        if isinstance(run, BrokenRun):
            rows.append([key, "broken", "", "", "", run.reason])
            continue
        best = run.best_row
        rows.append(
            [
                key,
                run.status,
                f"epoch {run.epochs_done}/{run.config.epochs}",
                f"final {_pct(run.final_accuracy)}",
                f"best {_pct(best['test_accuracy'])} (epoch {best['epoch']})" if best else "best -",
                run.config.summary(),
            ]
        )
    rows = [[printable(c) for c in row] for row in rows]
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[5] for r in rows)


PROGRESS_FIELDS = ("epoch", "epochs", "batch", "batches", "loss", "accuracy", "samples_per_s", "elapsed", "eta", "step")


def event_json(ev: Event, run_dir: Path | None) -> dict[str, Any]:
    """One JSON object per event, for --json."""
    match ev:
        case Started():
            return {
                "event": "started",
                "config": ev.config.to_dict(),
                "dataset": ev.dataset,
                "device": ev.device,
                "model": ev.model,
                "params": ev.params,
                "n_train": ev.n_train,
                "n_val": ev.n_val,
                "n_test": ev.n_test,
                "batches_per_epoch": ev.batches_per_epoch,
                "norm": ev.norm.describe(),
                "step": ev.step,
                "step_note": ev.step_note,
                "run_dir": str(run_dir),
            }
        case BatchProgress():
            return {"event": "progress", **{k: getattr(ev, k) for k in PROGRESS_FIELDS}}
        case EpochEnd():
            return {"event": "epoch", **ev.metrics()}
        case Finished():
            return {
                "event": "finished",
                "status": ev.status,
                "message": ev.message,
                "seconds": ev.seconds,
                "epochs_done": len(ev.history),
                "run_dir": str(run_dir),
                "final": ev.history[-1].metrics() if ev.history else None,
            }
    raise TypeError(f"not a training event: {type(ev).__name__}")


# --- sweeps -------------------------------------------------------------------------------------


def sweep_header(runs: int, varying: list[str], summary: str, sweep_dir: Path, together: int) -> str:
    """`Sweep of 8 runs over norm, lr (<config>) into <folder>; 8 of them train together as stacked models`."""
    note = f"; {together} of them train together as stacked models" if together else ""
    return (
        f"Sweep of {plural(runs, 'run')} over {', '.join(varying) or 'one config'} ({summary}) into {sweep_dir}{note}"
    )


def sweep_line(i: int, n: int, row: dict) -> str:
    """`[3/8] norm=zscore lr=0.01: test accuracy 84.12%, test loss 0.4521, 12.3s` (+ [status] unless completed)."""
    loss = "None" if row["test_loss"] is None else format(row["test_loss"], ".4g")
    status = "" if row["status"] == "completed" else f" [{row['status']}]"
    return (
        f"[{i}/{n}] {row['varying'] or row['run']}: test accuracy {_pct(row['test_accuracy'])}, "
        f"test loss {loss}, {row['seconds']:.1f}s{status}"
    )


def sweep_stopped(done: int, total: int) -> str:
    return f"Stopped after {plural(done, 'run')} of {total}; finished runs are kept."


def run_json(row: dict) -> str:
    """The JSON line of one finished run of a sweep."""
    return json.dumps({"event": "run", **row})


def summary_json(ranked: list[dict], by: str, sweep_dir: Path) -> str:
    """The closing JSON line of a sweep: every run, best first."""
    return json.dumps({"event": "summary", "ranked_by": by, "sweep_dir": str(sweep_dir), "runs": ranked})


def format_table(ranked: list[dict], by: str, columns: list[str]) -> str:
    """A plain-text table of sweep rows (best first, ranked by `by`), for terminals and logs alike.

    `columns` name the options that vary between the runs (the rows' keys for them)."""
    by_val = by == "best_val_accuracy"
    cols = columns + (["val best"] if by_val else []) + ["test final", "test best", "best ep", "diverged", "seconds"]
    body = []
    for r in ranked:
        cells = [str(r[c]) for c in columns] + ([_pct(r["best_val_accuracy"])] if by_val else [])
        cells += [
            _pct(r["test_accuracy"]),
            _pct(r["best_test_accuracy"]),
            str(r["best_test_epoch"] or "-"),
            "yes" if r["diverged"] else "no",
            f"{r['seconds']:.1f}",
        ]
        body.append(cells)
    widths = [max(len(c), *(len(row[i]) for row in body)) for i, c in enumerate(cols)] if body else list(map(len, cols))

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i >= len(columns) else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [line(cols), line(["-" * w for w in widths])] + [line(b) for b in body]
    if ranked:
        out.append(_choice_line(ranked[0], by_val))
    return "\n".join(out)


def _choice_line(best: dict, by_val: bool) -> str:
    name = best["varying"] or best["run"]
    if by_val:
        return (
            f"Chosen by validation accuracy: {name} -> test accuracy "
            f"{_pct(best['test_accuracy'])} (val {_pct(best['best_val_accuracy'])})"
        )
    return f"Best: {name} (ranked on the test set; use --val-split for an honest choice)"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"

"""Run folders: what a training run leaves behind (written by fmtui.recorder, atomically), read back.

    config.json      the RunConfig plus what the engine resolved (device, parameters, normalization)
    metrics.jsonl    one JSON object per finished epoch (and metrics.csv, the same as a table)
    summary.json     status (completed / stopped / diverged), message, final and best metrics
    model.pt         the state_dict, loadable with torch.load(weights_only=True)
    predictions.pt   test-set probabilities and labels, for the error browser without retraining
    mislabeled.csv   wrong test predictions, most confident first

Listing runs (`list_runs`, `read_run`) needs no torch, so the TUI can show them instantly.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from fmtui.config import OPTIONS, RunConfig, cli_name, format_value

METRIC_FIELDS = (
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "test_loss",
    "test_accuracy",
    "seconds",
    "eval_seconds",
    "samples_per_s",
    "lr",
)


def default_runs_dir() -> Path:
    """$FMTUI_RUNS_DIR, else ./runs."""
    return Path(os.environ.get("FMTUI_RUNS_DIR") or "runs")


def atomic_write(path: Path, data: bytes | str, *, sync: bool = True) -> None:
    """Write to a temporary file beside path, then rename over it: readers never see half a file, and a
    failed write (a full disk) leaves the old file as it was.

    The file is created with mode 0666 minus the umask, like any file a program creates (mkstemp's 0600
    would hide run folders from colleagues on a shared machine). sync=True flushes it to the disk before
    the rename, so that after a crash the name holds either the old or the new content.
    """
    raw = data.encode() if isinstance(data, str) else data
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}"
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"no free temporary name beside {path}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def summarize(rows: list[dict]) -> dict:
    """Final and best metrics of a list of epoch rows; best by validation accuracy when there is one."""
    if not rows:
        return {"epochs_done": 0}
    key = "val_accuracy" if rows[-1].get("val_accuracy") is not None else "test_accuracy"
    best = max(rows, key=lambda r: r[key])
    last = rows[-1]
    return {
        "epochs_done": len(rows),
        "final": {k: last.get(k) for k in METRIC_FIELDS},
        "best_by": key,
        "best_epoch": best["epoch"],
        "best": {k: best.get(k) for k in METRIC_FIELDS},
    }


@dataclass
class RunRecord:
    """A run folder as read back from disk (no torch needed)."""

    path: Path
    config: RunConfig
    resolved: dict = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        return self.summary.get("status", "unknown")


def read_run(path: Path) -> RunRecord:
    """Read config.json, metrics.jsonl and summary.json of a run folder; ValueError when it is none."""
    path = Path(path)
    try:
        raw = json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not a fmtui run folder (no readable config.json: {e})") from None
    metrics = []
    if (path / "metrics.jsonl").exists():
        metrics = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines() if line.strip()]
    summary = json.loads((path / "summary.json").read_text()) if (path / "summary.json").exists() else {}
    return RunRecord(path, RunConfig.from_dict(raw), raw.get("resolved", {}), metrics, summary)


def list_runs(base: Path | None = None) -> list[RunRecord]:
    """Every readable run folder under base and in its sweep folders (one level down), newest first."""
    base = Path(base) if base else default_runs_dir()
    if not base.is_dir():
        return []
    folders = []
    for child in base.iterdir():
        if (child / "config.json").is_file():
            folders.append(child)
        elif child.is_dir() and child.name != "exports":
            folders.extend(g for g in child.iterdir() if (g / "config.json").is_file())
    runs = []
    for folder in folders:
        try:
            runs.append(read_run(folder))
        except ValueError:
            continue
    return sorted(runs, key=lambda r: (r.name, str(r.path)), reverse=True)


def load_results(path: Path):
    """The saved test predictions of a run as Results (needs torch)."""
    import torch

    from fmtui.results import Results

    file = Path(path) / "predictions.pt"
    try:
        saved = torch.load(file, weights_only=True)
        return Results.from_probs(saved["probs"], saved["labels"])
    except Exception as e:  # unpickling, a truncated file, missing keys: all mean "not usable predictions"
        raise ValueError(f"{file} holds no readable predictions ({type(e).__name__})") from None


def export_runs(records: list[RunRecord], dest: Path) -> tuple[Path, Path]:
    """Write the selected runs' metrics as one CSV (a row per run and epoch) and one JSON file."""
    dest.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{len(records)}-runs"
    option_names = [cli_name(f) for f in OPTIONS]
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=["run", *option_names, "status", *METRIC_FIELDS], extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for r in records:
        options = {cli_name(f): format_value(getattr(r.config, f)) for f in OPTIONS}
        for row in r.metrics:
            writer.writerow({"run": r.name, **options, "status": r.status, **row})
    csv_path, json_path = dest / f"{stem}.csv", dest / f"{stem}.json"
    atomic_write(csv_path, out.getvalue())
    atomic_write(
        json_path,
        json.dumps(
            [
                {
                    "run": r.name,
                    "path": str(r.path),
                    "config": r.config.to_dict(),
                    "summary": r.summary,
                    "metrics": r.metrics,
                }
                for r in records
            ],
            indent=2,
        ),
    )
    return csv_path, json_path

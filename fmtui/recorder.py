"""Writing run folders: the one recorder that turns engine events into a run folder (see fmtui.runs for
what a folder holds). Torch is imported only to save tensors, when a run has weights to save."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fmtui.config import RunConfig, format_value
from fmtui.events import EpochEnd, Event, Finished, Health, Started
from fmtui.report import error_message
from fmtui.runs import METRIC_FIELDS, atomic_write, summarize


def new_run_dir(base: Path, cfg: RunConfig) -> Path:
    """base/<date-time>-<dataset>-<model>-<norm>-lr<lr>[-N], created and unique."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return _new_dir(base, f"{stamp}-{cfg.dataset}-{cfg.model}-{cfg.norm}-lr{format_value(cfg.lr)}")


def new_sweep_dir(base: Path) -> Path:
    """base/sweep-<date-time>[-N], created and unique (two sweeps started in the same second get two)."""
    return _new_dir(base, f"sweep-{time.strftime('%Y%m%d-%H%M%S')}")


def _new_dir(base: Path, name: str) -> Path:
    """Create base/name, or base/name-1, -2, ... when it exists: never a folder someone else made."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    base.mkdir(parents=True, exist_ok=True)
    for i in range(1000):
        path = base / (name if i == 0 else f"{name}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a new folder {name} in {base}")


def _torch_bytes(obj: Any) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def metrics_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=METRIC_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


class RunRecorder:
    """Events in, run folders out: the one place that makes a run's folder, keeps it up to date and
    records how the run ended, for the headless CLI, the TUI worker and sweeps alike.

    A run's folder is made by `make_folder(config)` when its Started event arrives (data and model
    are ready, so the run really begins; bad input leaves no folder behind). Several runs trained
    together (a stacked sweep group) are told apart by their index. Used as a context manager, an
    exception that ends training is recorded as the error of every run that had not finished, and
    passes on.
    """

    def __init__(self, make_folder: Callable[[RunConfig], Path]):
        self.make_folder = make_folder
        self.writers: dict[int, RunWriter] = {}
        self.open: set[int] = set()
        """Runs started and not finished."""

    def path(self, run: int = 0) -> Path | None:
        """The run's folder, once it has started."""
        writer = self.writers.get(run)
        return writer.path if writer else None

    def handle(self, event: Event, run: int = 0) -> Path | None:
        """Record one event of a run; return the run's folder (None before it started)."""
        if isinstance(event, Started):
            self.writers[run] = RunWriter(self.make_folder(event.config), event.config)
            self.open.add(run)
        elif isinstance(event, Finished):
            self.open.discard(run)
        writer = self.writers.get(run)
        if writer is not None:
            writer.handle(event)
        return self.path(run)

    def fail(self, message: str) -> None:
        """Record an error that ended the runs still open (the metrics so far stay)."""
        for run in sorted(self.open):
            self.writers[run].fail(message)
        self.open.clear()

    def __enter__(self) -> RunRecorder:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, (Exception, KeyboardInterrupt)):  # not GeneratorExit: a consumer stopped listening
            self.fail(error_message(exc))


class RunWriter:
    """Feed it every engine event of one run; it keeps the run folder up to date after each one."""

    def __init__(self, path: Path, cfg: RunConfig):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.config = cfg
        self.info: dict[str, Any] = {}
        self.rows: list[dict] = []
        self.health = Health()
        """The run's health as of its latest event (fmtui.health), recorded in summary.json."""
        self.started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    def handle(self, event: Event) -> None:
        match event:
            case Started():
                self._started(event)
            case EpochEnd():
                self.health = event.health
                self.rows.append(event.metrics())
                atomic_write(self.path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in self.rows))
                atomic_write(self.path / "metrics.csv", metrics_csv(self.rows))
                seconds = sum(r["seconds"] for r in self.rows)
                self._write_summary("running", f"epoch {event.epoch}/{event.epochs}", seconds)
            case Finished():
                self.health = event.health
                if event.history or event.status != "stopped":
                    self._write_model(event)
                self._write_summary(event.status, event.message, event.seconds)

    def _started(self, event: Started) -> None:
        self.info = {
            "dataset_title": event.dataset,
            "classes": event.classes,
            "device": event.device,
            "model_summary": event.model,
            "params": event.params,
            "n_train": event.n_train,
            "n_val": event.n_val,
            "n_test": event.n_test,
            "norm_shift": list(event.norm.shift),
            "norm_scale": list(event.norm.scale),
            "threads": event.threads,
            "step": event.step,
            "step_note": event.step_note,
        }
        atomic_write(self.path / "config.json", json.dumps({**self.config.to_dict(), "resolved": self.info}, indent=2))
        self._write_summary("running", "training", 0.0)

    def fail(self, message: str) -> None:
        """Record an error that ended the run (the metrics so far stay)."""
        self._write_summary("error", message, sum(r["seconds"] for r in self.rows))

    def _write_model(self, event: Finished) -> None:
        state = {k: v.detach().cpu() for k, v in event.model.state_dict().items()}
        atomic_write(self.path / "model.pt", _torch_bytes(state))
        res = event.results
        if res is None:
            return
        atomic_write(self.path / "predictions.pt", _torch_bytes({"probs": res.probs, "labels": res.labels}))
        classes = self.info.get("classes", [])
        lines = ["index,true,predicted,confidence,true_name,predicted_name"]
        conf = res.confidence
        for i in res.mislabeled():
            t, p = int(res.labels[i]), int(res.preds[i])
            lines.append(
                f"{i},{t},{p},{conf[i]:.4f},{_csv(classes[t] if classes else t)},{_csv(classes[p] if classes else p)}"
            )
        atomic_write(self.path / "mislabeled.csv", "\n".join(lines) + "\n")

    def _write_summary(self, status: str, message: str, seconds: float) -> None:
        summary = summarize(self.rows)
        summary.update(
            status=status,
            message=message,
            seconds=seconds,
            health=self.health.to_dict(),
            started_at=self.started_at,
            updated_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        atomic_write(self.path / "summary.json", json.dumps(summary, indent=2))


def _csv(value: Any) -> str:
    text = str(value)
    return f'"{text}"' if "," in text or '"' in text else text

"""Sweeps: a grid of RunConfigs from option lists, trained (stacked where they can be), compared in one table.

Ranking is honest (fmtui.ranking): only a healthy run can be the best; with a validation split the runs are
ranked by their best validation accuracy and the chosen run's test accuracy is reported; without one the
table says that it ranks on the test set.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmtui.config import OPTIONS, ConfigError, RunConfig, cli_name, format_value, parse_field
from fmtui.errors import error_message
from fmtui.events import EpochEnd, Event, Finished, Health, Started
from fmtui.ranking import rank as rank  # where the sweep's callers have always found it
from fmtui.ranking import summary_fields, verdict
from fmtui.runfolder.export import csv_cell
from fmtui.runfolder.files import atomic_write
from fmtui.runfolder.schema import Status
from fmtui.runfolder.writer import new_run_dir, summarize

LECTURE_NORMS = ("none", "unit", "symmetric", "zscore")
LECTURE_LRS = (0.01, 1e-5)
LECTURE_BATCH, LECTURE_EPOCHS = 1024, 100
"""How the lecture trained its softmax regressions: for 100 epochs, in batches of 1024. The lecture does not
print its batch size; 1024 is inferred from its charts: all five of its softmax curves fall inside what its
axes allow at batch 1024, and three of five fall outside at batch 64."""
LECTURE_NOTE = f"batch {LECTURE_BATCH} (inferred from the lecture's charts), {LECTURE_EPOCHS} epochs"


def lecture_experiment(base: RunConfig) -> list[RunConfig]:
    """The lecture's comparison: softmax regression with 4 normalizations x lr 0.01 and 1e-5 (8 runs), with
    base's other settings (see `lecture_base` for the lecture's batch size and epochs)."""
    return [base.replace(model="softmax", norm=n, lr=lr) for n in LECTURE_NORMS for lr in LECTURE_LRS]


def lecture_base(cfg: RunConfig) -> RunConfig:
    """The settings the Runs pane's `L` runs the lecture's experiment with: a softmax regression's own batch size
    and epochs (the softmax presets hold the lecture's), else the lecture's batch 1024 and 100 epochs."""
    return cfg if cfg.model == "softmax" else cfg.replace(batch_size=LECTURE_BATCH, epochs=LECTURE_EPOCHS)


def lecture_plan(cfg: RunConfig) -> str:
    """What `L` runs for a Model pane holding cfg, in words, for every label that offers it: 'batch 1024, 100 epochs
    (the lecture's; its batch size inferred from its charts)' or 'batch 64, 5 epochs (from the Model pane's
    softmax regression)'."""
    base = lecture_base(cfg)
    how = f"batch {base.batch_size}, {base.epochs} epochs"
    if (base.batch_size, base.epochs) == (LECTURE_BATCH, LECTURE_EPOCHS):
        return how + " (the lecture's; its batch size inferred from its charts)"
    return how + " (from the Model pane's softmax regression)"


def expand_grid(base: RunConfig, lists: dict[str, list[str]]) -> list[RunConfig]:
    """The cartesian product of the given value lists (as typed), on top of base; validated."""
    parsed: dict[str, list[Any]] = {}
    for field, texts in lists.items():
        values = [parse_field(field, t) for t in texts]
        if len(set(map(format_value, values))) != len(values):
            raise ConfigError(f"a value is listed twice ({', '.join(texts)})", field=field)
        parsed[field] = values
    configs = []
    for combo in itertools.product(*parsed.values()):
        configs.append(base.replace(**dict(zip(parsed, combo))).validate())
    return configs


def split_list(field: str, text: str) -> list[str]:
    """'0.01,1e-5' -> ['0.01', '1e-5'] (hidden sizes use ';' between alternatives: '256;512,256')."""
    parts = [p.strip() for p in text.split(OPTIONS[field].sep)]
    if any(not p for p in parts):
        raise ConfigError(f"empty item in {text!r}", field=field)
    return parts


@dataclass
class RunFailed:
    """What run_sweep yields for a run that an error ended before it finished (after its last event, if any).

    Its folder, when it had started, records the error (status error, the metrics so far); the sweep goes on."""

    message: str


@dataclass
class SweepRun:
    """One finished (or failed) run of a sweep, as the summary shows it."""

    config: RunConfig
    path: Path | None
    """The run's folder; None for a run that failed before it started."""
    status: Status
    rows: list[dict]
    seconds: float
    message: str = ""
    """How it ended: the Finished message, or the error of a failed run."""
    health: Health = dataclasses.field(default_factory=Health)

    def summary_row(self, varying: list[str]) -> dict[str, Any]:
        final = summarize(self.rows).get("final", {})
        test_best = max(self.rows, key=lambda r: r["test_accuracy"]) if self.rows else {}
        val_best = (
            max(self.rows, key=lambda r: r["val_accuracy"])
            if self.rows and self.rows[0].get("val_accuracy") is not None
            else {}
        )
        options = self.config.to_dict()
        row: dict[str, Any] = {"run": self.path.name if self.path else None, **{f: options[f] for f in OPTIONS}}
        row.update(
            test_loss=final.get("test_loss"),
            test_accuracy=final.get("test_accuracy"),
            best_test_accuracy=test_best.get("test_accuracy"),
            best_test_epoch=test_best.get("epoch"),
            val_accuracy=final.get("val_accuracy"),
            best_val_accuracy=val_best.get("val_accuracy"),
            best_val_epoch=val_best.get("epoch"),
            diverged=self.status == Status.DIVERGED,
            health=None if self.status == Status.ERROR else self.health.state,
            health_hint=None if self.status == Status.ERROR else self.health.hint,
            status=self.status,
            message=self.message,
            seconds=round(self.seconds, 3),
            varying=" ".join(f"{cli_name(f)}={format_value(getattr(self.config, f))}" for f in varying),
        )
        return row


def write_summary(out: Path, rows: list[dict]) -> None:
    """summary.csv and summary.json: one row per run, best first (the fields of report.SWEEP_ROW), with the
    recommended run and the line about a higher-scoring unhealthy one (fmtui.ranking.summary_fields)."""
    choice = verdict(rows)
    ranked, by = choice.ranked, choice.by
    buf = io.StringIO()
    fields = [k for k in ranked[0] if k != "varying"] if ranked else ["run"]
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in ranked)
    atomic_write(out / "summary.csv", buf.getvalue())
    atomic_write(
        out / "summary.json", json.dumps({"ranked_by": by, **summary_fields(choice), "runs": ranked}, indent=2)
    )


def run_sweep(
    configs: list[RunConfig], out: Path, *, should_stop: Callable[[], object], stacked: bool | None = None
) -> Iterator[tuple[int, Path | None, Event | RunFailed]]:
    """Train every config, each with its run folder inside out; yield (run index, run folder, event) for
    every event of every run. A run that fails ends with RunFailed instead of Finished, and the sweep goes on.

    Configs that differ only in normalization, lr, momentum or weight decay can train together as one
    stacked model (fmtui.batched), their events interleaved, each run's in order: always with stacked=True,
    never with False, and with None where fmtui.stacking's measured rule says it is faster.
    """
    from fmtui.stacking import groups

    for group in groups(configs, stacked):
        if should_stop():
            return
        yield from _train_group(configs, group, out, should_stop)


def _train_group(
    configs: list[RunConfig], group: list[int], out: Path, should_stop: Callable[[], object]
) -> Iterator[tuple[int, Path | None, Event | RunFailed]]:
    """The events of one run, or of one stacked group (fmtui.session); an error ends the group's unfinished
    runs (recorded as errors in their folders, yielded as RunFailed), not the sweep. A run counts as finished
    only once its Finished event is recorded: a disk that fills up while its summary is written fails it.
    Ctrl+C (KeyboardInterrupt) still ends the sweep."""
    from fmtui.session import train_group_and_record

    finished: set[int] = set()
    folders: dict[int, Path | None] = {}
    try:
        trained = train_group_and_record(
            [configs[i] for i in group], lambda cfg: new_run_dir(out, cfg), should_stop=should_stop
        )
        for k, ev, path in trained:
            i = group[k]
            folders[i] = path
            if isinstance(ev, Finished):
                finished.add(i)
            yield i, path, ev
    except Exception as e:  # a device error, bad data found late, a full disk: this group's runs failed
        for i in group:
            if i not in finished:
                yield i, folders.get(i), RunFailed(error_message(e))


class Tally:
    """The runs of a sweep as they finish, from run_sweep's events; seconds count from each run's Started
    (shared by the runs of a stacked group)."""

    def __init__(self, configs: list[RunConfig]):
        self.configs = configs
        self.runs: list[SweepRun] = []
        self.training: dict[int, float] = {}
        """Runs started and not finished, with the time they started."""
        self.epochs: dict[int, list[dict]] = {}
        """The metrics of each unfinished run's finished epochs."""

    def add(self, i: int, path: Path | None, event: Event | RunFailed) -> SweepRun | None:
        """Take one event of run i; return the run's SweepRun when this event finished it (or it failed)."""
        match event:
            case Started():
                self.training[i] = time.perf_counter()
            case EpochEnd():
                self.epochs.setdefault(i, []).append(event.metrics())
            case Finished() | RunFailed():
                started = self.training.pop(i, None)
                seconds = time.perf_counter() - started if started is not None else 0.0
                rows = self.epochs.pop(i, [])
                if isinstance(event, Finished):
                    rows = [epoch.metrics() for epoch in event.history]
                status = event.status if isinstance(event, Finished) else Status.ERROR
                health = event.health if isinstance(event, Finished) else Health()
                self.runs.append(SweepRun(self.configs[i], path, status, rows, seconds, event.message, health))
                return self.runs[-1]
        return None

    @property
    def failed(self) -> list[SweepRun]:
        return [r for r in self.runs if r.status == Status.ERROR]


def varying_fields(configs: list[RunConfig]) -> list[str]:
    return [f for f in OPTIONS if len({format_value(getattr(c, f)) for c in configs}) > 1]

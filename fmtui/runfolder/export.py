"""The runs' metrics as CSV (the Runs pane's export, `fmtui export --csv`) and JSON, and summary.csv's cells."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

from fmtui.config import OPTIONS, RunConfig, applies
from fmtui.runfolder.files import atomic_write
from fmtui.runfolder.read import RunRecord
from fmtui.runfolder.schema import TABLE_FIELDS

EXPORT_RENAMES = {"lr": "epoch_lr"}
"""Metric columns renamed in an export, whose option columns come first: the epoch's lr beside the configured lr."""


def csv_cell(value: Any) -> Any:
    """A CSV cell as summary.csv and exports write it: booleans true/false, lists as 512,256, null as empty."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return "" if value is None else value


def applying(config: RunConfig) -> dict[str, Any]:
    """Every option's value, None where it does not apply to the config's model and optimizer."""
    values = config.to_dict()
    return {f: values[f] if applies(f, config.model, config.optimizer) else None for f in OPTIONS}


def csv_columns() -> list[str]:
    """An export's CSV columns: run, every option by its config.json name, status, then metrics.csv's columns
    (the epoch's learning rate as epoch_lr, see EXPORT_RENAMES). Read from OPTIONS at each call."""
    return ["run", *OPTIONS, "status", *(EXPORT_RENAMES.get(f, f) for f in TABLE_FIELDS)]


def runs_csv(named: list[tuple[str, RunRecord]]) -> str:
    """The runs' metrics as CSV text, a row per run and epoch (csv_columns()), each run under the name given:
    what the Runs pane's export and `fmtui export --csv` write. An option that does not apply to the run's model
    (hidden sizes and activation of a softmax regression, fmtui.config.applies) is left empty."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=csv_columns(), lineterminator="\n")
    writer.writeheader()
    for name, r in named:
        options = {f: csv_cell(v) for f, v in applying(r.config).items()}
        for row in r.metrics:
            metrics = {EXPORT_RENAMES.get(k, k): csv_cell(row.get(k)) for k in TABLE_FIELDS}
            writer.writerow({"run": name, **options, "status": r.status, **metrics})
    return out.getvalue()


def export_runs(records: list[RunRecord], dest: Path) -> tuple[Path, Path]:
    """Write the selected runs' metrics as one CSV (runs_csv, each run by its folder's name) and one JSON file
    (null where an option does not apply).

    Raises OSError when dest cannot be made or written (a full or read-only disk)."""
    dest.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{len(records)}-runs"
    csv_path, json_path = dest / f"{stem}.csv", dest / f"{stem}.json"
    atomic_write(csv_path, runs_csv([(r.name, r) for r in records]))
    atomic_write(
        json_path,
        json.dumps(
            [
                {
                    "run": r.name,
                    "path": str(r.path),
                    "config": {**r.config.to_dict(), **applying(r.config)},
                    "status": r.status,
                    "summary": r.summary,
                    "metrics": r.metrics,
                }
                for r in records
            ],
            indent=2,
        ),
    )
    return csv_path, json_path

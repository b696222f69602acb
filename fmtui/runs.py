"""The old home of run-folder code, now a re-export only: the run folder's format and its reader live in
fmtui.runfolder (schema, files, parse, liveness, read, writer, convert, tensors, export). New code imports
from there; this module keeps branches written against `fmtui.runs` working until they are merged.
"""

from fmtui.errors import RunError
from fmtui.runfolder.export import EXPORT_RENAMES, applying, csv_cell, export_runs
from fmtui.runfolder.files import atomic_write
from fmtui.runfolder.liveness import Liveness, liveness
from fmtui.runfolder.parse import parse_config, parse_live, parse_object, parse_summary
from fmtui.runfolder.read import (
    BrokenRun,
    FileCache,
    Run,
    RunRecord,
    RunsFolder,
    default_runs_dir,
    list_runs,
    read_run,
    read_run_config,
)
from fmtui.runfolder.schema import MAX_BYTES, MAX_EPOCH, METRIC_FIELDS, RUN_MARKERS, STALE_AFTER, WRITTEN, Status
from fmtui.runfolder.tensors import load_results, load_state_dict
from fmtui.runfolder.writer import summarize

__all__ = [
    "EXPORT_RENAMES",
    "MAX_BYTES",
    "MAX_EPOCH",
    "METRIC_FIELDS",
    "RUN_MARKERS",
    "STALE_AFTER",
    "WRITTEN",
    "applying",
    "BrokenRun",
    "FileCache",
    "Liveness",
    "Run",
    "RunError",
    "RunRecord",
    "RunsFolder",
    "Status",
    "atomic_write",
    "csv_cell",
    "default_runs_dir",
    "export_runs",
    "list_runs",
    "liveness",
    "load_results",
    "load_state_dict",
    "parse_config",
    "parse_live",
    "parse_object",
    "parse_summary",
    "read_run",
    "read_run_config",
    "summarize",
]

"""Parsing a run folder's files, checked: every parser takes (file, bytes) and returns the file's content, or
raises RunError with one line naming the file and what is wrong (types, ranges, JSON shapes). Nothing here
touches the disk but `read_appended`, which reads an appended file (metrics.jsonl, losses.jsonl) on from where
it last ended.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmtui.config import ConfigError, RunConfig, format_value, parse_field
from fmtui.errors import RunError
from fmtui.runfolder import files
from fmtui.runfolder.schema import (
    LOSS_DOCS,
    MAX_EPOCH,
    ROW_NUMBERS,
    ROW_PERCENTS,
    ROW_REQUIRED,
    SUMMARY_DOCS,
    WRITTEN,
)


def _kind(value: Any) -> str:
    """How a JSON value reads in a sentence: 'a list', 'a string ('85')', 'a number (5)'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({_short(repr(value))})"
    if isinstance(value, str):
        return f"a string ({_short(value)!r})"
    return "a list" if isinstance(value, list) else "an object"


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _text(file: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RunError(file, "not UTF-8 text") from None


def _loads(file: Path, text: str, where: str = "") -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        at = f"line {e.lineno}, column {e.colno}" if not where else where
        raise RunError(file, f"not valid JSON ({e.msg} at {at})") from None
    except (ValueError, RecursionError):
        raise RunError(file, f"not valid JSON{f' ({where})' if where else ''}") from None


def parse_object(file: Path, data: bytes) -> dict:
    """A file holding one JSON object."""
    text = _text(file, data)
    if not text.strip():
        raise RunError(file, "empty file")
    value = _loads(file, text)
    if not isinstance(value, dict):
        raise RunError(file, f"{_kind(value)}, not a JSON object")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


DEFAULTS = RunConfig()


def _config_value(file: Path, name: str, value: Any) -> Any:
    """One config.json field, checked for its type and then by the option's own parser (its range)."""
    if name == "data_dir":
        if value is not None and not isinstance(value, str):
            raise RunError(file, f"data_dir is {_kind(value)}, expected a folder name")
        return value
    default = getattr(DEFAULTS, name)
    if isinstance(default, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(default, tuple):
        ok, expected = isinstance(value, list) and all(map(_is_int, value)), "a list of integers"
    elif isinstance(default, int):
        ok, expected = _is_int(value), "an integer"
    elif isinstance(default, float):
        ok, expected = _is_number(value), "a number"
    else:
        ok, expected = isinstance(value, str), "a string"
    if not ok:
        raise RunError(file, f"{name} is {_kind(value)}, expected {expected}")
    text = format_value(value) if isinstance(value, (bool, list)) else str(value)
    try:
        parsed = parse_field(name, text)
    except ConfigError as e:
        raise RunError(file, f"{name}: {e.reason}") from None
    if isinstance(default, tuple):
        return tuple(value)
    return float(value) if isinstance(default, float) else parsed if isinstance(default, str) else value


def parse_config(file: Path, data: bytes) -> tuple[RunConfig, dict]:
    """config.json: the RunConfig (each field checked as the CLI would check it) and the resolved facts."""
    raw = parse_object(file, data)
    names = [f.name for f in dataclasses.fields(RunConfig)]
    config = RunConfig(**{n: _config_value(file, n, raw[n]) for n in names if n in raw})
    try:
        config.validate()
    except ConfigError as e:
        raise RunError(file, str(e)) from None
    resolved = raw.get("resolved", {})
    if not isinstance(resolved, dict):
        raise RunError(file, f"resolved is {_kind(resolved)}, expected an object")
    return config, resolved


Check = Callable[[Any, dict | None], str | None]
"""What is wrong with one line of an appended file, given the line before it (None: nothing)."""


def check_metrics_row(row: Any, before: dict | None) -> str | None:
    """What is wrong with one metrics.jsonl row (None when nothing): epochs count up, numbers are numbers."""
    previous = before["epoch"] if before else 0
    if not isinstance(row, dict):
        return f"is {_kind(row)}, not a JSON object"
    missing = [k for k in ROW_REQUIRED if k not in row]
    if missing:
        return f"has no {', '.join(missing)}"
    epoch = row["epoch"]
    if not _is_int(epoch) or not 1 <= epoch <= MAX_EPOCH:
        return f"epoch is {_kind(epoch)}, expected a positive integer up to {MAX_EPOCH:,}"
    if epoch <= previous:
        return f"epoch {epoch} does not follow epoch {previous}"
    for key in (*ROW_NUMBERS, *ROW_PERCENTS):
        value = row.get(key)
        if value is None and key not in ROW_REQUIRED:
            continue
        if not _is_number(value):
            return f"{key} is {_kind(value)}, expected a number"
        if abs(value) > 1e300:  # (NaN passes: a diverged run's loss)
            return f"{key} is {_kind(value)}, too large"
        if key in ROW_PERCENTS and not 0 <= value <= 100:  # NaN and inf fail too
            return f"{key} is {_short(repr(value))}, expected a percentage from 0 to 100"
    return None


MAX_STEP = 10**13
"""Step numbers above this are no run's (100,000 epochs of 60,000 one-sample batches are 6e9 steps)."""


def check_loss(row: Any, before: dict | None) -> str | None:
    """What is wrong with one losses.jsonl line (None when nothing): steps count up, the loss is a number or null."""
    if not isinstance(row, dict):
        return f"is {_kind(row)}, not a JSON object"
    missing = [k for k in LOSS_DOCS if k not in row]
    if missing:
        return f"has no {', '.join(missing)}"
    step, steps, loss = row["step"], row["steps"], row["loss"]
    for key, value in (("step", step), ("steps", steps)):
        if not _is_int(value) or not 1 <= value <= MAX_STEP:
            return f"{key} is {_kind(value)}, expected a positive integer up to {MAX_STEP:,}"
    if before is not None and step <= before["step"]:
        return f"step {step} does not follow step {before['step']}"
    if loss is not None and not (_is_number(loss) and abs(loss) <= 1e300):
        return f"loss is {_kind(loss)}, expected a number or null"
    return None


@dataclass(frozen=True)
class Appended:
    """An appended file as read so far: its rows and where its complete lines end (to read on from there)."""

    rows: list[dict]
    inode: int
    end: int
    """Bytes of complete lines read."""
    lines: int
    last: bytes = b""
    """The last complete line read (with its newline): still there = the file was only appended to."""


def read_metrics(file: Path, st: os.stat_result, before: Appended | None) -> Appended:
    """metrics.jsonl, read on from `before` when the file only grew since, else from the start."""
    return read_appended(file, st, before, check_metrics_row)


def read_appended(file: Path, st: os.stat_result, before: Appended | None, check: Check) -> Appended:
    """A file of JSON lines that a writer appends to, each line checked by check(line, the line before): read on
    from `before` when the file only grew since, else from the start."""
    try:
        with files.open_read(file) as f:
            if before and before.inode == st.st_ino and before.end <= st.st_size:
                f.seek(before.end - len(before.last))
                data = f.read()
                if data.startswith(before.last):
                    return _extend(file, before, data[len(before.last) :], check)
                f.seek(0)
            return _extend(file, Appended([], st.st_ino, 0, 0), f.read(), check)
    except OSError as e:
        raise RunError(file, f"cannot be read ({e.strerror})") from None


def _extend(file: Path, state: Appended, data: bytes, check: Check) -> Appended:
    """state plus the checked rows of data's complete lines. A last line without its newline is one a live
    writer is still appending: it is not yet written, not broken, and is left for the next read."""
    complete = data.split(b"\n")[:-1]
    if not complete:
        return state  # nothing new: the same rows, so readers see no change
    rows, n = list(state.rows), state.lines
    for raw in complete:
        n += 1
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RunError(file, f"line {n} is not UTF-8 text") from None
        row = _loads(file, line, where=f"line {n}")
        problem = check(row, rows[-1] if rows else None)
        if problem:
            raise RunError(
                file, f"line {n} {problem}" if problem.startswith(("is ", "has ")) else f"line {n}: {problem}"
            )
        rows.append(row)
    end = state.end + sum(len(raw) + 1 for raw in complete)
    return Appended(rows, state.inode, end, n, complete[-1] + b"\n")


JSON_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "string": (lambda v: isinstance(v, str), "a string"),
    "number": (lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    "integer": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "object": (lambda v: isinstance(v, dict), "an object"),
    "array": (lambda v: isinstance(v, list), "a list"),
}
"""How a summary.json field of each schema type is checked (its numbers are counts and times: never negative)."""


def parse_summary(file: Path, data: bytes) -> dict:
    """summary.json: an object whose status is a written Status; its other fields have their schema's types
    (SUMMARY_DOCS; null is allowed). The status comes back as a Status."""
    summary = parse_object(file, data)
    status = summary.get("status")
    if status not in WRITTEN:
        what = "no status" if "status" not in summary else f"status {_kind(status)}"
        raise RunError(file, f"{what}; expected one of {', '.join(WRITTEN)}")
    for key, (kind, _, _) in SUMMARY_DOCS.items():
        value = summary.get(key)
        if key != "status" and value is not None and not JSON_TYPES[kind][0](value):
            raise RunError(file, f"{key} is {_kind(value)}, expected {JSON_TYPES[kind][1]}")
    return {**summary, "status": WRITTEN[WRITTEN.index(status)]}


def parse_live(file: Path, data: bytes) -> dict:
    """live.json: the fields liveness uses must have their types (else the file is ignored as unreadable)."""
    live = parse_object(file, data)
    pid, heartbeat = live.get("pid"), live.get("heartbeat")
    checks = {"host": isinstance(live.get("host"), str), "pid": _is_int(pid) and 0 < pid < 1 << 31}
    checks["heartbeat"] = _is_number(heartbeat) and 0 <= heartbeat < 1e11  # unix time: seconds since 1970
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise RunError(file, f"no valid {', '.join(bad)}")
    return live

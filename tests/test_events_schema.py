"""The --json lines of real train, eval, runs, lr-find, tune and sweep commands against the documented schema
(fmtui.events_schema, rendered into docs/events.md and docs/events.schema.json): field by field here, and by
jsonschema against the committed schema file; the sweep's summary.csv in the same terms."""

import copy
import csv
import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from test_cli import fmtui

from fmtui.config import RunConfig
from fmtui.events import HEALTH_STATES
from fmtui.events_schema import ENVELOPE, JSON_EVENTS, SWEEP_ROW, json_events_markdown, json_schema
from fmtui.runfolder.schema import METRIC_DOCS

pytestmark = pytest.mark.cli

ROOT = Path(__file__).resolve().parents[1]
DOC, SCHEMA = ROOT / "docs" / "events.md", ROOT / "docs" / "events.schema.json"
TYPES = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
}


def check(obj: dict, fields: dict, where: str) -> None:
    """obj has exactly the documented fields, in order, each of its documented type."""
    assert list(obj) == list(fields), where
    for key, (kind, _, _) in fields.items():
        value, base = obj[key], kind.removesuffix(" or null")
        if value is None and kind.endswith(" or null"):
            continue
        ok = isinstance(value, TYPES[base]) and (base == "boolean" or not isinstance(value, bool))
        assert ok, f"{where}: {key}={value!r} is not {kind}"


def check_line(line: str) -> dict:
    event = json.loads(line)
    assert event["event"] in JSON_EVENTS, line
    check(event, ENVELOPE | JSON_EVENTS[event["event"]], event["event"])
    assert re.search(r"T\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$", event["time"]), event["time"]
    assert datetime.fromisoformat(event["time"]).timestamp() == pytest.approx(event["unix_time"], abs=1e-6)
    return event


@pytest.fixture(scope="module")
def lines(tmp_path_factory) -> list[dict]:
    """Every --json line of a train (validation split, progress after every batch), an eval, a listing of the
    runs (one broken), an lr finder and a sweep."""
    from conftest import write_idx_dataset

    tmp = tmp_path_factory.mktemp("json")
    data = write_idx_dataset(tmp / "tiny")
    common, env = ["--data-dir", data, "--epochs", 2, "--batch-size", 64, "--json"], {"FMTUI_NO_DOWNLOAD": "1"}
    run = ["--val-split", "0.2", "--progress-interval", "0", "--out", tmp / "run"]
    train = fmtui("--no-ui", "train", *common, *run, **env)
    evaluated = fmtui("--no-ui", "eval", tmp / "run", "--json", **env)
    (tmp / "broken").mkdir()
    (tmp / "broken" / "config.json").write_text("{")
    folders = fmtui("--no-ui", "runs", "--json", tmp, **env)
    search = ["--steps", 100, "--start-lr", 1e-5, "--end-lr", 100, "--out", tmp / "lr.csv"]
    found = fmtui("--no-ui", "lr-find", *common[:4], "--json", *search, **env)
    space = ["--lr", "0.02..0.3", "--trials", 2, "--pruner", "none", "--study", "s", "--runs-dir", tmp / "studies"]
    tuned = fmtui("--no-ui", "tune", *common, *space, **env)
    grid = ["--lr", "0.05,0.01", "--batch-norm", "yes,no", "--out", tmp / "sweep"]
    sweep = fmtui("--no-ui", "sweep", *common, *grid, **env)
    results = (train, evaluated, folders, found, tuned, sweep)
    for result in results:
        assert result.exit_code == 0, result.output
    return [check_line(line) for r in results for line in r.stdout.splitlines()]


def test_every_json_line_of_real_runs_matches_the_documented_schema(lines):
    kinds = [e["event"] for e in lines]
    assert set(kinds) == set(JSON_EVENTS)  # the schema names no event that never comes
    assert kinds[0] == "started" and kinds.index("finished") == kinds.count("progress") + 3  # + started, 2 epochs
    started, finished = lines[0], lines[kinds.index("finished")]
    assert list(started["config"]) == list(RunConfig().to_dict())
    check(finished["final"], JSON_EVENTS["epoch"], "finished.final")  # the epoch line's fields, health included
    last_epoch = [e for e in lines if e["event"] == "epoch"][-1]
    assert finished["final"] == {k: last_epoch[k] for k in JSON_EVENTS["epoch"]}
    assert list(JSON_EVENTS["epoch"]) == [*METRIC_DOCS, "health"]
    for row in lines[-1]["runs"]:
        check(row, SWEEP_ROW, "summary.runs")
    assert [e["unix_time"] for e in lines] == sorted(e["unix_time"] for e in lines)
    folders = {e["status"]: e for e in lines if e["event"] == "run_folder"}
    assert sorted(folders) == ["broken", "completed"] and folders["broken"]["reason"]
    assert folders["broken"]["health"] is None
    healths = [e["health"] for e in lines if e["event"] in ("epoch", "finished", "run_folder") and e["health"]]
    assert len(healths) == 2 + 1 + 1 and finished["health"] == folders["completed"]["health"]
    assert all(list(h) == ["state", "hint"] and h["state"] in HEALTH_STATES for h in healths)
    (found,) = [e for e in lines if e["event"] == "lr_find"]
    assert list(found["config"]) == list(RunConfig().to_dict()) and found["suggested_lr"] > 0
    assert list(found["curve"][0]) == ["step", "lr", "loss", "smoothed"] and len(found["curve"]) == found["steps"]
    trials, (study,) = [e for e in lines if e["event"] == "trial"], [e for e in lines if e["event"] == "study"]
    assert sorted(t["trial"] for t in trials) == [0, 1] and {t["state"] for t in trials} == {"complete"}
    assert kinds.index("study") == kinds.index("trial") + 2  # the study's line after its trials'
    assert [r["trial"] for r in study["ranked"]] == [study["best"]["trial"], 1 - study["best"]["trial"]]
    assert study["best"]["command"].startswith("fmtui train --no-ui") and study["complete"] == study["planned"] == 2


def test_numbers_are_numbers_and_units_are_as_documented(lines):
    started = lines[0]
    epoch = next(e for e in lines if e["event"] == "epoch")
    assert started["config"]["lr"] == 0.01 and started["norm_shift"] == [127.5] and started["norm_scale"] == [127.5]
    assert 1 < epoch["test_accuracy"] <= 100 and epoch["val_accuracy"] is not None  # percent, not a fraction
    progress = [e for e in lines if e["event"] == "progress"]
    assert all(e["gpu_memory_bytes"] is None for e in progress)  # on the CPU
    runs = [e for e in lines if e["event"] == "run"]
    assert sorted((r["lr"], r["batch_norm"]) for r in runs) == [(lr, bn) for lr in (0.01, 0.05) for bn in (False, True)]


def test_progress_interval_sets_the_rate_of_progress_lines(tiny_data, tmp_path):
    def progress_lines(interval: str) -> int:
        args = ["--data-dir", tiny_data, "--epochs", 2, "--batch-size", 64, "--json", "--progress-interval", interval]
        result = fmtui("--no-ui", "train", *args, "--runs-dir", tmp_path)
        assert result.exit_code == 0, result.output
        return [json.loads(line)["event"] for line in result.stdout.splitlines()].count("progress")

    assert progress_lines("0") == 2 * 10  # after every batch: 600 samples / 64 = 10 batches per epoch
    assert progress_lines("3600") == 3  # the first batch at once, then each epoch's last (which always reports)
    bad = fmtui("--no-ui", "train", "--data-dir", tiny_data, "--progress-interval", "-1")
    assert bad.exit_code == 2 and "--progress-interval" in bad.stderr and bad.stderr.count("\n") == 1


def test_the_document_shows_the_schema_the_tests_check():
    assert json_events_markdown() in DOC.read_text(), "docs/events.md is stale: run python scripts/events_doc.py"


def test_the_committed_documents_are_what_the_script_makes():
    """docs/events.md and docs/events.schema.json equal what scripts/events_doc.py writes (its --check)."""
    script = [sys.executable, str(ROOT / "scripts" / "events_doc.py"), "--check"]
    done = subprocess.run(script, capture_output=True, text=True, timeout=120)  # the timeout guards a hang
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert json.loads(SCHEMA.read_text()) == json_schema()


@pytest.fixture(scope="module")
def validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_every_json_line_of_real_runs_is_valid_under_the_schema_file(lines, validator):
    for event in lines:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(event)]
        assert not errors, (event["event"], errors)


@pytest.mark.parametrize(
    "event,change",
    [
        ("epoch", lambda e: e.update(extra=1)),  # a field the doc does not list
        ("started", lambda e: e.pop("threads")),  # a documented field missing
        ("finished", lambda e: e["final"].pop("health")),  # final without the epoch line's health
        ("finished", lambda e: e.update(status="done")),  # a status no run ends with
        ("epoch", lambda e: e["health"].update(state="fine")),
        ("started", lambda e: e["config"].update(norm="zscore2")),
        ("started", lambda e: e["config"].pop("lr")),
        ("summary", lambda e: e["runs"][0].update(lr="0.01")),  # a number as text
        ("lr_find", lambda e: e["curve"][0].update(loss="nan")),
        ("progress", lambda e: e.update(time="2026-11-27 12:03:04")),
        ("run_folder", lambda e: e.update(schema_version=2)),
    ],
)
def test_the_schema_is_strict(lines, validator, event, change):
    line = copy.deepcopy(next(e for e in lines if e["event"] == event))
    assert validator.is_valid(line)
    change(line)
    assert not validator.is_valid(line)


def test_summary_csv_has_one_naming_style_and_booleans_one_way(lines):
    sweep_dir = Path(lines[-1]["sweep_dir"])
    rows = list(csv.DictReader((sweep_dir / "summary.csv").open()))
    assert list(rows[0]) == [k for k in SWEEP_ROW if k != "varying"]
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", k) for k in rows[0])
    assert {r["batch_norm"] for r in rows} == {"true", "false"} and {r["diverged"] for r in rows} == {"false"}
    assert {r["health"] for r in rows} <= set(HEALTH_STATES) and all(r["health_hint"] != "None" for r in rows)
    assert {r["hidden"] for r in rows} == {"256"} and {r["val_accuracy"] for r in rows} == {""}
    saved = json.loads((sweep_dir / "summary.json").read_text())["runs"]
    assert [r["run"] for r in saved] == [r["run"] for r in rows] and saved == lines[-1]["runs"]

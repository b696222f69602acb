"""Training health on the command line: epoch lines, the hint once, the closing line, --json, summary.json,
the sweep table and summary.csv, the runs listing (small synthetic data)."""

import csv
import json

import pytest
from test_cli import fmtui

pytestmark = pytest.mark.cli


def train(tiny_data, out, *extra):
    return fmtui("--no-ui", "train", "--data-dir", tiny_data, "--epochs", 2, "--batch-size", 32, "--out", out, *extra)


def test_an_exploding_run_says_so_in_its_lines_and_its_folder(tiny_data, tmp_path):
    result = train(tiny_data, tmp_path / "run", "--model", "softmax", "--norm", "none", "--lr", 0.01)
    assert result.exit_code == 0, result.output  # it completed: the health is a diagnosis, not a failure
    lines = result.stdout.splitlines()
    epochs = [line for line in lines if line.startswith("Epoch [")]
    assert len(epochs) == 2 and all(line.endswith(", Health: exploding") for line in epochs)
    hints = [line for line in lines if line.startswith("Health: ")]
    assert len(hints) == 1 and hints[0].startswith("Health: exploding: train loss ")  # once, when the state changed
    assert "inputs unnormalized (pixel mean 46.8, std 57.2) -> try --norm zscore" in hints[0]
    assert lines[-1].startswith("Done (exploding): Finished 2 epochs") and "x chance level" in lines[-1]
    assert "try --norm zscore" in lines[-1]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["health"]["state"] == "exploding"
    listed = fmtui("--no-ui", "runs", tmp_path)
    assert listed.exit_code == 0 and "  exploding  " in listed.stdout
    facts = json.loads(fmtui("--no-ui", "runs", "--json", tmp_path).stdout)
    assert facts["health"] == summary["health"]


def test_a_healthy_run_prints_the_lecture_lines_unchanged(tiny_data, tmp_path):
    result = train(tiny_data, tmp_path / "run", "--lr", 0.05)
    assert result.exit_code == 0, result.output
    assert "Health" not in result.stdout and result.stdout.splitlines()[-1].startswith("Done: Finished 2 epochs")


def test_json_events_carry_the_health(tiny_data, tmp_path):
    result = train(tiny_data, tmp_path / "run", "--model", "softmax", "--norm", "none", "--lr", 0.01, "--json")
    events = [json.loads(line) for line in result.stdout.splitlines()]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["health"]["state"] for e in epochs] == ["exploding", "exploding"]
    assert events[-1]["event"] == "finished" and events[-1]["health"] == epochs[-1]["health"]
    assert "chance level" in events[-1]["health"]["hint"]


def test_the_sweep_table_and_summary_csv_have_a_health_column(tiny_data, tmp_path):
    result = fmtui(
        "--no-ui", "sweep", "--data-dir", tiny_data, "--model", "softmax", "--norm", "none,zscore", "--lr", 0.01,
        "--epochs", 2, "--batch-size", 32, "--out", tmp_path / "sweep",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.startswith("[") and "norm=none" in line and line.endswith("[exploding]") for line in lines)
    header = next(line for line in lines if line.startswith("norm "))
    assert header.split()[-2:] == ["health", "seconds"] and "diverged" not in header
    rows = {line.split()[0]: line.split() for line in lines if line.split()[:1] in (["none"], ["zscore"])}
    assert rows["none"][-2] == "exploding" and rows["zscore"][-2] == "ok"
    table = list(csv.DictReader((tmp_path / "sweep" / "summary.csv").open()))
    assert {r["norm"]: (r["health"], r["diverged"]) for r in table} == {
        "none": ("exploding", "false"),
        "zscore": ("ok", "false"),
    }
    hints = {r["norm"]: r["health_hint"] for r in table}
    assert "try --norm zscore" in hints["none"] and hints["zscore"] == ""

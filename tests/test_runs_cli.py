"""`fmtui runs` and what eval says about runs that did not end normally (interrupted, diverged)."""

from __future__ import annotations

import json
import re

import pytest
from runfolders import write_run
from test_cli import fmtui, train_tiny

pytestmark = pytest.mark.cli


@pytest.fixture
def runs_dir(tmp_path):
    """A completed run, an interrupted one (its lock free, nobody writing), a broken one, in a sweep folder too."""
    base = tmp_path / "runs"
    write_run(base / "20260101-a-done", epochs=3, lr=0.05)
    write_run(base / "20260102-b-cut", epochs=5, done=2, status="running")
    (base / "20260102-b-cut" / ".lock").touch()
    write_run(base / "sweep-1" / "20260103-c-in-sweep", epochs=2, status="stopped", done=1)
    (base / "20260104-d-broken").mkdir()
    (base / "20260104-d-broken" / "config.json").write_text('{"hidden": 5}')
    return base


def test_runs_lists_one_line_per_run_oldest_first(runs_dir):
    """Oldest first by folder name (a date), wherever the run is: the newest ends by the prompt."""
    result = fmtui("--no-ui", "runs", runs_dir)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [re.split(r"\s{2,}", line) for line in lines] == [
        [
            "20260101-a-done",
            "completed",
            "epoch 3/3",
            "final 73.00%",
            "best 73.00% (epoch 3)",
            "fashion-mnist · softmax · norm symmetric · sgd lr 0.05 · batch 64 · 3 epochs",
        ],
        [
            "20260102-b-cut",
            "interrupted",
            "epoch 2/5",
            "final 72.00%",
            "best 72.00% (epoch 2)",
            "fashion-mnist · softmax · norm symmetric · sgd lr 0.01 · batch 64 · 5 epochs",
        ],
        [
            "sweep-1/20260103-c-in-sweep",
            "stopped",
            "epoch 1/2",
            "final 71.00%",
            "best 71.00% (epoch 1)",
            "fashion-mnist · softmax · norm symmetric · sgd lr 0.01 · batch 64 · 2 epochs",
        ],
        ["20260104-d-broken", "broken", "config.json: hidden is a number (5), expected a list of integers"],
    ]


def test_runs_json_is_one_object_per_run_with_numbers(runs_dir):
    result = fmtui("--no-ui", "runs", "--json", runs_dir)
    assert result.exit_code == 0, result.output
    runs = {r["run"]: r for r in map(json.loads, result.stdout.splitlines())}
    cut = runs["20260102-b-cut"]
    assert cut["status"] == "interrupted" and (cut["epochs_done"], cut["epochs"]) == (2, 5)
    assert cut["final_test_accuracy"] == 72.0 and cut["best_epoch"] == 2 and cut["config"]["epochs"] == 5
    assert cut["message"].startswith("interrupted after epoch 2 of 5 (its writer is gone")
    broken = runs["20260104-d-broken"]
    assert broken["event"] == "run_folder" and broken["path"] == str(runs_dir / "20260104-d-broken")
    assert (broken["status"], broken["reason"]) == (
        "broken",
        "config.json: hidden is a number (5), expected a list of integers",
    )
    assert broken["config"] is None and cut["reason"] is None


def test_runs_reads_fmtui_runs_dir_by_default(runs_dir, monkeypatch):
    monkeypatch.setenv("FMTUI_RUNS_DIR", str(runs_dir))
    result = fmtui("--no-ui", "runs")
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 4


@pytest.mark.parametrize("command", [["runs"], ["export", "--csv", "-"]], ids=["runs", "export"])
def test_runs_of_a_missing_folder_is_one_line_and_exit_2(tmp_path, command):
    result = fmtui("--no-ui", *command, tmp_path / "nope")
    assert result.exit_code == 2 and result.stderr == f"Error: {tmp_path / 'nope'}: no such folder\n"
    (tmp_path / "file").write_text("x")
    result = fmtui("--no-ui", *command, tmp_path / "file")
    assert result.exit_code == 2 and result.stderr == f"Error: {tmp_path / 'file'}: not a folder\n"


def test_runs_of_an_empty_folder_says_so(tmp_path):
    result = fmtui("--no-ui", "runs", tmp_path)
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == f"no runs in {tmp_path}\n"


def test_names_with_control_characters_are_printed_escaped(tmp_path):
    write_run(tmp_path / "evil\x1b[2Jname")
    result = fmtui("--no-ui", "runs", tmp_path)
    assert result.stdout.startswith("evil\\x1b[2Jname  completed")


# --- eval of runs that did not end normally --------------------------------------------------------------


def test_eval_of_an_interrupted_run_says_so_and_evaluates_its_last_complete_epoch(tiny_data, tmp_path):
    run = tmp_path / "run"
    assert train_tiny(tiny_data, "--out", run, "--epochs", 1).exit_code == 0
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "epochs": 4}))  # it was meant to train 4 epochs
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "status": "running"}))
    (run / ".lock").touch()  # and its writer died: nobody holds the lock
    result = fmtui("--no-ui", "eval", run)
    assert result.exit_code == 0, result.output
    assert re.fullmatch(  # the writer's live.json names it: its pid and host
        r"Interrupted: interrupted after epoch 1 of 4 \(pid \d+ on \S+ is gone: nobody holds its lock\); "
        r"evaluating model.pt, the weights of its last complete epoch \(1\)\n",
        result.stderr,
    ), result.stderr
    recorded = re.search(r"Test Accuracy: ([\d.]+)% \(recorded at training: ([\d.]+)%\)", result.stdout)
    assert recorded and recorded.group(1) == recorded.group(2)


def test_eval_of_an_interrupted_run_without_a_model_says_what_is_missing(tmp_path):
    run = write_run(tmp_path / "run", epochs=4, done=1, status="running")
    (run / ".lock").touch()
    result = fmtui("--no-ui", "eval", run)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr == (
        f"Error: {run}: interrupted after epoch 1 of 4 (its writer is gone: nobody holds its lock), "
        "before it saved a model (no model.pt)\n"
    )


def test_eval_of_a_diverged_run_says_it_diverged_and_exits_1(tiny_data, tmp_path):
    run = tmp_path / "run"
    diverge = ["--norm", "none", "--lr", "100", "--hidden", "256,256,256", "--activation", "gelu", "--batch-size", 16]
    assert train_tiny(tiny_data, "--out", run, *diverge).exit_code == 1
    result = fmtui("--no-ui", "eval", run)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stdout == ""  # it diverged in its first epoch: no weights were saved, nothing to evaluate
    assert re.fullmatch(
        r"Diverged: diverged at epoch 1, batch \d+: the loss is not finite; it saved no model: it diverged "
        r"before its first complete epoch\n",
        result.stderr,
    )
    result = fmtui("--no-ui", "eval", run, "--json")
    facts = json.loads(result.stdout)
    assert result.exit_code == 1 and facts["diverged"] is True and facts["test_loss"] is None
    assert facts["status"] == "diverged"

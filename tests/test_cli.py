"""The headless CLI through click's CliRunner (and a subprocess where a real signal is needed)."""

import csv
import json
import os
import re
import signal
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from fmtui.cli import main

EPOCH_LINE = re.compile(
    r"^Epoch \[(\d+)/(\d+)\], Loss: \d+\.\d{4}, Accuracy: \d+\.\d{2}%, "
    r"Test Loss: \d+\.\d{4}, Test Accuracy: \d+\.\d{2}%, Time: \d+\.\d{2}s$"
)


class Entry:
    """Lets CliRunner drive fmtui.cli.main, which owns the one-line error formatting and exit codes."""

    name = "fmtui"

    def main(self, args, prog_name=None, **kw):
        main(list(args))


def fmtui(*args, **env):
    return CliRunner().invoke(Entry(), [str(a) for a in args], env=env or None)


def train_tiny(tiny_data, *extra):
    return fmtui("--no-ui", "train", "--data-dir", tiny_data, "--epochs", 2, "--batch-size", 32, "--lr", 0.05, *extra)


def test_train_prints_lecture_lines_and_writes_the_run_folder(tiny_data, tmp_path):
    out = tmp_path / "run"
    result = train_tiny(tiny_data, "--out", out)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "Fashion-MNIST (600 train / 200 test) on cpu" in lines[0] and "203,530 parameters" in lines[0]
    epochs = [m for m in map(EPOCH_LINE.match, lines) if m]
    assert [m.groups() for m in epochs] == [("1", "2"), ("2", "2")]
    assert lines[-1].startswith("Done: Finished 2 epochs") and str(out) in lines[-1]
    config = json.loads((out / "config.json").read_text())
    assert config["lr"] == 0.05 and config["hidden"] == [256] and config["resolved"]["params"] == 203530
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert f"Test Accuracy: {rows[-1]['test_accuracy']:.2f}%" in epochs[-1].group(0)
    assert list(csv.DictReader((out / "metrics.csv").open()))[1]["test_accuracy"] == str(rows[1]["test_accuracy"])
    state = torch.load(out / "model.pt", weights_only=True)
    assert state["1.weight"].shape == (256, 784)
    wrong = list(csv.DictReader((out / "mislabeled.csv").open()))
    assert wrong and all(float(a["confidence"]) >= float(b["confidence"]) for a, b in zip(wrong, wrong[1:]))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["final"]["test_accuracy"] == rows[-1]["test_accuracy"]
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_default_run_folder_goes_under_runs_dir(tiny_data, tmp_path):
    result = train_tiny(tiny_data, "--runs-dir", tmp_path / "many", "--model", "softmax", "--epochs", 1)
    assert result.exit_code == 0
    (run,) = (tmp_path / "many").iterdir()
    assert "fashion-mnist-softmax-symmetric-lr0.05" in run.name and (run / "model.pt").is_file()


def test_json_mode_prints_one_object_per_event(tiny_data):
    result = train_tiny(tiny_data, "--json")
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished" and kinds.count("epoch") == 2
    assert events[-1]["status"] == "completed" and events[0]["params"] == 203530


def test_eval_reproduces_the_saved_accuracy(tiny_data, tmp_path):
    train_tiny(tiny_data, "--out", tmp_path / "run")
    acc = json.loads((tmp_path / "run" / "summary.json").read_text())["final"]["test_accuracy"]
    result = fmtui("--no-ui", "eval", tmp_path / "run", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["test_accuracy"] == acc


BAD = [
    (["--lr", "-1"], "--lr"),
    (["--lr", "abc"], "'abc' is not a number"),
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"),
    (["--hidden", "12,x"], "'x' is not a positive integer"),
    (["--dataset", "imagenet"], "unknown value 'imagenet'"),
    (["--model", "resnet"], "choose from softmax, mlp, cnn"),
    (["--norm", "minmax"], "--norm"),
    (["--device", "tpu"], "--device"),
    (["--nesterov"], "--momentum > 0"),
    (["--val-split", "0.95"], "--val-split"),
    (["--no-such-option"], "No such option"),
]


@pytest.mark.parametrize("args,needle", BAD)
def test_bad_values_get_one_line_and_exit_2(tiny_data, args, needle):
    result = train_tiny(tiny_data, *args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ") and needle in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_usage_error(tiny_data):
    result = train_tiny(tiny_data, "--device", "cuda")
    assert result.exit_code == 2 and "CUDA is not available" in result.stderr and result.stderr.count("\n") == 1


def test_missing_data_names_the_files(tmp_path):
    result = fmtui("--no-ui", "train", "--data-dir", tmp_path / "empty")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "t10k-labels-idx1-ubyte.gz" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()  # nothing half-made


def test_out_folder_that_holds_something_is_refused(tiny_data, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    result = train_tiny(tiny_data, "--out", tmp_path / "busy")
    assert result.exit_code == 2 and "not empty" in result.stderr
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"


def test_eval_of_a_folder_that_is_no_run(tmp_path):
    result = fmtui("--no-ui", "eval", tmp_path)
    assert result.exit_code == 2 and "not a fmtui run folder" in result.stderr and result.stderr.count("\n") == 1


def test_diverged_run_says_where_and_keeps_its_files(tiny_data, tmp_path):
    result = fmtui(
        "--no-ui",
        "train",
        "--data-dir",
        tiny_data,
        "--norm",
        "none",
        "--lr",
        "100",
        "--hidden",
        "256,256,256",
        "--activation",
        "gelu",
        "--batch-size",
        "16",
        "--out",
        tmp_path / "run",
    )
    assert result.exit_code == 1
    assert re.search(r"Diverged: Diverged at epoch 1, batch \d+", result.stderr)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "diverged"


def test_no_ui_without_a_command_is_a_usage_error():
    result = fmtui("--no-ui")
    assert result.exit_code == 2 and "needs a command" in result.stderr


def test_ctrl_c_stops_after_the_batch_keeps_metrics_and_exits_130(tiny_data, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fmtui",
            "--no-ui",
            "train",
            "--data-dir",
            str(tiny_data),
            "--epochs",
            "100000",
            "--batch-size",
            "8",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        for line in proc.stdout:
            if line.startswith("Epoch [1/"):
                break
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "Stopped: Stopped during epoch" in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["epochs_done"] >= 1
    assert len((out / "metrics.jsonl").read_text().splitlines()) == summary["epochs_done"]


@pytest.mark.parametrize(
    "error, code, message",
    [
        (KeyboardInterrupt(), 130, "aborted by a second Ctrl+C"),
        (RuntimeError("not a Ctrl+C at all"), 1, "RuntimeError: not a Ctrl+C at all"),  # the text decides nothing
    ],
)
def test_the_exit_code_of_an_error_comes_from_its_kind(tiny_data, tmp_path, monkeypatch, error, code, message):
    from fmtui import engine
    from fmtui.events import EpochEnd

    real_train = engine.train

    def train_then_fail(cfg, **kw):
        for ev in real_train(cfg, **kw):
            yield ev
            if isinstance(ev, EpochEnd):
                raise error

    monkeypatch.setattr(engine, "train", train_then_fail)
    result = train_tiny(tiny_data, "--out", tmp_path / "run")
    assert (
        result.exit_code == code
        and result.stderr.strip() == f"Error: {message}; metrics so far are in {tmp_path / 'run'}"
    )
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "error" and summary["message"] == message and summary["epochs_done"] == 1

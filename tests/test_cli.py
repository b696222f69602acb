"""The command line: click's CliRunner, the entry point with a fake terminal and app factory, and real signals
to subprocesses."""

import csv
import io
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
from fmtui.config import RunConfig

pytestmark = pytest.mark.cli

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
    assert [p.name for p in out.glob(".*")] == [".lock"]  # the writer's lock, and no temporary files left behind


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
    assert (
        re.search(r"^Diverged at epoch 1, batch \d+", result.stderr, re.M) and "Diverged: Diverged" not in result.stderr
    )
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
    assert "Traceback" not in stderr and "Stopped during epoch" in stderr and "Stopped: Stopped" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["epochs_done"] >= 1
    assert len((out / "metrics.jsonl").read_text().splitlines()) == summary["epochs_done"]


# --- the dashboard from the command line --------------------------------------------------------


class FakeApp:
    return_code = 0

    def run(self) -> None:
        pass


@pytest.fixture
def app_factory(monkeypatch) -> list[tuple[RunConfig, dict]]:
    """Replaces the app factory; each call is recorded as (config, keyword arguments)."""
    import fmtui.app
    import fmtui.cli

    calls = []

    def make_app(config, **kw):
        calls.append((config, kw))
        return FakeApp()

    monkeypatch.setattr(fmtui.app, "make_app", make_app)
    monkeypatch.setattr(fmtui.cli, "make_app", make_app, raising=False)  # should cli import it at the top
    monkeypatch.setattr(os, "_exit", sys.exit)  # the CLI leaves with os._exit once torch is loaded
    return calls


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def fmtui_in(monkeypatch, stdout: io.StringIO, *args) -> int:
    """Run the real entry point with stdout replaced (a terminal or not); return the exit code."""
    monkeypatch.setattr(sys, "stdout", stdout)
    with pytest.raises(SystemExit) as done:
        main([str(a) for a in args])
    return done.value.code


@pytest.mark.parametrize(
    "args,config,autostart",
    [
        ([], RunConfig(), False),
        (["--data-dir", "some/where"], RunConfig(data_dir="some/where"), False),
        (["train"], RunConfig(), True),
        (
            ["train", "--norm", "zscore", "--lr", "0.05", "--hidden", "64,32", "--data-dir", "d"],
            RunConfig(norm="zscore", lr=0.05, hidden=(64, 32), data_dir="d"),
            True,
        ),
    ],
)
def test_without_no_ui_a_terminal_gets_the_dashboard(monkeypatch, app_factory, args, config, autostart):
    assert fmtui_in(monkeypatch, Terminal(), *args) == 0
    ((made, kw),) = app_factory
    assert made == config and kw.get("autostart", False) is autostart


def test_the_dashboard_without_a_terminal_is_refused_in_one_line(monkeypatch, capsys, app_factory):
    assert fmtui_in(monkeypatch, io.StringIO()) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: the dashboard needs a terminal") and err.count("\n") == 1 and "--no-ui" in err
    assert app_factory == []


@pytest.mark.parametrize(
    "stdout,extra,printed",
    [(io.StringIO, [], "Epoch [1/1], Loss: "), (Terminal, ["--json"], '"event": "epoch"')],
    ids=["no terminal", "json"],
)
def test_train_without_a_terminal_or_with_json_trains_headless(
    monkeypatch, app_factory, tiny_data, stdout, extra, printed
):
    """As `fmtui train --help` says: the dashboard only in a terminal, and never for --json (or --out)."""
    out = stdout()
    args = ["train", "--data-dir", tiny_data, "--model", "softmax", "--epochs", 1, "--batch-size", 64, *extra]
    assert fmtui_in(monkeypatch, out, *args) == 0
    assert app_factory == [] and printed in out.getvalue()


# --- Ctrl+C in a real process ---------------------------------------------------------------------

# `fmtui ARGS` in a subprocess whose training batch number BLOCK_AT (a mean loss computed with gradients
# on: evaluation runs without) waits until SIGNALS Ctrl+C have arrived, so that each signal lands at a
# known point. Ctrl+C are counted by the interpreter's wakeup fd, whatever handler fmtui installs.
DRIVER = """
import os, signal, sys, time
import torch
import torch.nn.functional as F
from fmtui.cli import main

block_at, signals = int(sys.argv[1]), int(sys.argv[2])
r, w = os.pipe()
os.set_blocking(r, False)
os.set_blocking(w, False)
signal.set_wakeup_fd(w)
real, calls = F.cross_entropy, [0]

def cross_entropy(*args, **kw):
    if torch.is_grad_enabled() and kw.get("reduction", "mean") == "mean":
        calls[0] += 1
        if calls[0] == block_at:
            print("test: waiting in a training batch", file=sys.stderr, flush=True)
            seen = 0
            while seen < signals:
                time.sleep(0.01)
                try:
                    seen += os.read(r, 64).count(signal.SIGINT)
                except BlockingIOError:
                    pass
    return real(*args, **kw)

F.cross_entropy = cross_entropy
main(sys.argv[3:])
"""


def fmtui_process(block_at: int, signals: int, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(block_at), str(signals), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def read_until(stream, needle: str, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)
        if needle in line:
            return
    raise AssertionError(f"{needle!r} never came:\n{''.join(lines)}")


def interrupt(proc: subprocess.Popen, times: int) -> tuple[str, str]:
    """Ctrl+C `times` times once the process waits in its training batch (each after fmtui answered the
    previous one); then its stdout and its whole stderr."""
    err: list[str] = []
    try:
        read_until(proc.stderr, "test: waiting in a training batch", err)
        for i in range(times):
            if i:
                read_until(proc.stderr, "Ctrl+C again", err)
            proc.send_signal(signal.SIGINT)
        stdout, rest = proc.communicate(timeout=300)  # a guard against a hang, not a speed limit
    finally:
        proc.kill()
    return stdout, "".join(err) + rest


def test_a_second_ctrl_c_aborts_at_once_keeps_finished_epochs_and_exits_130(tiny_data, tmp_path):
    out = tmp_path / "run"
    # 600 training images in batches of 200: batch 5 is the second of epoch 2, after one finished epoch
    proc = fmtui_process(5, 2, "--no-ui", "train", "--data-dir", tiny_data, "--batch-size", 200, "--out", out)
    stdout, stderr = interrupt(proc, 2)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "second Ctrl+C" in stderr.splitlines()[-1]
    assert [line[:12] for line in stdout.splitlines() if line.startswith("Epoch [")] == ["Epoch [1/5],"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] not in ("running", "completed") and "Ctrl+C" in summary["message"]
    assert summary["epochs_done"] == 1 and len((out / "metrics.jsonl").read_text().splitlines()) == 1


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


# --- one regular command line: options at either level, --no-ui where typed, one spelling -----------------


def test_commands_that_never_need_the_dashboard_run_without_no_ui_and_accept_it(tiny_data, tmp_path):
    runs = tmp_path / "runs"
    train = fmtui("train", "--no-ui", "--data-dir", tiny_data, "--model", "softmax", "--epochs", 1, "--runs-dir", runs)
    assert train.exit_code == 0, train.output
    (run,) = runs.iterdir()
    for args in (["eval", run], ["eval", "--no-ui", run], ["runs", runs], ["runs", "--no-ui", runs]):
        result = fmtui(*args)
        assert result.exit_code == 0 and "Error" not in result.output, (args, result.output)


def test_options_of_fmtui_itself_reach_its_commands_and_a_commands_own_wins(tiny_data, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    args = ["--model", "softmax", "--epochs", 1]
    assert fmtui("--no-ui", "--data-dir", tiny_data, "--runs-dir", a, "train", *args).exit_code == 0
    assert fmtui("--data-dir", tiny_data, "--runs-dir", a, "train", "--no-ui", "--runs-dir", b, *args).exit_code == 0
    assert len(list(a.iterdir())) == 1 and len(list(b.iterdir())) == 1
    listed = fmtui("--runs-dir", b, "runs", "--json")
    assert [json.loads(line)["status"] for line in listed.stdout.splitlines()] == ["completed"]
    assert fmtui("--data-dir", tmp_path / "nothing", "eval", next(b.iterdir())).exit_code == 2  # not as trained


def test_help_lists_the_environment_variables_and_they_are_read(monkeypatch, tmp_path):
    help_text = " ".join(fmtui("--help").output.split())
    for name in ("FMTUI_DATA_DIR", "FMTUI_RUNS_DIR", "FMTUI_NO_DOWNLOAD", "FMTUI_DEBUG"):
        assert f"env var: {name}" in help_text
    monkeypatch.setenv("FMTUI_DEBUG", "0")  # so that it is restored (unset) after the test: the CLI sets it
    monkeypatch.setenv("FMTUI_NO_DOWNLOAD", "no")
    assert fmtui_in(monkeypatch, io.StringIO(), "--debug", "--no-download", "runs", tmp_path) == 0
    assert os.environ["FMTUI_NO_DOWNLOAD"] == "1" and os.environ["FMTUI_DEBUG"] == "1"
    monkeypatch.setenv("FMTUI_NO_DOWNLOAD", "0")
    assert fmtui_in(monkeypatch, io.StringIO(), "runs", tmp_path) == 0 and "FMTUI_NO_DOWNLOAD" not in os.environ
    missing = fmtui("--no-ui", "--no-download", "train", "--data-dir", tmp_path / "empty", FMTUI_NO_DOWNLOAD="")
    assert missing.exit_code == 2 and "downloads are off" in missing.stderr
    bad = fmtui("runs", FMTUI_NO_DOWNLOAD="maybe")
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1 and "FMTUI_NO_DOWNLOAD" in bad.stderr
    assert "'maybe' is neither yes nor no: 1, true, yes, on, or 0, false, no, off" in bad.stderr  # not ", 0, 1, f"


@pytest.mark.parametrize(
    "args,message",
    [
        (["--optimizer", "adam", "--momentum", "0.9"], "--momentum applies to --optimizer sgd only (adam ignores it)"),
        (["--batch-norm", "--no-batch-norm"], "--batch-norm and --no-batch-norm contradict each other"),
    ],
)
def test_an_option_that_would_be_ignored_or_contradicted_is_refused(args, message):
    result = fmtui("train", "--no-ui", *args)
    assert result.exit_code == 2 and result.stderr.startswith(f"Error: {message}") and result.stderr.count("\n") == 1


def configs_of(result) -> list[dict]:
    return [json.loads(line)["config"] for line in result.stdout.splitlines() if '"event": "started"' in line]


@pytest.mark.parametrize(
    "flags,batch_norm",
    [(["--batch-norm"], [True]), (["--batch-norm", "no"], [False]), (["--no-batch-norm"], [False])],
)
def test_train_and_sweep_spell_a_yes_no_option_alike(tiny_data, flags, batch_norm):
    """`--batch-norm` alone is yes, also before another option; a sweep takes the same and lists."""
    common = ["--data-dir", tiny_data, "--hidden", "16", "--epochs", 1, "--json"]
    trained = fmtui("train", *flags, *common)
    assert trained.exit_code == 0 and [c["batch_norm"] for c in configs_of(trained)] == batch_norm
    swept = fmtui("sweep", *flags, *common)
    assert swept.exit_code == 0, swept.output
    assert [json.loads(line)["batch_norm"] for line in swept.stdout.splitlines()[:-1]] == batch_norm


@pytest.mark.parametrize("flags", [["--batch-norm", "yes,no"], ["--batch-norm", "--no-batch-norm"]])
def test_a_sweep_lists_both_values_of_a_yes_no_option(tiny_data, flags):
    swept = fmtui("sweep", *flags, "--data-dir", tiny_data, "--hidden", "16", "--epochs", 1, "--json")
    rows = [json.loads(line) for line in swept.stdout.splitlines() if '"event": "run"' in line]
    assert swept.exit_code == 0 and sorted(r["batch_norm"] for r in rows) == [False, True]


def test_a_sweep_says_which_runs_ignore_momentum(tiny_data):
    args = ["--optimizer", "sgd,adam", "--momentum", "0.9", "--model", "softmax", "--epochs", 1]
    swept = fmtui("sweep", "--data-dir", tiny_data, *args)
    assert swept.exit_code == 0
    assert "Note: --momentum applies to --optimizer sgd only; the adam runs ignore it" in swept.stderr


def test_config_reruns_a_run_with_the_options_given_changing_it(tiny_data, tmp_path):
    first = ["--data-dir", tiny_data, "--model", "softmax", "--norm", "zscore", "--lr", "0.05", "--epochs", 1]
    assert fmtui("train", "--no-ui", *first, "--out", tmp_path / "one").exit_code == 0
    again = fmtui("train", "--no-ui", "--config", tmp_path / "one" / "config.json", "--lr", "0.1", "--json")
    (config,) = configs_of(again)
    original = json.loads((tmp_path / "one" / "config.json").read_text())
    assert again.exit_code == 0 and config == {**{k: original[k] for k in config}, "lr": 0.1}
    from_folder = fmtui("train", "--no-ui", "--config", tmp_path / "one", "--json")
    assert configs_of(from_folder)[0]["lr"] == 0.05


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "config.json: no such file"),
        ('{"lr": "x"}', "lr is a string ('x'), expected a number"),
        ("[1", "not valid JSON"),
        ('{"model": "rnn"}', "model: unknown value 'rnn'"),
    ],
)
def test_a_bad_config_file_is_one_line_and_exit_2(tmp_path, content, message):
    if content is not None:
        (tmp_path / "config.json").write_text(content)
    result = fmtui("train", "--no-ui", "--config", tmp_path)
    assert result.exit_code == 2 and result.stderr.startswith("Error: --config ") and message in result.stderr
    assert result.stderr.count("\n") == 1


def test_config_and_resume_together_are_refused(tmp_path):
    result = fmtui("train", "--resume", tmp_path, "--config", tmp_path)
    assert result.exit_code == 2 and "--config cannot change it" in result.stderr


@pytest.mark.parametrize(
    "words,expected",
    [
        ("fmtui train --norm z", ["zscore"]),
        ("fmtui sweep --norm unit,s", ["unit,symmetric"]),
        ("fmtui train --optimizer ", ["sgd", "adam", "adamw"]),
        ("fmtui tr", ["train"]),
    ],
)
def test_shell_completion_completes_commands_and_choice_values(words, expected):
    from fmtui.cli import cli

    env = {"_FMTUI_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1)}
    result = CliRunner().invoke(cli, [], prog_name="fmtui", env=env)
    assert [line.split(",", 1)[1] for line in result.output.splitlines()] == expected


def test_the_dashboard_runs_under_a_textual_driver_without_a_terminal(monkeypatch, app_factory):
    """textual serve and textual run choose the driver (TEXTUAL_DRIVER): fmtui's terminal check steps aside."""
    monkeypatch.setenv("TEXTUAL_DRIVER", "textual.drivers.web_driver:WebDriver")
    assert fmtui_in(monkeypatch, io.StringIO()) == 0 and len(app_factory) == 1


def test_the_app_class_alone_makes_the_dashboard(tmp_path, monkeypatch):
    """`textual run fmtui.app:FmtuiApp` makes the app with no arguments: fmtui's own defaults."""
    from fmtui.app import FmtuiApp
    from fmtui.workers import run_training

    app = FmtuiApp()
    assert app.initial_config == RunConfig() and app.runs_dir == tmp_path / "runs" and app.trainer is run_training

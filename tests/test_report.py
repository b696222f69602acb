"""The text made for people (fmtui.report) and the choice of exit code, from hand-made events (no torch)."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from fmtui.config import ConfigError, RunConfig
from fmtui.errors import ExitCode, error_message
from fmtui.events import BatchProgress, EpochEnd, Finished, NormStats, Started
from fmtui.report import closing_line, epoch_line, event_json, format_table, header_line, sweep_line
from fmtui.text import plural

CFG = RunConfig(epochs=2)
STARTED = Started(CFG, "Fashion-MNIST", ["a", "b"], "cpu (1 thread)", "784-256-10 relu", 203530, 600, 0, 200, 19,
                  NormStats("symmetric", (127.5,), (127.5,)), 1)  # fmt: skip
EPOCH = EpochEnd(1, 2, 0.78664, 74.7312, 0.58171, 79.18, 1.234, 0.1, 486.0, 0.01)
PROGRESS = BatchProgress(1, 2, 5, 19, 0.9, 70.0, 500.0, 1.0, 3.0, 5)


def finished(status: str, message: str) -> Finished:
    return Finished(status, message, [EPOCH], None, 1.2, model=None)


def test_lines_of_one_run():
    assert header_line(STARTED) == (
        "Fashion-MNIST (600 train / 200 test) on cpu (1 thread) | 784-256-10 relu, 203,530 parameters | "
        "symmetric: (x - 127.5) / 127.5 | sgd lr 0.01, batch 64, 2 epochs"
    )
    assert epoch_line(EPOCH) == (
        "Epoch [1/2], Loss: 0.7866, Accuracy: 74.73%, Test Loss: 0.5817, Test Accuracy: 79.18%, Time: 1.23s"
    )
    assert closing_line(finished("completed", "finished 2 epochs in 1.2s"), Path("runs/x")) == (
        "Done: Finished 2 epochs in 1.2s. Run saved in runs/x"
    )
    diverged = closing_line(finished("diverged", "diverged at epoch 1, batch 3: the loss is not finite"), None)
    assert diverged.startswith("Diverged at epoch 1, batch 3") and "try a smaller --lr" in diverged
    stopped = closing_line(finished("stopped", "stopped during epoch 3 after 2 complete epochs"), Path("runs/x"))
    assert stopped == "Stopped during epoch 3 after 2 complete epochs. Run saved in runs/x"
    assert plural(1, "epoch") == "1 epoch" and plural(0, "run") == "0 runs"


def test_every_event_has_its_own_json_kind():
    events = (STARTED, PROGRESS, EPOCH, finished("stopped", "s"))
    kinds = [json.loads(event_json(ev, Path("r")))["event"] for ev in events]
    assert kinds == ["started", "progress", "epoch", "finished"]


def test_a_diverging_progress_event_is_still_strict_json():
    """The engine reports the curve up to a divergence: that last progress event's loss is NaN, printed as null."""
    diverging = BatchProgress(1, 2, 5, 19, float("nan"), 70.0, 500.0, 1.0, 3.0, 5, losses=[(5, float("nan"))])

    def strict(line: str) -> dict:  # NaN, Infinity: not JSON
        return json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in {line}"))

    assert strict(event_json(diverging, None))["loss"] is None and strict(event_json(PROGRESS, None))["loss"] == 0.9


def test_an_unknown_event_is_not_taken_for_finished():
    @dataclass
    class Finished:  # the same name and fields as the real one: dispatch is by type, never by name
        status: str = "completed"
        message: str = ""
        history: tuple = ()
        seconds: float = 0.0

    with pytest.raises(TypeError, match="not a training event"):
        event_json(Finished(), None)
    with pytest.raises(TypeError):
        event_json(object(), None)


def test_exit_code_comes_from_the_status():
    assert [ExitCode.of_status(s) for s in ("completed", "stopped", "diverged")] == [0, 130, 1]
    assert ExitCode.USAGE == 2 and all(member.__doc__ for member in ExitCode)


def test_error_messages_are_one_line():
    assert error_message(ConfigError("--lr: must be positive")) == "--lr: must be positive"
    assert error_message(KeyboardInterrupt()) == "aborted by a second Ctrl+C"
    assert error_message(RuntimeError("Ctrl+C\nstack")) == "RuntimeError: Ctrl+C"


ROW = dict(run="r1", norm="zscore", lr="0.01", test_loss=0.45213, test_accuracy=84.123, best_test_accuracy=84.5,
           best_test_epoch=2, best_val_accuracy=None, diverged=False, status="completed", seconds=12.34,
           varying="norm=zscore lr=0.01")  # fmt: skip


def test_sweep_line_and_table():
    assert sweep_line(3, 8, ROW) == "[3/8] norm=zscore lr=0.01: test accuracy 84.12%, test loss 0.4521, 12.3s"
    stopped = sweep_line(1, 2, {**ROW, "status": "stopped", "test_loss": None, "test_accuracy": None})
    assert stopped.endswith("test accuracy -, test loss -, 12.3s [stopped]")
    other = {**ROW, "run": "r2", "norm": "none", "best_test_accuracy": 70.0, "diverged": True, "varying": "norm=none"}
    table = format_table([ROW, other], "best_test_accuracy", ["norm", "lr"]).splitlines()
    assert table[0].split() == ["norm", "lr", "test", "final", "test", "best", "best", "ep", "health", "seconds"]
    assert table[2].split() == ["zscore", "0.01", "84.12%", "84.50%", "2", "ok", "12.3"]
    assert table[3].split()[-2] == "diverged"  # a row of a sweep summary written before health
    assert table[-1].startswith("Best: norm=zscore lr=0.01 (ranked on the test set")


def test_the_headless_progress_bar_keeps_its_scopes_apart():
    """The bar and its count cover the whole run, the label the epoch: 'Epoch 2/2 · batch 5/19 ... 63% of the
    run', never 'Epoch 2/2 ... 24/38' (an epoch's label beside the run's batch count)."""
    import io

    from rich.console import Console

    from fmtui.headless import RichReporter

    with RichReporter() as reporter:
        reporter.handle(STARTED, None)
        reporter.handle(BatchProgress(2, 2, 5, 19, 0.9, 70.0, 500.0, 1.0, 3.0, 24), None)
        console = Console(file=io.StringIO(), width=200, color_system=None)
        console.print(reporter.progress.make_tasks_table(reporter.progress.tasks))
    row = console.file.getvalue()
    assert "Epoch 2/2 · batch 5/19" in row and "63% of the run" in row and "24/38" not in row

"""The fault suite for input and output: what an adversary broke (issue 10) and must stay fixed.

Unicode digits and edge values, degenerate and hostile dataset files, --out and runs folders that cannot be
written, a sweep with a failing run, resources that cannot fit, a closed or broken stdout, and Ctrl+C at the
earliest moments. Each case must end in one clear line, the right exit code, no traceback and nothing lost.
Tests carry their own tier marker (engine, cli or app), so `pytest -m cli` and friends still pick by tier.
"""

from __future__ import annotations

import pytest
from test_cli import fmtui, train_tiny

engine, cli, app = pytest.mark.engine, pytest.mark.cli, pytest.mark.app


def one_line_error(result, code: int = 2) -> str:
    """The error line of a command that failed as bad input must: exit code, one line, no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("Error: ")
    return result.stderr.strip()


# --- 8. Unicode digits: ASCII only, in every numeric option ----------------------------------------------

UNICODE_DIGITS = [
    (["--hidden", "²"], "'²' is not a positive integer"),
    (["--hidden", "2,³"], "'³' is not a positive integer"),
    (["--hidden", "٢٥٦"], "'٢٥٦' is not a positive integer"),
    (["--batch-size", "１２８"], "'１２８' is not an integer"),
    (["--epochs", "٢"], "'٢' is not an integer"),
    (["--lr", "０.１"], "'０.１' is not a number"),  # float('０.１') is 0.1 in Python
    (["--val-split", "٠.١"], "'٠.١' is not a number"),
]


@cli
@pytest.mark.parametrize("args,needle", UNICODE_DIGITS, ids=lambda v: v if isinstance(v, str) else v[0])
def test_unicode_digits_are_refused_in_one_line(tiny_data, args, needle):
    line = one_line_error(train_tiny(tiny_data, *args))
    assert needle in line and "only the digits 0-9 count" in line


@cli
@pytest.mark.parametrize(
    "args", [["--hidden", "256;2,³"], ["--lr", "0.1,１２８"], ["--batch-size", "64", "--seed", "١"]]
)
def test_unicode_digits_in_a_sweep_are_refused_before_anything_is_made(tiny_data, tmp_path, args):
    result = fmtui("--no-ui", "sweep", "--data-dir", tiny_data, "--out", tmp_path / "s", *args)
    assert "only the digits 0-9 count" in one_line_error(result)
    assert not (tmp_path / "s").exists()


@app
def test_the_dashboard_form_shows_a_field_error_for_unicode_digits(tiny_data):
    import asyncio

    from pilot import wait_for
    from textual.events import Paste
    from textual.widgets import Button, Input, Static

    from fmtui.app import make_app
    from fmtui.config import RunConfig

    async def scenario() -> None:
        app = make_app(RunConfig(data_dir=str(tiny_data)))  # the data is there: Start waits only for the form
        async with app.run_test(size=(100, 32)) as pilot:
            hidden, start = app.query_one("#f-hidden", Input), app.query_one("#start", Button)
            await wait_for(pilot, lambda: not start.disabled)  # the form as it opened: valid
            hidden.focus()
            hidden.value = ""
            hidden.post_message(Paste("2,³"))  # as a terminal delivers a paste
            note = app.query_one("#note-hidden", Static)
            # the field's note first, then Start follows the form's Changed message (cycles later under load)
            await wait_for(pilot, lambda: "'³' is not a positive integer" in str(note.render()) and start.disabled)
            assert hidden.value == "2,³" and app.form.config is None
            await pilot.press("end", "backspace", "5", "tab")  # the form is read as the field is left
            await wait_for(pilot, lambda: not start.disabled)
            assert hidden.value == "2,5" and app.form.config.hidden == (2, 5)

    asyncio.run(scenario())


# --- 9 and 13. Edge values and how limits are printed ------------------------------------------------------


@cli
@pytest.mark.parametrize(
    "args,line",
    [
        (["--batch-size", "9999999"], "must be <= 1048576, got 9999999"),
        (["--seed", "99999999999999999999"], "must be <= 9223372036854775807, got 99999999999999999999"),
        (["--weight-decay", "1e39"], "must be <= 1, got 1e39"),
        (["--val-split", "0.95"], "must be <= 0.9, got 0.95"),
    ],
)
def test_limits_are_printed_as_users_type_them(tiny_data, args, line):
    assert line in one_line_error(train_tiny(tiny_data, *args))


@cli
def test_a_sweep_with_an_absurd_weight_decay_is_refused_up_front(tiny_data, tmp_path):
    result = fmtui("--no-ui", "sweep", "--data-dir", tiny_data, "--weight-decay", "0,1e39", "--out", tmp_path / "s")
    assert "--weight-decay" in one_line_error(result) and not (tmp_path / "s").exists()


# --- 9. Degenerate and hostile dataset files ----------------------------------------------------------------


def write_images(folder, name: str, header: bytes, payload: bytes = b"", members: int = 0) -> None:
    """Replace one images file with an IDX header and payload, followed by `members` gzip members of 1 MiB of
    zeros each (a multi-member gzip file decompresses to their concatenation: a cheap gzip bomb)."""
    import gzip

    zeros = gzip.compress(bytes(1 << 20))
    (folder / name).write_bytes(gzip.compress(header + payload) + zeros * members)


def idx_header(*dims: int) -> bytes:
    import struct

    return bytes([0, 0, 0x08, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)


@cli
@pytest.mark.parametrize(
    "name,dims,labels",
    [
        ("train-images-idx3-ubyte.gz", (0, 28, 28), "train-labels-idx1-ubyte.gz"),  # 0 images
        ("t10k-images-idx3-ubyte.gz", (200, 0, 0), None),  # images of 0x0 pixels
        ("t10k-images-idx3-ubyte.gz", (200, 28, 0), None),
    ],
)
def test_an_idx_file_without_pixels_is_a_data_error_naming_the_file(tiny_data, name, dims, labels):
    import gzip

    write_images(tiny_data, name, idx_header(*dims))
    if labels:  # as many labels as images, so that only the emptiness is wrong
        (tiny_data / labels).write_bytes(gzip.compress(idx_header(0)))
    line = one_line_error(train_tiny(tiny_data))
    assert f"{tiny_data / name} holds no pixels: shape {dims}" in line


@engine
def test_a_gzip_bomb_is_never_decompressed_beyond_what_its_header_announces(tiny_data):
    import tracemalloc

    from conftest import synthetic_split

    from fmtui.data import DataError, load_dataset

    images, _ = synthetic_split(600, 0)
    name = "train-images-idx3-ubyte.gz"
    write_images(tiny_data, name, idx_header(600, 28, 28), images.tobytes(), members=256)  # + 256 MiB of zeros
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as info:
            load_dataset("fashion-mnist", tiny_data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(info.value).startswith(f"{tiny_data / name} is longer than its header says")
    assert peak < 32 << 20, f"{peak:,} bytes allocated while reading a 256 MiB gzip bomb"


@cli
def test_a_header_that_claims_gigabytes_is_refused_before_reading(tiny_data):
    name = "train-images-idx3-ubyte.gz"
    write_images(tiny_data, name, idx_header(4_000_000_000, 28, 28), members=4)
    line = one_line_error(train_tiny(tiny_data))
    assert f"{tiny_data / name}: its IDX header claims shape (4000000000, 28, 28)" in line


@cli
def test_a_truncated_file_is_a_data_error_naming_the_file(tiny_data):
    name = "t10k-labels-idx1-ubyte.gz"
    raw = (tiny_data / name).read_bytes()
    (tiny_data / name).write_bytes(raw[: len(raw) // 2])
    assert f"{tiny_data / name} is truncated" in one_line_error(train_tiny(tiny_data))


# --- 4 and 9. Destinations that cannot take a run are refused before the data is loaded ------------------------


@pytest.fixture
def read_only(tmp_path):
    """An empty folder on a read-only file system (a tiny tmpfs mounted read-only: root only, else skipped).
    chmod would not do: root writes through any mode bits."""
    import subprocess

    folder = tmp_path / "ro"
    folder.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], capture_output=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here ({mount.stderr.decode().strip() or mount.returncode})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def no_data(tmp_path):
    """A data folder without the files: a command that loaded the data first would fail on that instead."""
    return ["--data-dir", tmp_path / "no-data"]


@cli
@pytest.mark.parametrize(
    "command,where,line",
    [
        ("train", ["--out", "{ro}"], "Invalid value for '--out': {ro} is on a read-only file system"),
        ("train", ["--out", "{ro}/a/run"], "'--out': {ro}/a/run cannot be made: {ro} is on a read-only file system"),
        ("train", ["--runs-dir", "{ro}/runs"], "'--runs-dir': {ro}/runs cannot be made: {ro} is on a read-only"),
        ("sweep", ["--out", "{ro}", "--lr", "0.1,0.2"], "'--out': {ro} is on a read-only file system"),
        ("sweep", ["--runs-dir", "{ro}"], "'--runs-dir': {ro} is on a read-only file system"),
    ],
    ids=["train out", "train out below", "train runs-dir", "sweep out", "sweep runs-dir"],
)
def test_a_read_only_destination_is_refused_up_front(read_only, tmp_path, command, where, line):
    args = [a.format(ro=read_only) for a in where]
    result = fmtui("--no-ui", command, *args, *no_data(tmp_path))
    assert line.format(ro=read_only) in one_line_error(result)


@cli
def test_the_default_runs_folder_on_a_read_only_file_system_is_refused_up_front(read_only, tmp_path, monkeypatch):
    monkeypatch.setenv("FMTUI_RUNS_DIR", str(read_only / "runs"))
    line = one_line_error(fmtui("--no-ui", "train", *no_data(tmp_path)))
    assert line.startswith(f"Error: the runs folder {read_only}/runs cannot be made: {read_only} is on a read-only")


@cli
def test_a_folder_without_write_permission_is_refused_up_front(tmp_path, monkeypatch):
    """What a non-root user meets in someone else's folder (simulated: root passes every permission check)."""
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: str(p) != str(locked) and real_access(p, mode, **kw))
    result = train_tiny(tmp_path / "no-data", "--out", locked / "run")
    assert f"{locked}/run cannot be made: {locked} is not writable (permission denied)" in one_line_error(result)


@cli
@pytest.mark.parametrize(
    "out,line",
    [
        ("/dev/null", "Invalid value for '--out': /dev/null is not a folder"),
        (
            "{tmp}/" + "x" * 300,
            "the name 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' is 300 bytes long; names may have at",
        ),
        ("{tmp}/" + "é" * 200 + "/run", "is 400 bytes long"),  # the limit counts bytes, not characters
        ("{tmp}/file/run", "{tmp}/file is not a folder"),
    ],
    ids=["a device", "300 characters", "400 bytes", "inside a file"],
)
def test_an_out_that_cannot_be_a_run_folder_is_refused_up_front(tmp_path, out, line):
    (tmp_path / "file").write_text("mine")
    result = fmtui("--no-ui", "train", "--out", out.format(tmp=tmp_path), *no_data(tmp_path))
    assert line.format(tmp=tmp_path) in one_line_error(result)
    assert (tmp_path / "file").read_text() == "mine"


@cli
def test_the_dashboard_gets_the_runs_folder_given_to_train(monkeypatch, tmp_path):
    from test_cli import FakeApp, Terminal, fmtui_in

    import fmtui.app

    made = []
    monkeypatch.setattr(fmtui.app, "make_app", lambda config, **kw: made.append(kw) or FakeApp())
    monkeypatch.setattr("os._exit", __import__("sys").exit)
    assert fmtui_in(monkeypatch, Terminal(), "train", "--runs-dir", tmp_path / "elsewhere") == 0
    assert [{k: kw[k] for k in ("runs_dir", "autostart")} for kw in made] == [
        {"runs_dir": tmp_path / "elsewhere", "autostart": True}
    ]


# --- 5. One failing run does not end a sweep ----------------------------------------------------------------


@cli
def test_a_failing_run_is_recorded_and_the_sweep_goes_on_then_exits_1(tiny_data, tmp_path, monkeypatch):
    """lr 0.02 fails after its first epoch (a device error, say), lr 0.03 before it starts; 0.05 and 0.01 train."""
    import csv
    import json

    from fmtui import engine
    from fmtui.events import EpochEnd

    real_train = engine.train

    def train(cfg, **kw):
        if cfg.lr == 0.03:
            raise RuntimeError("no device left")
        for ev in real_train(cfg, **kw):
            yield ev
            if cfg.lr == 0.02 and isinstance(ev, EpochEnd):
                raise RuntimeError("device lost")

    monkeypatch.setattr(engine, "train", train)
    out = tmp_path / "sweep"
    args = ["--model", "softmax", "--lr", "0.05,0.02,0.03,0.01", "--epochs", 2, "--sequential", "--out", out]
    result = fmtui("--no-ui", "sweep", "--data-dir", tiny_data, *args)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.stderr.splitlines()[-1] == (
        "Error: 2 of 4 runs failed: lr=0.02, lr=0.03 (RuntimeError: device lost); "
        f"every run's status is in {out / 'summary.csv'}"
    )
    lines = result.stdout.splitlines()
    assert "[2/4] lr=0.02: test accuracy " in lines[2] and lines[2].endswith("[error: RuntimeError: device lost]")
    assert lines[3] == "[3/4] lr=0.03: test accuracy -, test loss -, 0.0s [error: RuntimeError: no device left]"
    assert lines[4].startswith("[4/4] lr=0.01: test accuracy ") and "None" not in result.stdout
    rows = {r["lr"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert {lr: r["status"] for lr, r in rows.items()} == {
        "0.05": "completed",
        "0.02": "error",
        "0.03": "error",
        "0.01": "completed",
    }
    assert rows["0.02"]["message"] == "RuntimeError: device lost" and rows["0.03"]["run"] == ""  # it never started
    failed = json.loads((out / rows["0.02"]["run"] / "summary.json").read_text())
    assert failed["status"] == "error" and failed["epochs_done"] == 1  # the folder says error, not running
    assert {p.name for p in out.iterdir() if p.is_dir()} == {rows[lr]["run"] for lr in ("0.05", "0.02", "0.01")}
    saved = json.loads((out / "summary.json").read_text())["runs"]
    assert [r["status"] for r in saved] == ["completed", "completed", "error", "error"]  # ranked, failures last


@cli
def test_a_sweep_where_every_run_failed_names_no_best_run(tiny_data, tmp_path, monkeypatch):
    from fmtui import engine

    def train(cfg, **kw):
        raise RuntimeError("no device left")
        yield

    monkeypatch.setattr(engine, "train", train)
    result = fmtui("--no-ui", "sweep", "--data-dir", tiny_data, "--lr", "0.1,0.2", "--sequential")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Best:" not in result.stdout and "test loss None" not in result.stdout
    assert result.stderr.startswith("Error: 2 of 2 runs failed: lr=0.1, lr=0.2 (RuntimeError: no device left)")


# --- 11. A closed stdout never ends a run -------------------------------------------------------------------

# `python -m fmtui ARGS` whose training batch number BLOCK_AT waits until the file GO exists: the test closes the
# reading end of stdout first, so the next line fmtui prints meets a closed reader, at a known point.
PAUSE_AT_BATCH = """
import runpy, sys, time
from pathlib import Path
import torch
import torch.nn.functional as F

block_at, go = int(sys.argv[1]), Path(sys.argv[2])
real, calls = F.cross_entropy, [0]

def cross_entropy(*args, **kw):
    if torch.is_grad_enabled() and kw.get("reduction", "mean") == "mean":
        calls[0] += 1
        while calls[0] == block_at and not go.exists():
            time.sleep(0.01)
    return real(*args, **kw)

F.cross_entropy = cross_entropy
sys.argv = ["fmtui", *sys.argv[3:]]
runpy.run_module("fmtui", run_name="__main__", alter_sys=True)
"""


def paused_fmtui(go, *args, **popen):
    import os
    import subprocess
    import sys

    command = [sys.executable, "-c", PAUSE_AT_BATCH, "2", str(go), *map(str, args)]
    return subprocess.Popen(command, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"}, **popen)


def finish(proc, timeout: float = 300) -> str:
    """The whole stderr of a process once it ended (the timeout guards against a hang, it measures nothing)."""
    try:
        err = proc.communicate(timeout=timeout)[1].decode()
    finally:
        proc.kill()
    return err


def assert_run_completed(out, epochs: int) -> None:
    import json

    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_done"] == epochs, summary
    assert (out / "model.pt").is_file() and len((out / "metrics.jsonl").read_text().splitlines()) == epochs


TRAIN = ["--no-ui", "train", "--model", "softmax", "--epochs", 3, "--batch-size", 200]


@cli
@pytest.mark.parametrize("extra", [[], ["--json"]], ids=["lines", "json"])
def test_a_reader_that_closes_the_pipe_early_does_not_end_the_training_run(tiny_data, tmp_path, extra):
    """`fmtui --no-ui train | head -1`: the run trains to the end, exits 0, and says once that stdout is gone."""
    import subprocess

    out, go = tmp_path / "run", tmp_path / "go"
    proc = paused_fmtui(go, *TRAIN, "--data-dir", tiny_data, "--out", out, *extra, stdout=subprocess.PIPE)
    first = proc.stdout.readline().decode()  # the header (or the started event), printed before batch 1
    assert first.startswith("Fashion-MNIST (600 train" if not extra else '{"event": "started"')
    proc.stdout.close()  # the reader goes away, as `head -1` does
    go.touch()
    err = finish(proc)
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert err.count("Note: stdout cannot be written (Broken pipe); fmtui goes on without printing to it") == 1
    assert_run_completed(out, 3)


@cli
def test_a_terminal_that_goes_away_does_not_end_the_run(tiny_data, tmp_path):
    """stdout is a terminal and its other end closes: writes then fail with EIO. (The progress bar draws on
    stderr, where it is a terminal: tests/test_progress_stderr.py closes that one under the bar.)"""
    import os

    out, go = tmp_path / "run", tmp_path / "go"
    master, slave = os.openpty()
    proc = paused_fmtui(go, *TRAIN, "--data-dir", tiny_data, "--out", out, stdout=slave)
    os.close(slave)
    seen = b""
    while b"Fashion-MNIST (600 train" not in seen:
        chunk = os.read(master, 4096)
        assert chunk, seen
        seen += chunk
    os.close(master)
    go.touch()
    err = finish(proc)
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "Note: stdout cannot be written (Input/output error)" in err
    assert_run_completed(out, 3)


@cli
def test_a_sweep_whose_reader_closes_early_trains_every_run_and_writes_its_summary(tiny_data, tmp_path):
    import csv
    import subprocess

    out, go = tmp_path / "sweep", tmp_path / "go"
    args = ["--no-ui", "sweep", "--model", "softmax", "--lr", "0.1,0.05", "--epochs", 2, "--batch-size", 200]
    proc = paused_fmtui(go, *args, "--data-dir", tiny_data, "--out", out, "--sequential", stdout=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"Sweep of 2 runs")
    proc.stdout.close()
    go.touch()
    err = finish(proc)
    assert proc.returncode == 0 and "Traceback" not in err and "Note: stdout cannot be written" in err, err
    assert [r["status"] for r in csv.DictReader((out / "summary.csv").open())] == ["completed", "completed"]


@cli
@pytest.mark.parametrize("extra", [[], ["--json"]], ids=["lines", "json"])
def test_a_stdout_closed_before_the_start_trains_and_says_so(tiny_data, tmp_path, extra):
    """`fmtui --no-ui train >&-`: Python starts with sys.stdout = None."""
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    command = [sys.executable, "-m", "fmtui", *map(str, TRAIN), "--data-dir", tiny_data, "--out", out, *extra]
    proc = subprocess.run(command, stderr=subprocess.PIPE, text=True, preexec_fn=lambda: os.close(1))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("Note: stdout was closed before fmtui started; fmtui goes on without printing")
    assert_run_completed(out, 3)


# --- 12. Ctrl+C at any moment quits with 130 ------------------------------------------------------------------

# `python -m fmtui ARGS` that reports reaching STAGE on stderr: "main" (fmtui.cli.main has begun: the click
# group is about to parse), or the import of a module ("torch"; "torch.nn", imported from inside torch's own
# __init__). With `wait:` it then waits there for a Ctrl+C (so the signal lands exactly at that stage), with
# `go:` it carries on (the test then sends Ctrl+C some time later, wherever the program has got to).
AT_STAGE = """
import importlib.abc, importlib.machinery, runpy, sys, time

mode, stage = sys.argv[1].split(":")

def reached():
    print(f"test: reached {stage}", file=sys.stderr, flush=True)
    if mode == "wait":
        for _ in range(12000):  # 120 s: a guard against a hang, not a timing
            time.sleep(0.01)
        print("test: no Ctrl+C arrived", file=sys.stderr, flush=True)

# The module's own loader, reaching the stage as the module's code begins to run: the import holds that
# module's lock then, as a slow import does (a finder runs under Python's global import lock, which no real
# import holds for long and a signal cannot interrupt).
class Waiting(importlib.abc.Loader):

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        reached()
        self.loader.exec_module(module)

class Importing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != stage:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        spec.loader = Waiting(spec.loader)
        return spec

if stage == "main":
    import fmtui.cli
    group_main = fmtui.cli.cli.main
    def main(*args, **kw):
        reached()
        return group_main(*args, **kw)
    fmtui.cli.cli.main = main
else:
    sys.meta_path.insert(0, Importing())
sys.argv = ["fmtui", *sys.argv[2:]]
runpy.run_module("fmtui", run_name="__main__", alter_sys=True)
"""


def interrupted_at(stage: str, delay: float, tiny_data, out) -> tuple[int, str]:
    """Start fmtui at STAGE (see AT_STAGE), send one Ctrl+C `delay` seconds after it got there; (exit code, stderr)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    args = ["--no-ui", "train", "--data-dir", tiny_data, "--epochs", 100000, "--batch-size", 8, "--out", out]
    proc = subprocess.Popen(
        [sys.executable, "-c", AT_STAGE, stage, *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        err = [proc.stderr.readline()]
        assert err[0].startswith(f"test: reached {stage.split(':')[1]}"), err[0] + proc.stderr.read()
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        err.append(proc.communicate(timeout=300)[1])  # a guard against a hang (a swallowed Ctrl+C), not a timing
    finally:
        proc.kill()
    return proc.returncode, "".join(err)


@cli
@pytest.mark.parametrize("stage", ["wait:main", "wait:torch", "wait:torch.nn"])
def test_ctrl_c_at_an_early_stage_quits_at_once_with_130(tiny_data, tmp_path, stage):
    """Before a run begins there is nothing to keep: fmtui quits at once (torch used to swallow this Ctrl+C
    and train the whole run, or fail with a RecursionError)."""
    code, err = interrupted_at(stage, 0, tiny_data, tmp_path / "run")
    assert code == 130 and "Traceback" not in err and "Error" not in err, err
    assert err.splitlines()[-1] == "Interrupted by Ctrl+C." and not (tmp_path / "run").exists()


@cli
@pytest.mark.parametrize("delay", [0, 0.2, 0.5, 1.0])
def test_ctrl_c_any_time_after_the_start_ends_with_130(tiny_data, tmp_path, delay):
    """Wherever the program has got to (imports, data, training), one Ctrl+C ends it with 130 and no traceback;
    once training began, the run folder says stopped."""
    import json

    code, err = interrupted_at("go:main", delay, tiny_data, tmp_path / "run")
    assert code == 130 and "Traceback" not in err and "Error" not in err, err
    if (tmp_path / "run" / "summary.json").exists():
        assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "stopped"


# --- 13. Words that say what happened ----------------------------------------------------------------------


@engine
def test_a_stopped_sweep_says_how_many_runs_finished():
    from fmtui.report import sweep_stopped

    assert sweep_stopped(0, 3) == "Stopped before any of the 3 runs finished."
    assert sweep_stopped(1, 3) == "Stopped after 1 of 3 runs finished; finished runs are kept."


# --- 10. Resources refused (or capped) up front ---------------------------------------------------------------

GiB = 1 << 30


@pytest.fixture
def ram_8gb(monkeypatch):
    """The CPU has 8 GiB free, whatever this machine has."""
    from fmtui import resources

    monkeypatch.setattr(resources, "_ram_available", lambda: 8 * GiB)


@cli
def test_a_model_that_cannot_fit_in_memory_is_refused_before_anything_is_allocated(tiny_data, tmp_path, ram_8gb):
    """--hidden 65536,65536: 4.3 G parameters, 35 GB with gradients, used to die in the allocator."""
    line = one_line_error(train_tiny(tiny_data, "--hidden", "65536,65536", "--device", "cpu"))
    assert line.startswith("Error: the run would need about 3") and "GB on cpu but 8.6 GB is free: 4,347," in line
    assert "use smaller --hidden sizes" in line
    assert not (tmp_path / "runs").exists()  # no run folder: nothing began


@cli
def test_a_batch_that_cannot_fit_is_refused_with_its_own_advice(tiny_data, monkeypatch):
    """With 200 MB free: the CNN's activations for a batch of all 600 images take about 600 MB; softmax fits."""
    from fmtui import resources

    monkeypatch.setattr(resources, "_ram_available", lambda: 200_000_000)
    line = one_line_error(train_tiny(tiny_data, "--model", "cnn", "--batch-size", 1 << 20, "--device", "cpu"))
    assert (
        "on cpu but 200 MB is free: 421,834 parameters" in line
        and "; use a smaller --batch-size (see fmtui train --help)" in line
    )
    result = train_tiny(tiny_data, "--model", "softmax", "--device", "cpu", "--epochs", 1)
    assert result.exit_code == 0, result.output


@cli
def test_a_stacked_sweep_group_that_cannot_fit_is_refused_up_front(tiny_data, tmp_path, ram_8gb):
    out = tmp_path / "s"
    args = ["--hidden", "30000,30000", "--lr", "0.1,0.2,0.3", "--device", "cpu", "--out", out, "--stacked"]
    line = one_line_error(fmtui("--no-ui", "sweep", "--data-dir", tiny_data, *args))
    assert line.startswith("Error: 3 stacked runs would need about ") and not out.exists()


@engine
def test_on_a_gpu_the_free_device_memory_and_the_dataset_count(monkeypatch):
    """The check on CUDA, without a GPU: torch's answers about the device are replaced."""
    import torch

    from fmtui.config import ConfigError, RunConfig
    from fmtui.resources import check_memory

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (1 * GiB, 80 * GiB))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 3 * GiB)  # torch's cache: free for this run
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 1 * GiB)
    cuda, shape = torch.device("cuda"), (1, 28, 28)
    check_memory(RunConfig(hidden=(16384,)), shape, 10, (60000, 10000), cuda)  # 0.7 GB: fits in the 3 GiB free
    with pytest.raises(ConfigError) as info:
        check_memory(RunConfig(hidden=(16384, 16384, 16384)), shape, 10, (60000, 10000), cuda)
    assert "GB on cuda but 3.2 GB is free" in str(info.value) and "the dataset (55 MB)" in str(info.value)


@cli
def test_threads_above_the_cores_are_capped_with_a_note(tiny_data, tmp_path, monkeypatch):
    import json
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    out = tmp_path / "run"
    result = train_tiny(tiny_data, "--threads", 999, "--device", "cpu", "--model", "softmax", "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == "Note: --threads 999 is more than the 2 cores here; CPU training uses 2"
    assert "on cpu (2 threads)" in result.stdout.splitlines()[0]
    assert json.loads((out / "config.json").read_text())["resolved"]["threads"] == 2

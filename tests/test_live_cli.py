"""Live runs from the command line: signals to a real `fmtui --no-ui train` process, `train --resume` and its
refusals, and a run folder on a full or read-only disk (see fmtui.recorder, README "Live runs")."""

import errno
import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_cli import DRIVER, fmtui, read_until
from test_live import config, record, stop_at

from fmtui import engine, recorder
from fmtui.events import EpochEnd
from fmtui.runfolder.writer import FolderLock

pytestmark = pytest.mark.cli

# test_cli's DRIVER (a training batch waits until N signals have arrived, so each lands at a known batch),
# counting every signal that reaches a Python handler, with SIGUSR1 as a no-op marker for the test.
LIVE_DRIVER = DRIVER.replace(".count(signal.SIGINT)", ".__len__()").replace(
    "signal.set_wakeup_fd(w)", "signal.set_wakeup_fd(w)\nsignal.signal(signal.SIGUSR1, lambda *a: None)"
)
assert LIVE_DRIVER.count("__len__") == 1 and "SIGUSR1" in LIVE_DRIVER


def train_process(block_at: int, signals: int, out: Path, *args, prefix: tuple = ()) -> subprocess.Popen:
    """`fmtui --no-ui train` on the tiny data into out, waiting in training batch block_at for `signals` signals."""
    return subprocess.Popen(
        [*prefix, sys.executable, "-c", LIVE_DRIVER, str(block_at), str(signals), "--no-ui", "train", *map(str, args)]
        + ["--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def send(proc: subprocess.Popen, signums: list[int], answered: bool = True) -> tuple[str, str]:
    """Send the signals once the process waits in its batch (if answered, each after fmtui answered the one
    before); then its stdout and its whole stderr."""
    err: list[str] = []
    try:
        read_until(proc.stderr, "test: waiting in a training batch", err)
        for i, signum in enumerate(signums):
            if i and answered:
                read_until(proc.stderr, "to abort", err)
            proc.send_signal(signum)
        stdout, rest = proc.communicate(timeout=300)  # a guard against a hang, not a speed limit
    finally:
        proc.kill()
    return stdout, "".join(err) + rest


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def assert_consistent(out: Path, epochs: int) -> None:
    """model.pt, checkpoint.pt, metrics and summary all describe epoch `epochs`; eval reproduces its test numbers."""
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == epochs == summary(out)["epochs_done"]
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    model = torch.load(out / "model.pt", weights_only=True)
    assert checkpoint["epoch"] == epochs and all(torch.equal(model[k], v) for k, v in checkpoint["model"].items())
    result = fmtui("--no-ui", "eval", out, "--json")
    assert result.exit_code == 0, result.output
    evaluated = json.loads(result.stdout)
    assert evaluated["test_accuracy"] == rows[-1]["test_accuracy"]
    assert evaluated["test_loss"] == pytest.approx(rows[-1]["test_loss"], rel=1e-6)


def lock_is_free(out: Path) -> bool:
    import fcntl

    with open(out / ".lock") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False


TRAIN = ("--batch-size", 200, "--epochs", 3)  # 600 training images: 3 batches an epoch; batch 5 is in epoch 2


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT], ids=lambda s: s.name)
def test_a_signal_stops_after_the_batch_keeps_a_consistent_folder_and_exits_128_plus_it(tiny_data, tmp_path, signum):
    out = tmp_path / "run"
    proc = train_process(5, 1, out, "--data-dir", tiny_data, *TRAIN)
    stdout, stderr = send(proc, [signum])
    assert proc.returncode == 128 + signum, stderr
    name = signal.Signals(signum).name
    assert "Traceback" not in stderr and f"Stopped by {name} during epoch 2 after 1 complete epoch." in stderr
    assert summary(out)["status"] == "stopped"
    assert summary(out)["message"] == f"stopped by {name} during epoch 2 after 1 complete epoch"
    assert lock_is_free(out) and json.loads((out / "live.json").read_text())["status"] == "stopped"
    assert_consistent(out, 1)
    if signum == signal.SIGTERM:  # and it goes on where it stopped
        result = fmtui("--no-ui", "train", "--resume", out)
        assert result.exit_code == 0, result.output
        assert summary(out)["status"] == "completed" and summary(out)["resumed_from"] == [1]
        assert_consistent(out, 3)


def test_a_second_signal_aborts_and_still_leaves_the_last_complete_epoch(tiny_data, tmp_path):
    out = tmp_path / "run"
    proc = train_process(5, 2, out, "--data-dir", tiny_data, *TRAIN)
    stdout, stderr = send(proc, [signal.SIGTERM, signal.SIGTERM])
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and stderr.splitlines()[-1].startswith("Error: aborted by a second SIGTERM")
    assert summary(out)["status"] == "error" and summary(out)["message"] == "aborted by a second SIGTERM"
    assert lock_is_free(out)
    assert_consistent(out, 1)


@pytest.mark.skipif(shutil.which("nohup") is None, reason="needs nohup")
def test_under_nohup_a_hangup_does_not_stop_the_run(tiny_data, tmp_path):
    out = tmp_path / "run"
    proc = train_process(5, 1, out, "--data-dir", tiny_data, *TRAIN, prefix=("nohup",))
    stdout, stderr = send(proc, [signal.SIGHUP, signal.SIGUSR1], answered=False)  # SIGUSR1 lets the batch go on
    assert proc.returncode == 0, stderr
    assert summary(out)["status"] == "completed" and summary(out)["epochs_done"] == 3


# --- train --resume: what it refuses --------------------------------------------------------------


@pytest.fixture
def stopped_run(tiny_data, tmp_path) -> Path:
    """A run of 3 epochs stopped in its second (1 complete epoch)."""
    out = tmp_path / "stopped"
    record(config(tiny_data), out, should_stop=stop_at(8))
    return out


def files(folder: Path) -> dict[str, str]:
    """Every file's digest, but the lock's (a refused resume may hold the lock for a moment)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.name != ".lock"}


class Payload:
    """What a pickle may run when unpickled: here it would create a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def edit(name: str, change):
    def apply(folder: Path) -> None:
        change(folder / name)

    return apply


def json_edit(name: str, **changes):
    return edit(name, lambda f: f.write_text(json.dumps({**json.loads(f.read_text()), **changes})))


REFUSED = {
    "not a run": (lambda f: None, ["--resume", "{parent}"], "not a fmtui run folder (no config.json)"),
    "fewer epochs than done": (lambda f: None, ["--epochs", "1"], "has done 1 epoch already"),
    "a completed run without --epochs": (json_edit("config.json", epochs=1), [], "has done all its 1 epoch;"),
    "a config that no longer loads": (json_edit("config.json", lr=-1), [], "config.json: lr: must be > 0, got -1"),
    "a config of the wrong types": (
        json_edit("config.json", hidden=5),
        [],
        "config.json: hidden is a number (5), expected a list of integers",
    ),
    "a diverged run": (json_edit("summary.json", status="diverged"), [], "resuming would diverge again"),
    "no checkpoint": (edit("checkpoint.pt", Path.unlink), [], "has no checkpoint.pt"),
    "a truncated checkpoint": (
        edit("checkpoint.pt", lambda f: f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])),
        [],
        "checkpoint.pt is not a readable checkpoint (truncated",
    ),
    "a pickle that is no checkpoint": (
        edit("checkpoint.pt", lambda f: torch.save({"epoch": Payload(f.parent / "unpickled")}, f)),
        [],
        "checkpoint.pt is not a readable checkpoint",
    ),
    "a plain pickle": (
        edit("checkpoint.pt", lambda f: f.write_bytes(pickle.dumps(Payload(f.parent / "unpickled")))),
        [],
        "checkpoint.pt is not a readable checkpoint",
    ),
    "a tensor file that is no checkpoint": (
        edit("checkpoint.pt", lambda f: torch.save({"epoch": 1, "model": {}}, f)),
        [],
        "checkpoint.pt is not a fmtui checkpoint (format None",
    ),
    "a checkpoint of another shape": (
        edit(
            "checkpoint.pt",
            lambda f: torch.save({**torch.load(f, weights_only=True), "model": {"x": torch.ones(1)}}, f),
        ),
        [],
        "checkpoint.pt does not fit config.json",
    ),
    "an option that would change the run": (lambda f: None, ["--lr", "0.1"], "--lr cannot change them"),
}


@pytest.mark.parametrize("damage, args, needle", REFUSED.values(), ids=REFUSED.keys())
def test_resume_refuses_in_one_line_and_loses_nothing(stopped_run, tmp_path, damage, args, needle):
    damage(stopped_run)
    before = files(stopped_run)
    args = [a.format(parent=tmp_path) for a in args]
    resume = [] if "--resume" in args else ["--resume", stopped_run]
    result = fmtui("--no-ui", "train", *resume, *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1 and needle in result.stderr
    assert "Traceback" not in result.output and files(stopped_run) == before
    assert not (stopped_run / "unpickled").exists()  # nothing was unpickled


def test_resume_refuses_a_run_that_a_live_writer_holds(stopped_run):
    held = FolderLock(stopped_run)
    try:
        result = fmtui("--no-ui", "train", "--resume", stopped_run)
    finally:
        held.close()
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert f"{stopped_run} is being written by pid {os.getpid()} on " in result.stderr


# --- a disk that fills up or turns read-only -------------------------------------------------------


def failing_writes(monkeypatch, error: int, when):
    """Every atomic write of the recorder for which when(path) turns true fails with `error`, and all after."""
    real, failing = recorder.atomic_write, []

    def write(path, data, **kw):
        if failing or when(path):
            failing.append(path.name)
            raise OSError(error, os.strerror(error), str(path))
        return real(path, data, **kw)

    monkeypatch.setattr(recorder, "atomic_write", write)
    return failing


def second(name: str):
    """A test of paths that is true for the second file called name."""
    seen = []
    return lambda path: path.name == name and (seen.append(path) or len(seen) == 2)


def train(tiny_data, out, *args):
    return fmtui("--no-ui", "train", "--data-dir", tiny_data, *TRAIN, "--out", out, *args)


def test_a_full_disk_mid_run_keeps_the_last_epoch_and_says_so(tiny_data, tmp_path, monkeypatch):
    """Only the second checkpoint does not fit: summary.json still can say why the run ended."""
    out = tmp_path / "run"
    real, is_second = recorder.atomic_write, second("checkpoint.pt")

    def write(path, data, **kw):
        if is_second(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data, **kw)

    monkeypatch.setattr(recorder, "atomic_write", write)
    result = train(tiny_data, out)
    assert result.exit_code == 1, result.output
    assert result.stderr == f"Error: disk full while writing {out / 'checkpoint.pt'}; metrics so far are in {out}\n"
    assert summary(out)["status"] == "error" and summary(out)["message"] == "disk full while writing checkpoint.pt"
    monkeypatch.setattr(recorder, "atomic_write", real)
    assert_consistent(out, 1)
    assert [p.name for p in out.glob(".*")] == [".lock"] and lock_is_free(out)


def test_a_disk_turned_read_only_mid_run_ends_in_one_line_and_keeps_the_folder(tiny_data, tmp_path, monkeypatch):
    """Not even summary.json can be written: no chained traceback; readers see a dead writer (interrupted)."""
    out = tmp_path / "run"
    failing = failing_writes(monkeypatch, errno.EROFS, second("checkpoint.pt"))
    result = train(tiny_data, out)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: read-only file system while writing {out / 'checkpoint.pt'}")
    assert (
        result.stderr.count("\n") == 1 and "Traceback" not in result.output and "During handling" not in result.output
    )
    assert "summary.json" in failing and summary(out)["status"] == "running" and lock_is_free(out)


def test_a_folder_that_cannot_be_written_at_the_start_is_bad_input(tiny_data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    failing_writes(monkeypatch, errno.EROFS, lambda path: path.name == "config.json")
    result = train(tiny_data, out)
    assert result.exit_code == 2, result.output
    assert result.stderr == f"Error: read-only file system while writing {out / 'config.json'}\n"
    assert not (out / "config.json").exists()


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MiB tmpfs (needs root and a kernel that lets it mount one; skipped otherwise)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def after_first_epoch(monkeypatch, out: Path, action):
    """Run action() once the first epoch's files are all on disk (live.json, written last, says epoch 1)."""
    real_train = engine.train

    def train_then(cfg, **kw):
        for ev in real_train(cfg, **kw):
            yield ev
            if isinstance(ev, EpochEnd) and ev.epoch == 1:
                for _ in range(30000):  # a guard against a hang, not a speed limit
                    try:
                        if json.loads((out / "live.json").read_text())["epoch"] == 1:
                            break
                    except (OSError, ValueError):
                        pass
                    time.sleep(0.01)
                action()

    monkeypatch.setattr(engine, "train", train_then)


def fill(disk: Path) -> None:
    with open(disk / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def read_only(disk: Path) -> None:
    for _ in range(100):  # busy while the writer thread has a file open (a heartbeat): try again
        if subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True).returncode == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"could not remount {disk} read-only")


@pytest.mark.parametrize("how, cause", [("full", "disk full"), ("read-only", "read-only file system")])
def test_a_real_tiny_disk_that_fills_up_or_turns_read_only(tiny_data, tiny_disk, monkeypatch, how, cause):
    out = tiny_disk / "run"
    after_first_epoch(monkeypatch, out, lambda: fill(tiny_disk) if how == "full" else read_only(tiny_disk))
    result = train(tiny_data, out, "--model", "softmax")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: {cause} while writing {out}/") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert summary(out)["epochs_done"] == 1 and lock_is_free(out)
    assert [p.name for p in out.glob(".*")] == [".lock"]  # no half-written temporary file left
    assert_consistent(out, 1)

"""The run folder as untrusted input, and signals: issue 18's "what an adversary broke", case by case.

1 escape sequences from a folder never reach a terminal; 2 symbolic links are never followed out of a folder;
3 `x` signals only the lock's verified holder; 4 a resume on other data is refused; 5 a sweep that fills the
disk says so and lists every run; 6 export errors are one line; 7 watching a huge run is bounded; 8 signals in
the first seconds (and after the end) give 128 + the signal; 9 a paused writer is named, a heartbeat from the
future is stale, another host's run is taken over only when asked; 10 absurd model depths are refused.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_idx_dataset
from pilot import sync, wait_for
from runfolders import Writer, row, write_run
from test_cli import fmtui, read_until, train_tiny
from test_faults_input import AT_STAGE
from test_live_cli import LIVE_DRIVER, TRAIN

from fmtui import recorder
from fmtui.errors import RunError, RunFolderError, RunFolderRefused, StopRefused, error_message
from fmtui.events import EpochEnd, Finished
from fmtui.report import run_status
from fmtui.runfolder import liveness
from fmtui.runfolder.convert import started_event
from fmtui.runfolder.liveness import stop_writer, stoppable
from fmtui.runfolder.read import BrokenRun, RunsFolder, read_run
from fmtui.runfolder.schema import ENDED
from fmtui.runfolder.writer import FolderLock
from fmtui.text import safe_text
from fmtui.watch import MAX_REPLAY, RunFollower

engine, cli, app = pytest.mark.engine, pytest.mark.cli, pytest.mark.app

TITLE = "\x1b]0;PWNED\x07"
"""An OSC sequence that retitles a terminal."""
CLEAR = "\x1b[2J\x1b[H"
BIDI = "\u202e"
"""RIGHT-TO-LEFT OVERRIDE: text after it reads backwards."""
CONTROLS = ("\x1b", "\x07", "\x9b", BIDI)


def clean(text: str) -> bool:
    return not any(c in text for c in CONTROLS)


def one_line_error(result) -> str:
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.output
    assert "Traceback" not in result.output
    return result.stderr


# --- 1. escape sequences ------------------------------------------------------------------------------------


@engine
def test_safe_text_escapes_every_control_and_format_character():
    assert safe_text(f"a{TITLE}b{CLEAR}\x9b{BIDI}c\n") == r"a\x1b]0;PWNED\x07b\x1b[2J\x1b[H\x9b\u202ec\n"
    assert safe_text(safe_text(TITLE)) == safe_text(TITLE) and safe_text("Fashion-MNIST · 90%") == "Fashion-MNIST · 90%"


@engine
def test_strings_from_a_folder_come_out_escaped(tmp_path):
    """What the dashboard shows of a folder: a watched run's Started (resolved facts), its message and health."""
    path = write_run(tmp_path / f"x{TITLE}", epochs=2, status="completed")
    config = json.loads((path / "config.json").read_text())
    config["resolved"] = {
        "dataset_title": f"MNIST{CLEAR}",
        "classes": [f"T{TITLE}"],
        "device": BIDI,
        "model_summary": TITLE,
    }
    (path / "config.json").write_text(json.dumps(config))
    summary = {"status": "completed", "message": f"done{TITLE}", "health": {"state": f"ok{CLEAR}", "hint": TITLE}}
    (path / "summary.json").write_text(json.dumps(summary))
    record = read_run(path)
    started = started_event(record)
    shown = [started.dataset, *started.classes, started.device, started.model, record.message, record.health.hint]
    assert all(clean(s) for s in [*shown, record.health.state]), shown


@app
def test_the_runs_pane_and_the_watched_run_show_no_escape_sequence(tmp_path):
    """Case 1: a folder named x<OSC>, a health hint and a message with escapes: the Runs pane's table and status
    line, and the Train pane of the run watched, hold none of them."""
    from pilot import text_of

    from fmtui.app import make_app
    from fmtui.widgets.runs_pane import RunsPane
    from fmtui.widgets.train_pane import EpochLog

    runs = tmp_path / "runs"
    path = write_run(runs / f"x{TITLE}{CLEAR}", epochs=2, status="completed")
    summary = {"status": "completed", "message": f"done {TITLE}", "health": {"state": "exploding", "hint": CLEAR}}
    (path / "summary.json").write_text(json.dumps(summary))

    @sync
    async def main():
        app = make_app(runs_dir=runs, watch=path)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.train_pane.phase == "finished")
            log = "\n".join(app.query_one(EpochLog).lines)
            assert "x\\x1b]0;PWNED\\x07" in log and clean(log) and clean(text_of(app, "#train-message"))
            await pilot.press("5")
            pane = app.query_one(RunsPane)
            await wait_for(pilot, lambda: pane.records)
            table = app.query_one("#runs-table")
            cells = [str(c) for r in range(table.row_count) for c in table.get_row_at(r)]
            assert any("PWNED" in c for c in cells) and all(clean(c) for c in cells), cells
            assert "PWNED" in text_of(app, "#runs-status") or "exploding" in text_of(app, "#runs-status")
            assert clean(text_of(app, "#runs-status"))
            await pilot.press("a", "h")  # the hyperparameter view lists the folder's name too
            await wait_for(pilot, lambda: app.screen.query("#hp-table"))
            table = app.screen.query_one("#hp-table")
            cells = [str(c) for r in range(table.row_count) for c in table.get_row_at(r)]
            assert any("PWNED" in c for c in cells) and all(clean(c) for c in cells), cells

    main()


# --- 2. symbolic links --------------------------------------------------------------------------------------


@pytest.fixture
def victim(tmp_path) -> Path:
    """A file that someone's links point at: it must never change."""
    file = tmp_path / "victim.txt"
    file.write_text("precious\n")
    return file


@engine
def test_a_lock_linked_to_another_file_is_refused_and_the_file_left_alone(tmp_path, victim):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".lock").symlink_to(victim)
    with pytest.raises(RunFolderError, match=r"refused a symbolic link while writing .*/run/\.lock"):
        FolderLock(folder)
    assert victim.read_text() == "precious\n"


@engine
def test_a_dangling_lock_link_does_not_create_its_target(tmp_path):
    folder, target = tmp_path / "run", tmp_path / "elsewhere" / "made-by-fmtui"
    folder.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (folder / ".lock").symlink_to(target)
    with pytest.raises(RunFolderError, match="refused a symbolic link"):
        FolderLock(folder)
    assert not target.exists()


@engine
@pytest.mark.parametrize("name", ["metrics.jsonl", "summary.json", "live.json", "losses.jsonl"])
def test_the_recorder_never_writes_through_a_linked_run_file(tmp_path, victim, name):
    """A link planted in a live run's folder: the next write refuses it (one line naming it), the target stays."""
    from dataclasses import replace

    from test_report import EPOCH, PROGRESS, STARTED
    from torch import nn

    folder = tmp_path / "run"
    recording = recorder.RunRecorder(lambda cfg: folder)
    with pytest.raises(RunFolderError, match=rf"refused a symbolic link while writing .*/run/{name}"):
        with recording:
            recording.handle(STARTED)
            (folder / name).unlink(missing_ok=True)
            (folder / name).symlink_to(victim)
            recording.handle(replace(PROGRESS, losses=[(5, 0.9)]))  # a point of the step curve: losses.jsonl
            recording.handle(EPOCH)
            recording.handle(Finished("completed", "finished", [EPOCH], None, 1.0, nn.Linear(2, 2)))
    assert victim.read_text() == "precious\n"


@engine
@pytest.mark.parametrize("name", ["metrics.jsonl", "summary.json", "config.json", ".lock"])
def test_a_reader_refuses_a_linked_run_file(tmp_path, victim, name):
    path = write_run(tmp_path / "run", epochs=2)
    (path / name).unlink(missing_ok=True)
    (path / name).symlink_to(victim)
    with pytest.raises(RunError, match=rf"{name}: a symbolic link"):
        read_run(path)


@engine
def test_a_linked_run_folder_in_a_runs_folder_is_listed_as_broken_not_followed(tmp_path):
    elsewhere = write_run(tmp_path / "elsewhere" / "run", epochs=2)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "link").symlink_to(elsewhere)
    (found,) = RunsFolder(tmp_path / "runs").scan()
    assert isinstance(found, BrokenRun) and found.reason.startswith("a symbolic link to a folder")


@cli
def test_resume_of_a_folder_whose_lock_is_a_link_is_one_line(tiny_data, tmp_path, victim):
    out = tmp_path / "run"
    assert train_tiny(tiny_data, "--epochs", 1, "--out", out).exit_code == 0
    (out / ".lock").unlink()
    (out / ".lock").symlink_to(victim)
    result = fmtui("--no-ui", "train", "--resume", out, "--epochs", 2)
    assert result.exit_code == 2 and ".lock: a symbolic link" in one_line_error(result)
    assert victim.read_text() == "precious\n"


# --- 3. x signals only the lock's holder ------------------------------------------------------------------

HOLDER = r"""
import fcntl, json, os, sys, time
folder, named = sys.argv[1], int(sys.argv[2])
lock = open(os.path.join(folder, ".lock"), "w")
fcntl.flock(lock, fcntl.LOCK_EX)
lock.write(json.dumps({"pid": named, "host": sys.argv[3]}))
lock.flush()
with open(os.path.join(folder, "live.json"), "w") as f:
    json.dump({"status": "running", "heartbeat": time.time(), "pid": named, "host": sys.argv[3]}, f)
print("holding", flush=True)
sys.stdin.read()
"""


@engine
def test_x_does_not_signal_a_process_that_only_files_name(tmp_path):
    """Case 3: live.json and .lock name an unrelated process while another holds the flock: nothing is sent."""
    path = write_run(tmp_path / "run", epochs=3, done=1, status="running")
    bystander = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(bystander.pid), socket.gethostname()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(StopRefused, match=rf"held by pid {holder.pid}, not by pid {bystander.pid}"):
            stoppable(path)
        with pytest.raises(StopRefused):
            stop_writer(path)
        assert bystander.poll() is None  # not signalled
    finally:
        for proc in (holder, bystander):
            proc.kill()
            proc.wait()


@engine
def test_the_lock_holder_is_read_from_the_kernel(tmp_path):
    path = write_run(tmp_path / "run", epochs=3, done=1, status="running")
    lock = FolderLock(path)
    try:
        state = liveness.lock_state(path / ".lock")
        assert state.held and state.holder == os.getpid()
    finally:
        lock.close()
    assert liveness.lock_state(path / ".lock").held is False


# --- 4. resume on other data ------------------------------------------------------------------------------


@pytest.fixture
def one_epoch(tiny_data, tmp_path) -> Path:
    out = tmp_path / "run"
    assert train_tiny(tiny_data, "--epochs", 1, "--out", out).exit_code == 0
    return out


@cli
def test_resume_on_other_data_is_refused_and_rewrites_nothing(one_epoch, tmp_path):
    """Case 4: the data's files are recorded in config.json; other files are one line, exit 2."""
    other = write_idx_dataset(tmp_path / "other", n_train=1000)
    before = (one_epoch / "config.json").read_bytes()
    assert json.loads(before)["resolved"]["data_files"][0]["name"] == "train-images-idx3-ubyte.gz"
    result = fmtui("--no-ui", "train", "--resume", one_epoch, "--epochs", 2, "--data-dir", other)
    assert result.exit_code == 2
    line = one_line_error(result)
    assert "its data files differ from those it trained on (" in line and "train-images-idx3-ubyte.gz" in line
    assert (one_epoch / "config.json").read_bytes() == before


@cli
def test_resume_of_an_older_folder_on_other_data_is_refused_by_its_split_sizes(one_epoch, tmp_path):
    other = write_idx_dataset(tmp_path / "other", n_train=1000)
    config = json.loads((one_epoch / "config.json").read_text())
    del config["resolved"]["data_files"]  # written before fingerprints
    (one_epoch / "config.json").write_text(json.dumps(config))
    result = fmtui("--no-ui", "train", "--resume", one_epoch, "--epochs", 2, "--data-dir", other)
    assert result.exit_code == 2
    assert "it trained on 600 training and 200 test images, the data now has 1,000 and 200" in one_line_error(result)


@engine
def test_the_dashboard_refuses_a_resume_on_other_data(one_epoch, tmp_path, monkeypatch):
    from fmtui.messages import ResumeRefused
    from fmtui.workers import run_training

    other = write_idx_dataset(tmp_path / "other", n_train=1000)
    config = json.loads((one_epoch / "config.json").read_text())
    (one_epoch / "config.json").write_text(json.dumps({**config, "data_dir": str(other)}))
    posted = []
    run_training(None, tmp_path, posted.append, lambda: False, resume=one_epoch, epochs=2)
    assert [type(m) for m in posted] == [ResumeRefused] and "data files differ" in posted[0].message


# --- 5. a sweep that fills the disk -----------------------------------------------------------------------


def full_disk_for(monkeypatch, run: str) -> None:
    """The summary.json that would record how the run whose folder name holds `run` ended does not fit."""
    real = recorder.atomic_write

    def write(path, data, **kw):
        if path.name == "summary.json" and run in path.parent.name and '"completed"' in str(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data, **kw)

    monkeypatch.setattr(recorder, "atomic_write", write)


@cli
@pytest.mark.parametrize("stacking", ["--sequential", "--no-ui"], ids=["sequential", "stacked"])
def test_a_sweep_run_that_fills_the_disk_fails_the_sweep_and_every_run_is_listed(
    tiny_data, tmp_path, monkeypatch, stacking
):
    """Case 5: the second run's end cannot be recorded: exit 1 naming it; all three runs in summary.json."""
    full_disk_for(monkeypatch, "lr0.02")
    out = tmp_path / "sweep"
    args = ["--no-ui", "sweep", "--data-dir", tiny_data, "--model", "softmax", "--lr", "0.05,0.02,0.01", "--epochs", 1]
    result = fmtui(*args, stacking, "--out", out)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "runs failed: lr=0.02" in result.stderr
    assert "disk full while writing" in result.stderr and "summary.json" in result.stderr
    runs = json.loads((out / "summary.json").read_text())["runs"]
    statuses = {r["lr"]: r["status"] for r in runs}
    assert len(runs) == 3 and statuses[0.02] == "error" and statuses[0.05] == "completed"


@cli
def test_a_train_that_fails_before_its_first_epoch_does_not_speak_of_metrics_so_far(tiny_data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real = recorder.atomic_write

    def write(path, data, **kw):
        if path.name == "checkpoint.pt":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data, **kw)

    monkeypatch.setattr(recorder, "atomic_write", write)
    result = train_tiny(tiny_data, "--out", out)
    assert result.exit_code == 1 and not (out / "metrics.jsonl").exists()
    line = one_line_error(result)
    assert line == f"Error: disk full while writing {out / 'checkpoint.pt'}; no epoch was saved in {out}\n"


# --- 6. export errors ---------------------------------------------------------------------------------------


@cli
def test_export_into_an_impossible_folder_is_one_line(one_epoch, tmp_path):
    pytest.importorskip("tensorboardX")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for dest in ("/proc/x", a_file / "sub"):
        result = fmtui("--no-ui", "export", "--tensorboard", dest, one_epoch)
        assert result.exit_code == 2 and "cannot make" in one_line_error(result), result.output


# --- 7. watching a huge run ---------------------------------------------------------------------------------


@engine
def test_watching_a_run_of_100000_epochs_replays_a_bounded_number_of_them(tmp_path):
    path = write_run(tmp_path / "huge", epochs=100_000, done=0, status="completed")
    with open(path / "metrics.jsonl", "w") as f:
        f.writelines(json.dumps(row(e, 50.0 + e % 40)) + "\n" for e in range(1, 100_001))
    events = RunFollower(path).poll()
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert len(epochs) == MAX_REPLAY and epochs[-1].epoch == 100_000 and epochs[0].epoch <= 100
    history = events[-1].history  # bounded too: the run's epochs are not held whole a second time
    assert isinstance(events[-1], Finished) and len(history) == MAX_REPLAY and history[-1].epoch == 100_000


# --- 8. signals ---------------------------------------------------------------------------------------------


def early(command: list, signum: int) -> tuple[int, str]:
    """fmtui COMMAND stopped by signum the moment it is about to import torch (the first slow import)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", AT_STAGE, "wait:torch", *map(str, command)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        err = [proc.stderr.readline()]
        assert err[0].startswith("test: reached torch"), err[0] + proc.stderr.read()
        proc.send_signal(signum)
        err.append(proc.communicate(timeout=300)[1])  # a guard against a hang, not a timing
    finally:
        proc.kill()
    return proc.returncode, "".join(err)


def commands(tiny_data, tmp_path) -> dict[str, list]:
    data = ["--data-dir", tiny_data]
    return {
        "train": ["--no-ui", "train", *data, "--epochs", 1, "--out", tmp_path / "run"],
        "sweep": ["--no-ui", "sweep", *data, "--lr", "0.1,0.01", "--epochs", 1, "--out", tmp_path / "sweep"],
        "lr-find": ["--no-ui", "lr-find", *data, "--out", tmp_path / "curve.csv"],
    }


@cli
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT], ids=lambda s: s.name)
@pytest.mark.parametrize("command", ["train", "sweep", "lr-find"])
def test_a_signal_in_the_first_seconds_exits_128_plus_it_in_one_line(tiny_data, tmp_path, command, signum):
    """Case 8: while the first slow import runs, no run has begun: a clean exit, never the default action."""
    code, err = early(commands(tiny_data, tmp_path)[command], signum)
    assert code == 128 + signum, err
    assert err.splitlines()[-1] == f"Interrupted by {signal.Signals(signum).name}." and "Traceback" not in err
    assert not list(tmp_path.glob("core*"))


def at_a_batch(args: list, signum: int) -> tuple[int, str]:
    """fmtui ARGS, sent signum once a training batch waits for it (tests/test_live_cli.py's driver): the exit
    code, and stdout and stderr together."""
    proc = subprocess.Popen(
        [sys.executable, "-c", LIVE_DRIVER, "5", "1", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    err: list[str] = []
    try:
        read_until(proc.stderr, "test: waiting in a training batch", err)
        proc.send_signal(signum)
        out, rest = proc.communicate(timeout=300)  # a guard against a hang, not a speed limit
    finally:
        proc.kill()
    return proc.returncode, out + "".join(err) + rest


@cli
def test_a_sigterm_stops_a_sweep_with_143_like_a_train(tiny_data, tmp_path):
    args = ["--no-ui", "sweep", "--data-dir", tiny_data, *TRAIN, "--lr", "0.1,0.01", "--sequential"]
    code, err = at_a_batch([*args, "--out", tmp_path / "sweep"], signal.SIGTERM)
    assert code == 143 and "Traceback" not in err and "SIGTERM: stopping after the current batch" in err, err


@cli
def test_a_sigterm_stops_lr_find_with_143_and_its_name(tiny_data, tmp_path):
    args = ["--no-ui", "lr-find", "--data-dir", tiny_data, "--batch-size", 200, "--out", tmp_path / "curve.csv"]
    code, err = at_a_batch(args, signal.SIGTERM)
    assert code == 143 and "Stopped by SIGTERM after 5 steps" in err and "Traceback" not in err, err


CLOSING = """
import sys, time
import fmtui.headless.train as train
real = train._closing
def closing(*args):
    code = real(*args)
    print("test: closed", file=sys.stderr, flush=True)
    time.sleep(120)  # a guard: the signal ends the process long before
    return code
train._closing = closing
from fmtui.cli import main
main(sys.argv[1:])
"""


@cli
def test_a_hangup_right_after_the_run_completed_is_a_clean_exit(tiny_data, tmp_path):
    """Case 8's last part: a SIGHUP after "completed" used to kill by the default action."""
    args = ["--no-ui", "train", "--data-dir", tiny_data, "--epochs", 1, "--out", tmp_path / "run"]
    proc = subprocess.Popen(
        [sys.executable, "-c", CLOSING, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    err: list[str] = []
    try:
        read_until(proc.stderr, "test: closed", err)
        proc.send_signal(signal.SIGHUP)
        err.append(proc.communicate(timeout=300)[1])
    finally:
        proc.kill()
    assert proc.returncode == 129 and "".join(err).splitlines()[-1] == "Interrupted by SIGHUP."
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "completed"


# --- 9. paused writers, clocks and other hosts --------------------------------------------------------------


@engine
def test_a_paused_writer_is_named_and_the_watch_says_so(tmp_path, monkeypatch):
    """Case 9: SIGSTOP keeps the lock held; a heartbeat quiet for QUIET_AFTER makes it 'paused?'."""
    from fmtui.messages import RunOpenFailed
    from fmtui.workers import watch_run

    monkeypatch.setattr(liveness, "QUIET_AFTER", 0.3)
    writer = Writer(tmp_path / "live", epochs=3)
    try:
        writer.epoch()
        os.kill(writer.proc.pid, signal.SIGSTOP)
        for _ in range(3000):  # poll until the heartbeat is older than the limit (a guard, not a timing)
            record = read_run(tmp_path / "live")
            if "(paused?)" in record.message:
                break
            time.sleep(0.01)
        assert record.status == "running" and "no heartbeat for" in record.message
        assert f"from pid {writer.proc.pid} on " in record.message and run_status(record) == "running, paused?"
        posted: list = []

        def paused() -> list[str]:
            return [m.message for m in posted if isinstance(m, RunOpenFailed) and "paused?" in m.message]

        watch_run(tmp_path / "live", posted.append, lambda: bool(paused()), interval=0.01)
        (note,) = paused()
        assert note.startswith("live: no heartbeat for") and note.endswith("(paused?)")
    finally:
        os.kill(writer.proc.pid, signal.SIGCONT)
        writer.close()


def foreign(path: Path, heartbeat: float) -> None:
    live = {"status": "running", "heartbeat": heartbeat, "pid": 4242, "host": "gpu-box-elsewhere"}
    (path / "live.json").write_text(json.dumps(live))
    summary = json.loads((path / "summary.json").read_text())
    (path / "summary.json").write_text(json.dumps({**summary, "status": "running"}))


@cli
def test_a_heartbeat_ten_years_ahead_is_stale_and_take_over_resumes(one_epoch):
    foreign(one_epoch, time.time() + 10 * 365 * 86400)
    record = read_run(one_epoch)
    assert record.status == "interrupted" and "ahead (clock skew?)" in record.message
    refused = fmtui("--no-ui", "train", "--resume", one_epoch, "--epochs", 2)
    assert refused.exit_code == 2 and "give --take-over if that process is gone" in one_line_error(refused)
    taken = fmtui("--no-ui", "train", "--resume", one_epoch, "--epochs", 2, "--take-over")
    assert taken.exit_code == 0, taken.output
    assert json.loads((one_epoch / "summary.json").read_text())["status"] == "completed"


@cli
def test_another_hosts_live_run_is_not_resumed_without_take_over(one_epoch):
    foreign(one_epoch, time.time())
    result = fmtui("--no-ui", "train", "--resume", one_epoch, "--epochs", 2)
    assert result.exit_code == 2
    assert re.search(r"pid 4242 on gpu-box-elsewhere \(last heartbeat \d+ s ago\), which may still be", result.stderr)
    assert fmtui("--no-ui", "train", "--take-over").exit_code == 2  # only with --resume


# --- 10. model depth ----------------------------------------------------------------------------------------


@cli
def test_a_config_with_20000_hidden_layers_is_refused_in_one_line(tiny_data, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": "mlp", "hidden": [8] * 20_000}))
    result = train_tiny(tiny_data, "--config", config)
    assert result.exit_code == 2 and "at most 64 hidden layers for --model mlp, got 20,000" in one_line_error(result)
    assert train_tiny(tiny_data, "--hidden", ",".join(["8"] * 65)).exit_code == 2


# --- the error tree and statuses ----------------------------------------------------------------------------


@engine
def test_errors_are_told_apart_by_class_never_by_name():
    class DataError(RuntimeError):
        """Named like fmtui's, but not it."""

    assert error_message(DataError("disk\nmore")) == "DataError: disk"
    assert error_message(RunFolderRefused("taken\nmore")) == "taken"
    assert RunFolderError("x", "x", began=False).exit_code == 2 and RunFolderError("x", "x").exit_code == 1


@engine
def test_a_finished_run_has_a_declared_status_only(tmp_path):
    with pytest.raises(ValueError):
        Finished("finished-ish", "", [], None, 0.0, None)  # type: ignore[arg-type]
    path = write_run(tmp_path / "run", epochs=2, done=1, status="running")
    (path / "live.json").write_text(json.dumps({"status": "running", "heartbeat": 1.0, "pid": 1, "host": "far"}))
    (event,) = [e for e in RunFollower(path).poll() if isinstance(e, Finished)]
    assert event.status == "interrupted" and event.status in ENDED

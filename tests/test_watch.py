"""Following a run folder from outside (fmtui.watch): the engine's events back from what the recorder wrote, a dead
writer as `interrupted`, a folder that vanishes, live.json's progress, and who may be asked to stop."""

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runfolders import Writer, write_run
from test_live import config, record, resume, stop_at

from fmtui import engine
from fmtui.errors import RunError, StopRefused
from fmtui.events import BatchProgress, EpochEnd, Finished
from fmtui.recorder import RunRecorder, StepCurve
from fmtui.runfolder import liveness
from fmtui.runfolder.convert import progress_event
from fmtui.runfolder.liveness import stop_writer, stoppable
from fmtui.runfolder.read import FileCache
from fmtui.runfolder.schema import LOSS_FIELDS, LOSS_RECORD_POINTS
from fmtui.runfolder.writer import FolderLock
from fmtui.watch import MAX_CURVE, RunFollower, newest_running

pytestmark = pytest.mark.engine

LIVE = {
    "status": "running",
    "epoch": 2,
    "epochs": 5,
    "batch": 30,
    "batches": 60,
    "step": 90,
    "loss": 0.5,
    "accuracy": 81.5,
    "samples_per_s": 2e4,
    "elapsed": 3.0,
    "eta": 5.0,
    "device": "cpu (1 thread)",
    "gpu_memory": 0,
    "heartbeat": 0.0,
    "pid": 1,
    "host": "h",
}


def kinds(events) -> list[str]:
    return [type(e).__name__ for e in events]


def test_a_recorded_run_comes_back_as_the_engines_own_events(tiny_data, tmp_path):
    out, seen, engine_epochs = tmp_path / "run", [], []
    follower = RunFollower(out)

    def look(rec, event):
        rec.flush()  # the writer thread has written the epoch's files
        engine_epochs.append(event)
        seen.extend(follower.poll())

    finished = record(config(tiny_data, epochs=3), out, on_epoch=look)
    seen.extend(follower.poll())
    assert kinds(seen[:2]) == ["Started", "EpochEnd"] and isinstance(seen[-1], Finished)
    assert [e.metrics() for e in seen if isinstance(e, EpochEnd)] == [e.metrics() for e in engine_epochs]
    started = seen[0]
    assert (started.model, started.params, started.device, started.n_train, started.n_test) == (
        "784-32-10 relu",
        finished.model is not None and sum(p.numel() for p in finished.model.parameters()),
        "cpu (1 thread)",
        600,
        200,
    )
    assert started.batches_per_epoch == 6 and len(started.classes) == 10 and started.norm.norm == "symmetric"
    end = seen[-1]
    assert (end.status, end.message) == ("completed", finished.message)
    assert [e.epoch for e in end.history] == [1, 2, 3] and follower.poll() == []  # nothing after the end


def test_each_look_reads_only_what_changed(tiny_data, tmp_path):
    write_run(tmp_path / "run", epochs=3, done=1, status="running")
    lock = FolderLock(tmp_path / "run")  # a live writer (this process) holds the folder
    try:
        follower = RunFollower(tmp_path / "run")
        assert kinds(follower.poll()) == ["Started", "EpochEnd"]
        assert follower.poll() == []  # nothing new: no event
        with open(tmp_path / "run" / "metrics.jsonl", "a") as f:
            f.write('{"epoch": 2, "train_loss": 0.4, "train_accuracy": 85.0, "test_loss": 0.5')
        assert follower.poll() == []  # half a line: the writer is still appending it
        with open(tmp_path / "run" / "metrics.jsonl", "a") as f:
            f.write(', "test_accuracy": 84.0}\n')
        (epoch,) = follower.poll()
        assert (epoch.epoch, epoch.epochs, epoch.test_accuracy, epoch.seconds) == (2, 3, 84.0, 0.0)
    finally:
        lock.close()
    (end,) = follower.poll()
    assert end.status == "interrupted" and end.message.startswith("interrupted after epoch 2 of 3 (")


def test_progress_comes_from_live_json_once_per_change(tmp_path):
    path = write_run(tmp_path / "run", epochs=5, done=1, status="running")
    lock = FolderLock(path)
    try:
        follower = RunFollower(path)
        (path / "live.json").write_text(json.dumps({**LIVE, "host": socket.gethostname(), "pid": os.getpid()}))
        events = follower.poll()
        assert kinds(events) == ["Started", "EpochEnd", "BatchProgress"]
        assert events[-1] == BatchProgress(2, 5, 30, 60, 0.5, 81.5, 2e4, 3.0, 5.0, 90, 0)
        assert events[0].batches_per_epoch == 60  # from live.json, as config.json has no resolved part here
        os.utime(path / "live.json", ns=(1, 1))  # touched, same progress: no second event
        assert follower.poll() == []
    finally:
        lock.close()


def test_progress_of_a_run_that_ended_is_its_last_one():
    """A live.json whose writer no longer says running is no progress to show live, but the last progress of a run
    that ended (the carrier of the rest of its step curve)."""
    done = {**LIVE, "status": "completed"}
    assert progress_event(done) is None
    assert progress_event(done, ended=True) == BatchProgress(2, 5, 30, 60, 0.5, 81.5, 2e4, 3.0, 5.0, 90, 0)


@pytest.mark.parametrize(
    "change",
    [{"batch": 0}, {"loss": None}, {"loss": "0.5"}, {"epoch": True}, {"status": "stopped"}, {"eta": float("inf")}],
    ids=["before the first batch", "no loss", "a string", "a boolean", "ended", "infinite"],
)
def test_progress_that_is_not_numbers_is_no_event(change):
    """live.json is data from another process: a field of the wrong type is skipped, never shown or raised."""
    assert progress_event({**LIVE, **change}) is None


def test_a_killed_writer_ends_the_watch_as_interrupted(tmp_path):
    writer = Writer(tmp_path / "run", epochs=3)
    try:
        follower = RunFollower(tmp_path / "run")
        assert kinds(follower.poll()) == ["Started"]
        writer.epoch()
        writer.epoch()
        assert kinds(follower.poll()) == ["EpochEnd", "EpochEnd"]
        writer.kill()
        (end,) = follower.poll()
    finally:
        writer.close()
    assert end.status == "interrupted" and [e.epoch for e in end.history] == [1, 2]
    assert end.message == (
        f"interrupted after epoch 2 of 3 (pid {writer.proc.pid} on {socket.gethostname()} is gone: nobody holds its lock)"
    )


def test_a_folder_that_vanishes_while_watched_is_one_line(tmp_path):
    path = write_run(tmp_path / "run", epochs=3, done=1, status="running")
    follower = RunFollower(path)
    lock = FolderLock(path)
    try:
        follower.poll()
        shutil.rmtree(path)
        with pytest.raises(RunError, match=rf"^{path}: vanished while it was watched$"):
            follower.poll()
    finally:
        lock.close()


def test_a_new_folder_is_waited_for_until_its_writer_writes_its_config(tmp_path):
    (tmp_path / "run").mkdir()
    lock = FolderLock(tmp_path / "run")  # the recorder takes the lock first, then writes config.json
    try:
        follower = RunFollower(tmp_path / "run")
        assert follower.poll() == []
        write_run(tmp_path / "run", epochs=2, done=0, status="running")
        assert kinds(follower.poll()) == ["Started"]
    finally:
        lock.close()


def test_a_folder_that_is_no_run_is_refused_in_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match=r"not a fmtui run folder \(no config.json\)$"):
        RunFollower(tmp_path / "empty").poll()


def test_the_newest_running_run_is_the_one_watched_by_default(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs / "20260101-000000-a", status="completed")
    assert newest_running(runs) is None
    writers = [Writer(runs / name) for name in ("20260102-000000-b", "20260103-000000-c")]
    try:
        assert newest_running(runs).name == "20260103-000000-c"
        writers[1].kill()
        assert newest_running(runs).name == "20260102-000000-b"
    finally:
        for w in writers:
            w.close()


# --- who may be asked to stop ----------------------------------------------------------------------------


def live_folder(path: Path, **live) -> Path:
    write_run(path, epochs=3, done=1, status="running")
    (path / "live.json").write_text(json.dumps({**LIVE, "heartbeat": time.time(), **live}))
    return path


def test_a_run_on_another_host_is_not_signalled(tmp_path):
    path = live_folder(tmp_path / "run", host="gpu-box-elsewhere", pid=4242)
    with pytest.raises(StopRefused, match=r"^run is written by pid 4242 on gpu-box-elsewhere, user \S+: stop it there"):
        stop_writer(path)


def test_a_pid_that_holds_no_lock_is_not_signalled(tmp_path):
    """A dead writer's pid may belong to another process by now: without the lock, nobody is signalled."""
    path = live_folder(tmp_path / "run", host=socket.gethostname(), pid=os.getpid())
    with pytest.raises(StopRefused, match=r"no process holds its lock"):
        stop_writer(path)


def test_a_lock_held_by_another_pid_than_live_json_names_is_not_signalled(tmp_path):
    path = live_folder(tmp_path / "run", host=socket.gethostname(), pid=os.getpid() + 1)
    lock = FolderLock(path)  # names this process in .lock
    try:
        with pytest.raises(StopRefused, match=r"its lock is held by pid \d+, not by pid \d+ that live.json names"):
            stoppable(path)
        (path / "live.json").write_text(json.dumps({**LIVE, "host": socket.gethostname(), "pid": os.getpid()}))
        assert stoppable(path).pid == os.getpid()
    finally:
        lock.close()


def stop_a_real_run(tiny_data, tmp_path, preexec_fn=None) -> tuple[tuple[int, str], int, int, dict]:
    """A real headless run, asked to stop once its first epoch is written: (what stop_writer returned, the
    run's pid, its exit code, its summary.json)."""
    args = ["--no-ui", "train", "--data-dir", tiny_data, "--batch-size", 4, "--epochs", 200, "--out", tmp_path / "run"]
    cmd = [sys.executable, "-m", "fmtui", *map(str, args)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, text=True, preexec_fn=preexec_fn)
    try:
        deadline = time.monotonic() + 300  # a guard against a hang, not a speed limit
        while not (tmp_path / "run" / "metrics.jsonl").is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        sent = stop_writer(tmp_path / "run")
        code = proc.wait(timeout=300)
    finally:
        proc.kill()
    return sent, proc.pid, code, json.loads((tmp_path / "run" / "summary.json").read_text())


def test_sigint_reaches_the_process_that_writes_the_run(tiny_data, tmp_path):
    """A real headless run is asked to stop: it ends after its batch, as after Ctrl+C, and says so."""
    sent, pid, code, summary = stop_a_real_run(tiny_data, tmp_path)
    assert sent == (pid, "SIGINT") and code == 130
    assert summary["status"] == "stopped" and summary["epochs_done"] < 200


def test_a_run_that_ignores_sigint_is_sent_sigterm(tiny_data, tmp_path):
    """`nohup fmtui ... &` from a script starts fmtui with SIGINT ignored (POSIX), which fmtui keeps ignored: the
    stop request goes as SIGTERM, and the run ends after its batch with 143, stopped."""

    def ignore_sigint():
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    sent, pid, code, summary = stop_a_real_run(tiny_data, tmp_path, ignore_sigint)
    assert sent == (pid, "SIGTERM") and code == 143
    assert summary["status"] == "stopped" and summary["epochs_done"] < 200


def test_a_signal_is_sent_only_once_everything_was_checked(tmp_path, monkeypatch):
    sent = []
    monkeypatch.setattr(liveness.os, "kill", lambda pid, signum: sent.append((pid, signum)))
    path = live_folder(tmp_path / "run", host=socket.gethostname(), pid=os.getpid())
    with pytest.raises(StopRefused):
        stop_writer(path)
    lock = FolderLock(path)
    try:
        assert stop_writer(path) == (os.getpid(), "SIGINT")
    finally:
        lock.close()
    assert sent == [(os.getpid(), signal.SIGINT)]


def test_a_watched_run_carries_the_health_its_writer_judged(tiny_data, tmp_path):
    """An exploding run watched from outside ends as exploding (summary.json's health), not as a green Done."""
    out, seen, engine_epochs = tmp_path / "run", [], []
    follower = RunFollower(out)

    def look(rec, event):
        rec.flush()
        engine_epochs.append(event)
        seen.extend(follower.poll())

    finished = record(config(tiny_data, epochs=2, model="softmax", norm="none", lr=1.0), out, on_epoch=look)
    seen.extend(follower.poll())
    assert finished.health.state == "exploding"
    assert [e.health for e in seen if isinstance(e, EpochEnd)] == [e.health for e in engine_epochs]
    assert seen[-1].health == finished.health


# --- the step curve: losses.jsonl ---------------------------------------------------------------------------


def curve_of(events) -> list[tuple[int, float]]:
    return [point for e in events if isinstance(e, BatchProgress) for point in e.losses]


def same_curve(a: list[tuple[int, float]], b: list[tuple[int, float]]) -> bool:
    """The same steps, and losses equal to the 6 significant digits losses.jsonl keeps."""
    return [s for s, _ in a] == [s for s, _ in b] and [v for _, v in a] == pytest.approx([v for _, v in b], rel=1e-5)


def test_the_engines_step_curve_comes_back_from_the_folder_live_and_after_the_end(tiny_data, tmp_path):
    """What the engine reported step by step is what a watcher draws: while the run trains (each look carries
    the points since the last one) and when the finished run is opened afterwards (its last progress carries the
    whole curve)."""
    out, seen, sent = tmp_path / "run", [], []
    follower = RunFollower(out)
    with RunRecorder(lambda c: out) as rec:
        for event in engine.train(config(tiny_data, epochs=3), progress_interval=0.0):
            rec.handle(event)
            sent += event.losses if isinstance(event, BatchProgress) else []
            if isinstance(event, EpochEnd):
                rec.flush()  # the writer thread has written the epoch's files
                seen += follower.poll()
    seen += follower.poll()
    assert [s for s, _ in sent] == list(range(1, 19))  # 6 batches an epoch, a point each (18 steps: every 1)
    assert same_curve(curve_of(seen), sent)
    assert len([e for e in seen if isinstance(e, BatchProgress) and e.losses]) >= 3  # epoch by epoch, not at the end
    after = RunFollower(out).poll()
    assert kinds(after) == ["Started", "EpochEnd", "EpochEnd", "EpochEnd", "BatchProgress", "Finished"]
    assert same_curve(after[-2].losses, sent) and after[-2].loss_every == 1
    assert (after[-2].epoch, after[-2].batch, after[-2].step) == (3, 6, 18)  # the last progress it recorded
    lines = (out / "losses.jsonl").read_text().splitlines()
    assert [list(json.loads(line)) for line in lines] == [list(LOSS_FIELDS)] * 18  # as the schema declares


def test_a_run_of_100000_short_epochs_records_a_bounded_curve_of_exact_means():
    """The engine sends a point at each epoch's end: 100,000 of them for 100,000 epochs of 6 steps. The recorder
    keeps about LOSS_RECORD_POINTS, each the mean of the steps it covers, and the run's last step always."""
    curve, text = StepCurve(total_steps=6 * 100_000), []
    for epoch in range(100_000):
        curve.add([(6 * (epoch + 1), float(epoch % 7))])
        if epoch % 500 == 0:
            text.append(curve.take())  # as the writer takes them, twice a second
    text.append(curve.take(end=True))
    rows = [json.loads(line) for line in "".join(text).splitlines()]
    assert len(rows) == LOSS_RECORD_POINTS and rows[-1]["step"] == 600_000
    assert sum(r["steps"] for r in rows) == 600_000 and {r["steps"] for r in rows} == {300}  # 50 epochs a line
    assert [r["loss"] for r in rows[:2]] == [pytest.approx(sum(e % 7 for e in range(a, a + 50)) / 50) for a in (0, 50)]


def test_a_loss_that_is_not_finite_is_recorded_as_null_and_the_last_point_at_the_end():
    curve = StepCurve(total_steps=100)  # a line every step: no merging
    curve.add([(1, 0.5), (2, math.nan), (3, math.inf)])
    curve.add([(2, 9.0)])  # a step already taken is not taken again
    assert [json.loads(line)["loss"] for line in curve.take().splitlines()] == [0.5, None, None]
    long = StepCurve(total_steps=100_000)  # a line every 50 steps
    long.add([(10, 1.0), (30, 2.0)])
    assert long.take() == ""
    (last,) = long.take(end=True).splitlines()
    assert json.loads(last) == {"step": 30, "loss": pytest.approx((10 * 1.0 + 20 * 2.0) / 30, rel=1e-5), "steps": 30}


def test_a_resumed_run_records_one_curve_cut_back_to_its_checkpoint(tiny_data, tmp_path):
    """Stopped in epoch 2 after its curve went past epoch 1, then resumed from epoch 1's checkpoint: the points of
    the lost batches are cut, so the curve's steps count up once (a reader refuses steps that go back)."""
    out = tmp_path / "run"
    with RunRecorder(lambda c: out) as rec:
        for event in engine.train(config(tiny_data, epochs=3), should_stop=stop_at(9), progress_interval=0.0):
            rec.handle(event)
    before = [json.loads(line)["step"] for line in (out / "losses.jsonl").read_text().splitlines()]
    assert before[-1] > 6  # past epoch 1 (6 batches), which the checkpoint holds
    resume(out)
    assert [r["step"] for r in FileCache().load_losses(out / "losses.jsonl")] == list(range(1, 19))


@pytest.mark.parametrize(
    "content,reason",
    [
        (b'{"step": 1, "loss": 0.5, "steps": 1}\nnot json\n', "not valid JSON (Expecting value at line 2)"),
        (
            b'{"step": 2, "loss": 0.5, "steps": 1}\n{"step": 1, "loss": 0.4, "steps": 1}\n',
            "line 2: step 1 does not follow step 2",
        ),
        (b'{"step": 1, "loss": "0.5", "steps": 1}\n', "line 1: loss is a string ('0.5'), expected a number or null"),
        (b'{"step": 1, "loss": 0.5}\n', "line 1 has no steps"),
        (b"x" * (5 << 20), "too large for a run's file"),
        (None, "a symbolic link"),
    ],
    ids=["not json", "steps go back", "a string", "a field missing", "too large", "a link"],
)
def test_a_bad_losses_jsonl_is_one_line_and_the_run_is_watched_without_its_curve(tmp_path, content, reason):
    """losses.jsonl is input from others: checked line by line as metrics.jsonl is, never followed through a link;
    what is wrong is one line naming it, and the rest of the run comes as ever."""
    path = write_run(tmp_path / "run", epochs=2, status="completed")
    (path / "live.json").write_text(json.dumps({**LIVE, "status": "completed"}))
    if content is None:
        (tmp_path / "elsewhere.jsonl").write_text('{"step": 1, "loss": 0.5, "steps": 1}\n')
        (path / "losses.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")
    else:
        (path / "losses.jsonl").write_bytes(content)
    follower = RunFollower(path)
    events = follower.poll()
    assert kinds(events) == ["Started", "EpochEnd", "EpochEnd", "BatchProgress", "Finished"]
    assert curve_of(events) == [] and "\n" not in follower.curve_problem
    assert follower.curve_problem.startswith(f"{path / 'losses.jsonl'}: ") and reason in follower.curve_problem


def test_a_curve_longer_than_the_chart_keeps_comes_evenly_spread(tmp_path):
    path = write_run(tmp_path / "run", epochs=2, status="completed")
    (path / "live.json").write_text(json.dumps({**LIVE, "status": "completed"}))
    n = 3 * MAX_CURVE  # a folder resumed many times, or not written by fmtui
    (path / "losses.jsonl").write_text(
        "".join(json.dumps({"step": s, "loss": 1.0, "steps": 1}) + "\n" for s in range(1, n + 1))
    )
    points = curve_of(RunFollower(path).poll())
    assert len(points) == MAX_CURVE and points[-1][0] == n and points[0][0] <= 3

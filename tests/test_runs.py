"""Reading run folders back (fmtui.runfolder): the checked reader, liveness of a run's writer, following a runs folder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runfolders import Writer, row, write_run

from fmtui.errors import RunError
from fmtui.runfolder import parse, read
from fmtui.runfolder.liveness import liveness
from fmtui.runfolder.read import BrokenRun, RunRecord, RunsFolder, list_runs, read_run
from fmtui.runfolder.schema import STALE_AFTER

pytestmark = pytest.mark.engine


def test_a_run_folder_reads_back_checked(tmp_path):
    path = write_run(tmp_path / "r", epochs=3, hidden=(512, 128), model="mlp", lr=0.0123456789)
    record = read_run(path)
    assert record.config.hidden == (512, 128) and record.config.lr == 0.0123456789  # no rounding on the way
    assert record.status == "completed" and record.epochs_done == 3 and record.final_accuracy == 73.0
    assert record.best_row["epoch"] == 3 and record.writer is None  # a finished run's writer is not asked


def test_a_last_line_without_its_newline_is_not_yet_written(tmp_path):
    """A live writer may be in the middle of appending: the cut line is left for the next read, not broken."""
    path = write_run(tmp_path / "r", epochs=3, done=1, status="running")
    line = json.dumps(row(2)) + "\n"
    with open(path / "metrics.jsonl", "a") as f:
        f.write(line[:15])
    assert read_run(path).epochs_done == 1
    with open(path / "metrics.jsonl", "a") as f:
        f.write(line[15:])
    assert read_run(path).epochs_done == 2


@pytest.mark.parametrize(
    "path,reason",
    [("nope", "no such folder"), ("file", "not a folder"), ("empty", "not a fmtui run folder (no config.json)")],
)
def test_a_folder_that_is_no_run_is_named(tmp_path, path, reason):
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError) as e:
        read_run(tmp_path / path)
    assert str(e.value) == f"{tmp_path / path}: {reason}"


def _liveness_status(path: Path) -> tuple[bool, str]:
    record = read_run(path)
    return liveness(path).alive, record.status


def test_a_writer_killed_with_sigkill_leaves_an_interrupted_run(tmp_path):
    """The writer's flock is released by the kernel when it dies, whatever killed it."""
    writer = Writer(tmp_path / "r", epochs=3)
    try:
        writer.epoch()
        assert _liveness_status(tmp_path / "r") == (True, "running")
        assert "holds its lock" in liveness(tmp_path / "r").why
        writer.kill()
        assert _liveness_status(tmp_path / "r") == (False, "interrupted")
        record = read_run(tmp_path / "r")
        assert record.epochs_done == 1
        assert record.message.startswith(f"interrupted after epoch 1 of 3 (pid {writer.proc.pid} on ")
        assert record.message.endswith("is gone: nobody holds its lock)")
    finally:
        writer.close()


def _live(path: Path, **values) -> None:
    live = {"status": "running", "heartbeat": time.time(), "pid": os.getpid(), "host": socket.gethostname()}
    (path / "live.json").write_text(json.dumps({**live, **values}))


def test_a_writer_on_another_host_lives_while_its_heartbeat_is_fresh(tmp_path):
    path = write_run(tmp_path / "r", done=1, status="running")
    (path / ".lock").touch()  # nobody here holds it, but the writer is elsewhere: its lock says nothing
    _live(path, host="elsewhere", heartbeat=time.time() - 30)
    assert liveness(path).alive and read_run(path).status == "running"
    _live(path, host="elsewhere", heartbeat=time.time() - STALE_AFTER - 1)
    assert not liveness(path).alive and read_run(path).status == "interrupted"
    assert "last heartbeat from pid" in liveness(path).why and "on elsewhere 10 min ago" in liveness(path).why


def test_without_a_lock_file_the_pid_says(tmp_path):
    path = write_run(tmp_path / "r", done=1, status="running")
    _live(path)  # this process, alive
    assert liveness(path).alive
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _live(path, pid=int(dead.stdout))
    assert not liveness(path).alive and read_run(path).status == "interrupted"


def test_an_unreadable_live_json_is_no_heartbeat(tmp_path):
    path = write_run(tmp_path / "r", done=1, status="running")
    (path / "live.json").write_text("[")
    assert read_run(path).status == "running" and read_run(path).live == {}


def test_an_old_folder_without_live_json_or_lock_is_interrupted_once_stale(tmp_path):
    """Folders written before the live protocol: `running` and untouched for STALE_AFTER means dead."""
    path = write_run(tmp_path / "r", done=2, status="running")
    assert read_run(path).status == "running"
    old = time.time() - STALE_AFTER - 60
    for name in ("config.json", "metrics.jsonl", "summary.json"):
        os.utime(path / name, (old, old))
    record = read_run(path)
    assert record.status == "interrupted" and record.message.startswith("interrupted after epoch 2 of 3 (no live")


def test_finished_runs_are_never_interrupted(tmp_path):
    path = write_run(tmp_path / "r", done=2, status="stopped")
    old = time.time() - STALE_AFTER - 60
    os.utime(path / "summary.json", (old, old))
    assert read_run(path).status == "stopped"


def test_list_runs_finds_sweep_runs_and_broken_folders_but_not_exports(tmp_path):
    write_run(tmp_path / "a-run")
    write_run(tmp_path / "sweep-1" / "s-run")
    (tmp_path / "sweep-1" / "summary.json").write_text("{}")  # the sweep's own summary, not a run's
    (tmp_path / "b-broken").mkdir()
    (tmp_path / "b-broken" / "config.json").write_text("[]")
    write_run(tmp_path / "exports" / "not-a-run")
    (tmp_path / "c-empty-folder").mkdir()
    found = list_runs(tmp_path)
    assert [(r.name, type(r)) for r in found] == [
        ("s-run", RunRecord),
        ("b-broken", BrokenRun),
        ("a-run", RunRecord),
    ]
    assert found[1].reason == "config.json: a list, not a JSON object" and found[1].status == "broken"
    assert list_runs(tmp_path / "missing") == []


def count_reads(monkeypatch) -> list[str]:
    """The names of the files the reader (fmtui.runfolder.read) reads from now on."""
    reads = []
    read_bytes, read_metrics = read.safe.read_bytes, read.read_metrics
    monkeypatch.setattr(read.safe, "read_bytes", lambda file: reads.append(file.name) or read_bytes(file))
    monkeypatch.setattr(read, "read_metrics", lambda file, *a: reads.append(file.name) or read_metrics(file, *a))
    return reads


def test_following_a_folder_reads_only_what_changed(tmp_path, monkeypatch):
    reads = count_reads(monkeypatch)
    monkeypatch.setattr(RunsFolder, "SETTLE_NS", 0)  # the folders were just written; do not wait for them
    for name in ("a", "b", "c"):
        write_run(tmp_path / name, done=1, status="running")
    folder = RunsFolder(tmp_path)
    first = folder.scan()
    assert sorted(reads) == sorted(["config.json", "metrics.jsonl", "summary.json"] * 3)
    reads.clear()
    assert all(a is b for a, b in zip(folder.scan(), first)) and reads == []  # nothing changed: nothing read
    with open(tmp_path / "b" / "metrics.jsonl", "a") as f:
        f.write(json.dumps(row(2)) + "\n")
    second = folder.scan()
    assert reads == ["metrics.jsonl"]
    assert [r.epochs_done for r in second] == [1, 2, 1] and second[0] is first[0] and second[1] is not first[1]
    reads.clear()
    (tmp_path / "c" / "summary.json").write_text(json.dumps({"status": "completed"}))
    folder.scan()
    folder.scan()
    assert reads == ["summary.json"]  # finished now: not looked into again while its folder stays the same


def test_a_broken_file_is_not_read_again_until_it_changes(tmp_path, monkeypatch):
    reads = count_reads(monkeypatch)
    monkeypatch.setattr(RunsFolder, "SETTLE_NS", 0)
    path = write_run(tmp_path / "r", done=1, status="running")
    (path / "metrics.jsonl").write_text("[1]\n")
    folder = RunsFolder(tmp_path)
    assert isinstance(folder.scan()[0], BrokenRun)
    reads.clear()
    assert isinstance(folder.scan()[0], BrokenRun) and reads == []
    (path / "metrics.jsonl").write_text(json.dumps(row(1)) + "\n")
    assert folder.scan()[0].epochs_done == 1


def test_a_runs_folder_that_cannot_be_listed_says_so(tmp_path, monkeypatch):
    def refuse(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(read.os, "scandir", refuse)
    folder = RunsFolder(tmp_path)
    assert folder.scan() == [] and folder.error == f"cannot list {tmp_path}: Permission denied"


def test_appended_metrics_are_read_from_where_the_last_read_ended(tmp_path, monkeypatch):
    """A live run's metrics.jsonl grows by a line per epoch: only the new line is parsed."""
    path = write_run(tmp_path / "r", epochs=300, done=200, status="running")
    files = read.FileCache()
    assert len(files.load_metrics(path / "metrics.jsonl")) == 200
    parsed = []
    loads = parse._loads
    monkeypatch.setattr(parse, "_loads", lambda file, text, where="": parsed.append(where) or loads(file, text, where))
    with open(path / "metrics.jsonl", "a") as f:
        f.write(json.dumps(row(201)) + "\n" + json.dumps(row(202))[:10])  # one line and the start of the next
    assert [r["epoch"] for r in files.load_metrics(path / "metrics.jsonl")[-2:]] == [200, 201]
    assert parsed == ["line 201"]


def test_metrics_rewritten_in_place_are_read_again_from_the_start(tmp_path):
    """A resume may truncate metrics.jsonl and append again (same file, maybe larger): not an append."""
    path = write_run(tmp_path / "r", epochs=5, done=3, status="running")
    files = read.FileCache()
    assert len(files.load_metrics(path / "metrics.jsonl")) == 3
    rows = [{**row(e), "test_accuracy": 50.0 + e} for e in (1, 2, 3, 4)]
    with open(path / "metrics.jsonl", "r+") as f:  # the same inode, truncated, then rewritten longer
        f.truncate(0)
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    assert [r["test_accuracy"] for r in files.load_metrics(path / "metrics.jsonl")] == [51.0, 52.0, 53.0, 54.0]

"""The run recorder (events in, run folders out) and unique sweep folders."""

import json

import pytest
from test_cli import fmtui
from test_report import EPOCH, STARTED
from torch import nn

from fmtui.events import Finished
from fmtui.recorder import RunRecorder
from fmtui.runfolder import schema, writer
from fmtui.runfolder.read import read_run
from fmtui.runfolder.writer import new_sweep_dir


def folders(tmp_path):
    made = []

    def make(cfg):
        made.append(tmp_path / f"run{len(made)}")
        return made[-1]

    return make, made


def summary(path):
    return json.loads((path / "summary.json").read_text())


def test_the_folder_is_made_when_the_run_starts_and_follows_its_events(tmp_path):
    make, made = folders(tmp_path)
    recorder = RunRecorder(make)
    assert recorder.path() is None and not made
    assert recorder.handle(STARTED) == made[0] == recorder.path()
    recorder.handle(EPOCH)
    recorder.handle(Finished("completed", "finished", [EPOCH], None, 1.0, nn.Linear(2, 2)))
    record = read_run(made[0])
    assert record.status == "completed" and [m["epoch"] for m in record.metrics] == [1]
    assert (made[0] / "model.pt").is_file() and record.resolved["params"] == STARTED.params


def test_the_files_hold_exactly_the_fields_the_schema_declares(tmp_path):
    """The recorder writes what fmtui.runfolder.schema defines, and nothing it does not: a field added on one side
    only is caught here."""
    make, made = folders(tmp_path)
    recorder = RunRecorder(make)
    recorder.handle(STARTED)
    recorder.handle(EPOCH)
    live = json.loads((made[0] / "live.json").read_text())
    recorder.handle(Finished("completed", "finished", [EPOCH], None, 1.0, nn.Linear(2, 2)))
    assert list(live) == list(schema.LIVE_FIELDS)
    assert set(summary(made[0])) <= set(schema.SUMMARY_FIELDS) and "status" in summary(made[0])
    (line,) = (made[0] / "metrics.jsonl").read_text().splitlines()
    assert list(json.loads(line)) == list(schema.METRIC_FIELDS)
    assert (made[0] / "metrics.csv").read_text().splitlines()[0] == ",".join(schema.TABLE_FIELDS)
    assert set(json.loads((made[0] / ".lock").read_text())) == set(schema.LOCK_FIELDS)


def test_an_error_is_recorded_for_the_runs_still_open_only(tmp_path):
    make, made = folders(tmp_path)
    with pytest.raises(RuntimeError), RunRecorder(make) as recorder:
        for run in (0, 1, 2):
            recorder.handle(STARTED, run)
        recorder.handle(Finished("diverged", "diverged at epoch 1", [], None, 1.0, nn.Linear(2, 2)), 1)
        raise RuntimeError("device lost\nstack")
    assert [summary(p)["status"] for p in made] == ["error", "diverged", "error"]
    assert summary(made[0])["message"] == "RuntimeError: device lost"


def test_a_consumer_that_stops_listening_is_no_error(tmp_path):
    make, made = folders(tmp_path)

    def events():
        with RunRecorder(make) as recorder:
            recorder.handle(STARTED)
            yield

    gen = events()
    next(gen)
    gen.close()  # GeneratorExit passes through the recorder
    assert summary(made[0])["status"] == "running"


def test_sweep_folders_are_unique_within_a_second(tmp_path, monkeypatch):
    monkeypatch.setattr(writer.time, "strftime", lambda fmt, *a: "20250101-120000")
    assert new_sweep_dir(tmp_path) != new_sweep_dir(tmp_path)


def test_two_sweeps_started_in_the_same_second_get_two_folders(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setattr(writer.time, "strftime", lambda fmt, *a: "20250101-120000")
    args = ["--no-ui", "sweep", "--data-dir", tiny_data, "--model", "softmax", "--lr", "0.05,0.01", "--epochs", 1]
    for _ in range(2):
        assert fmtui(*args, "--runs-dir", tmp_path / "runs").exit_code == 0
    sweeps = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert sweeps == ["sweep-20250101-120000", "sweep-20250101-120000-1"]
    for name in sweeps:
        assert len(json.loads((tmp_path / "runs" / name / "summary.json").read_text())["runs"]) == 2

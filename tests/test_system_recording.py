"""System metrics recorded by the writer (fmtui.recorder + fmtui.sysmetrics): a run's folder gets system.jsonl while
it trains, on every path its end takes (completed, stopped, error, a consumer that stops listening, SIGINT); runs
trained together share each sample; a full disk ends the recording, not the run; the sampling thread stays bounded
in memory over many samples. GPUs through a fake NVML module (no GPU here)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from test_live import config, stop_at
from test_report import EPOCH, STARTED
from test_sysmetrics import H100, NO_POWER, fake_nvml
from torch import nn

from fmtui import engine, sysmetrics
from fmtui.events import EpochEnd, Finished, Started
from fmtui.recorder import RunRecorder
from fmtui.runfolder import schema
from fmtui.runfolder.read import read_run
from fmtui.session import train_and_record, train_group_and_record
from fmtui.sysmetrics import Sampler, SystemLog, SystemRecorder, read_peaks, read_system

pytestmark = pytest.mark.engine

THREAD = "fmtui-system-metrics"


@pytest.fixture
def no_gpu(monkeypatch):
    """This machine as it is: no NVML library (the same on a GPU machine, so that the checks hold there)."""
    monkeypatch.setitem(sys.modules, "pynvml", None)


def samplers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == THREAD}


def train(cfg, folder: Path, **kw) -> list:
    return [ev for ev, _ in train_and_record(cfg, folder=lambda c: folder, **kw)]


def assert_recorded(folder: Path, before: set[threading.Thread]) -> list[dict]:
    """The folder has host samples, and the sampling thread that wrote them has ended."""
    rows = read_system(folder)
    assert rows and all({"t", "cpu", "rss", "ram_used", "ram_total"} <= set(r) for r in rows)
    assert not samplers() - before, "the sampling thread outlived its run"
    return rows


def test_a_completed_run_has_its_system_metrics(tiny_data, tmp_path, no_gpu):
    before = samplers()
    events = train(config(tiny_data, epochs=2), tmp_path / "run")
    assert read_run(tmp_path / "run").status == "completed" and len(events) > 3
    rows = assert_recorded(tmp_path / "run", before)
    assert all("gpus" not in r for r in rows)  # no GPU reading: no GPU key, never zeros
    (line,) = (tmp_path / "run" / schema.SYSTEM).read_text().splitlines()[:1]
    assert set(json.loads(line)) <= set(schema.SYSTEM_FIELDS)


def test_the_sampling_ends_with_the_last_open_runs_finished_event(tmp_path, no_gpu):
    """A consumer that hands the recorder events by hand and never closes it (as tests and tools do) leaves no
    sampling thread behind once its run has finished."""
    before = samplers()
    recorder = RunRecorder(lambda cfg: tmp_path / "run")
    recorder.handle(STARTED)
    recorder.handle(EPOCH)
    assert samplers() - before
    recorder.handle(Finished("completed", "finished", [EPOCH], None, 1.0, nn.Linear(2, 2)))
    assert_recorded(tmp_path / "run", before)


def test_a_stopped_run_has_them_and_its_sampling_ends(tiny_data, tmp_path, no_gpu):
    before = samplers()
    train(config(tiny_data, epochs=50, batch_size=8), tmp_path / "run", should_stop=stop_at(30))
    assert read_run(tmp_path / "run").status == "stopped"
    assert_recorded(tmp_path / "run", before)


def test_a_run_that_fails_has_them_and_its_sampling_ends(tiny_data, tmp_path, no_gpu, monkeypatch):
    real = engine.train

    def failing(*args, **kwargs):
        for ev in real(*args, **kwargs):
            yield ev
            if isinstance(ev, EpochEnd):
                raise MemoryError("out of memory (made up)")

    monkeypatch.setattr(engine, "train", failing)
    before = samplers()
    with pytest.raises(MemoryError):
        train(config(tiny_data, epochs=3), tmp_path / "run")
    assert read_run(tmp_path / "run").status == "error"
    assert_recorded(tmp_path / "run", before)


def test_a_consumer_that_stops_listening_ends_the_sampling(tiny_data, tmp_path, no_gpu):
    before = samplers()
    events = train_and_record(config(tiny_data, epochs=3), folder=lambda c: tmp_path / "run")
    for ev, _ in events:
        if isinstance(ev, Started):
            break
    assert samplers() - before  # sampling while the run is open
    events.close()  # GeneratorExit through the recorder
    assert not samplers() - before


def test_runs_trained_together_share_each_sample(tiny_data, tmp_path, no_gpu, monkeypatch):
    monkeypatch.setattr(sysmetrics, "INTERVAL", 0.01)
    base = config(tiny_data, epochs=4, model="softmax", batch_size=8)
    folders = iter([tmp_path / "a", tmp_path / "b"])
    before = samplers()
    for _ in train_group_and_record([base.replace(lr=0.05), base.replace(lr=0.01)], lambda c: next(folders)):
        pass
    a, b = (assert_recorded(tmp_path / n, before) for n in "ab")
    ta, tb = [r["t"] for r in a], [r["t"] for r in b]
    both = [t for t in ta if tb[0] <= t <= tb[-1]]  # while both were recorded (each starts and ends on its own)
    assert len(both) >= 3 and both == [t for t in tb if ta[0] <= t <= ta[-1]]  # one sampler, written to both


def test_a_full_disk_stops_the_recording_never_the_run(tiny_data, tmp_path, no_gpu, monkeypatch):
    def full(self, row):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(SystemLog, "add", full)
    before = samplers()
    train(config(tiny_data, epochs=2), tmp_path / "run")
    assert read_run(tmp_path / "run").status == "completed" and read_system(tmp_path / "run") == []
    assert not samplers() - before


def test_gpu_readings_are_recorded_per_device(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([H100, NO_POWER]))
    train(config(tiny_data, epochs=1), tmp_path / "run")
    gpus = read_system(tmp_path / "run")[0]["gpus"]
    assert [g["index"] for g in gpus] == [0, 1] and gpus[0]["power"] == 312.5 and "power" not in gpus[1]
    peaks = read_peaks(tmp_path / "run")
    assert peaks["gpus"][0] == {"index": 0, "name": "NVIDIA H100 80GB HBM3"} | {
        "util": 97,
        "mem_used": 12 << 30,
        "mem_total": 80 << 30,
        "temp": 64,
        "power": 312.5,
    }


def test_sigint_stops_a_headless_run_with_its_system_metrics(tiny_data, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "fmtui", "--no-ui", "train", "--data-dir", str(tiny_data), "--epochs", "100000"]
    args = [*cmd, "--batch-size", "8", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stdout:
            if line.startswith("Epoch [1/"):
                break
        deadline = time.monotonic() + 120
        while not read_system(out):
            assert time.monotonic() < deadline and proc.poll() is None, "no system metrics while it trains"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130 and read_run(out).status == "stopped"
    assert read_system(out)


def test_many_samples_keep_the_file_and_the_memory_bounded(tmp_path, no_gpu):
    """A soak: 6,000 real samples (psutil) through the recording thread into a file bounded at 200 rows. The
    memory that sysmetrics' code holds (tracemalloc) after 2,000 samples and after 6,000 is the same within
    a few hundred rows' worth: the rows in memory are bounded like the file."""
    taken, marks = 0, {2000: threading.Event(), 6000: threading.Event()}
    held: dict[int, int] = {}

    class Counted(Sampler):
        def sample(self) -> dict:
            nonlocal taken
            row = super().sample()
            taken += 1
            if taken in marks:
                held[taken] = sysmetrics_bytes()
                marks[taken].set()
            return row

    def sysmetrics_bytes() -> int:
        stats = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, "*sysmetrics.py")])
        return sum(s.size for s in stats.statistics("filename"))

    tracemalloc.start()
    try:
        recorder = SystemRecorder(interval=0, sampler=Counted, most=200)
        recorder.add(tmp_path)
        assert marks[6000].wait(600), "the sampler stalled"
        recorder.stop()
    finally:
        tracemalloc.stop()
    assert len(read_system(tmp_path)) <= 200 and (tmp_path / schema.SYSTEM).stat().st_size < 200 * 200
    assert held[6000] - held[2000] < 64 * 1024, held  # ~20 kB both times here; a row kept per sample: +390 kB

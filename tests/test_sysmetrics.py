"""System metrics (fmtui.sysmetrics): GPUs through a fake NVML module (no GPU here), CPU and memory through the
real psutil, the bounded system.jsonl, reading it back as untrusted input, and its peaks."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import types

import pytest

from fmtui import sysmetrics
from fmtui.runfolder import schema
from fmtui.sysmetrics import SYSTEM_FILE, Sampler, SystemLog, SystemRecorder, peaks, read_system

pytestmark = pytest.mark.engine


class NVMLError(Exception):
    pass


def fake_nvml(devices: list[dict], *, init_fails: bool = False) -> types.ModuleType:
    """A stand-in for nvidia-ml-py's pynvml: each device a dict of what it reports; a missing key raises
    NVMLError (NotSupported), as a real GPU without that sensor does."""
    m = types.ModuleType("pynvml")
    m.NVML_TEMPERATURE_GPU = 0
    m.NVMLError = NVMLError
    m.calls = []

    def get(handle: int, key: str):
        if key not in devices[handle]:
            raise NVMLError("Not Supported")
        return devices[handle][key]

    def init():
        m.calls.append("init")
        if init_fails:
            raise NVMLError("Driver Not Loaded")

    m.nvmlInit = init
    m.nvmlShutdown = lambda: m.calls.append("shutdown")
    m.nvmlDeviceGetCount = lambda: len(devices)
    m.nvmlDeviceGetHandleByIndex = lambda i: i
    m.nvmlDeviceGetName = lambda h: get(h, "name")
    m.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=get(h, "util"), memory=0)
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(**get(h, "memory"))
    m.nvmlDeviceGetTemperature = lambda h, sensor: get(h, "temp") if sensor == 0 else None
    m.nvmlDeviceGetPowerUsage = lambda h: get(h, "milliwatts")
    return m


H100 = {
    "name": b"NVIDIA H100 80GB HBM3",  # older nvidia-ml-py gives bytes
    "util": 97,
    "memory": {"used": 12 << 30, "total": 80 << 30, "free": 68 << 30},
    "temp": 64,
    "milliwatts": 312_500,
}
NO_POWER = {
    "name": "NVIDIA A10",
    "util": 5,
    "memory": {"used": 1 << 30, "total": 24 << 30, "free": 23 << 30},
    "temp": 40,
}


def test_each_gpu_is_sampled_and_what_it_cannot_report_is_absent_not_zero(monkeypatch):
    nvml = fake_nvml([H100, NO_POWER])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    sampler = Sampler()
    row = sampler.sample()
    sampler.close()
    assert row["gpus"] == [
        {
            "index": 0,
            "name": "NVIDIA H100 80GB HBM3",
            "util": 97,
            "mem_used": 12 << 30,
            "mem_total": 80 << 30,
            "temp": 64,
            "power": 312.5,
        },
        {"index": 1, "name": "NVIDIA A10", "util": 5, "mem_used": 1 << 30, "mem_total": 24 << 30, "temp": 40},
    ]
    assert nvml.calls == ["init", "shutdown"]


@pytest.mark.parametrize("how", ["no library", "no driver", "no GPU"])
def test_without_nvml_or_a_gpu_there_are_no_gpu_readings(monkeypatch, how):
    if how == "no library":
        monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    else:
        monkeypatch.setitem(
            sys.modules, "pynvml", fake_nvml([] if how == "no GPU" else [H100], init_fails=how == "no driver")
        )
    row = Sampler().sample()
    assert "gpus" not in row and {"t", "cpu", "rss", "ram_used", "ram_total"} <= set(row)


def test_cpu_and_memory_come_from_psutil(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    row = Sampler().sample()
    assert 0 <= row["cpu"] <= 100 and 0 < row["rss"] < row["ram_total"] and 0 < row["ram_used"] <= row["ram_total"]
    assert abs(row["t"] - time.time()) < 3600  # seconds since 1970, not a monotonic clock


def rows(n: int, start: int = 0) -> list[dict]:
    return [{"t": float(t), "cpu": float(t % 100)} for t in range(start, start + n)]


def test_the_file_is_bounded_keeping_its_start_and_its_end(tmp_path):
    log = SystemLog(tmp_path / SYSTEM_FILE, most=10)
    for row in rows(100):
        log.add(row)
    kept = read_system(tmp_path)
    assert len(kept) <= 10 and kept == log.rows
    times = [r["t"] for r in kept]
    assert times[0] == 0 and times[-1] >= 99 - log.stride  # the start, and the end within a stride
    assert {b - a for a, b in zip(times, times[1:])} == {log.stride} and log.stride >= 8  # evenly thinned, not cut


def test_a_resumed_runs_log_goes_on_after_its_earlier_rows(tmp_path):
    first = SystemLog(tmp_path / SYSTEM_FILE, most=10)
    for row in rows(4):
        first.add(row)
    again = SystemLog(tmp_path / SYSTEM_FILE, most=10)
    for row in rows(8, start=100):
        again.add(row)
    kept = [r["t"] for r in read_system(tmp_path)]
    assert len(kept) <= 10 and kept[:2] == [0, 2] and kept[-1] >= 107 - again.stride  # the earlier part first


class Counting:
    """A sampler that counts: sample k is {"t": k}; `wanted` is set once `until` samples are taken."""

    def __init__(self, until: int = 0) -> None:
        self.n, self.closed, self.until = 0, False, until
        self.wanted = threading.Event()

    def sample(self) -> dict:
        self.n += 1
        if self.n >= self.until:
            self.wanted.set()
        return {"t": float(self.n), "cpu": 50.0}

    def close(self) -> None:
        self.closed = True


def wait(condition, what: str) -> None:
    """Poll until condition() holds (a thread writes); the deadline only ends a hang."""
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_the_recorder_samples_at_its_interval_until_stopped(tmp_path):
    sampler = Counting()
    recorder = SystemRecorder(interval=0.01, sampler=lambda: sampler)
    recorder.add(tmp_path)
    wait(lambda: len(read_system(tmp_path)) >= 3, "no samples")
    thread = recorder._thread
    recorder.stop()
    written = read_system(tmp_path)
    assert sampler.closed and [r["t"] for r in written] == [float(k) for k in range(1, len(written) + 1)]
    assert not thread.is_alive() and recorder.error == "" and recorder._thread is None


def test_runs_trained_together_share_each_sample_and_a_removed_one_gets_no_more(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    sampler = Counting()
    recorder = SystemRecorder(interval=0.01, sampler=lambda: sampler)
    recorder.add(a)
    recorder.add(b)
    wait(lambda: len(read_system(b)) >= 2, "no samples in b")
    recorder.remove(a)
    kept = read_system(a)
    wait(lambda: len(read_system(b)) >= len(kept) + 3, "b stopped")
    recorder.stop()
    assert read_system(a) == kept  # nothing after remove() returned
    in_b = [r["t"] for r in read_system(b)]
    both = [r["t"] for r in kept if r["t"] >= in_b[0]]
    assert both and in_b[: len(both)] == both  # the same samples while both were recorded: one sampler


def test_a_new_folder_gets_a_sample_at_once(tmp_path):
    """The first sample of a run does not wait for the interval, also when the thread already samples for
    another run (a stacked group's second run, a sweep's next one): a short run has samples too."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    recorder = SystemRecorder(interval=3600, sampler=Counting)
    recorder.add(first)
    wait(lambda: read_system(first), "no first sample")
    recorder.add(second)
    wait(lambda: read_system(second), "the second folder waits for the interval")
    recorder.stop()


def test_a_run_that_ends_before_the_sampler_has_started_still_gets_its_first_sample(tmp_path):
    """NVML takes a moment to start; a run that ends in that moment waits for its first sample (a little)."""
    gate = threading.Event()

    def slow() -> Counting:
        gate.wait()
        return Counting()

    recorder = SystemRecorder(interval=3600, sampler=slow)
    recorder.add(tmp_path)
    ending = threading.Thread(target=recorder.remove, args=(tmp_path,))
    ending.start()  # the run's Finished, while the sampler is still starting
    gate.set()
    ending.join()
    assert [r["t"] for r in read_system(tmp_path)] == [1.0]
    recorder.stop()


def test_a_sampler_that_cannot_start_keeps_no_run_waiting(tmp_path, monkeypatch):
    def refused() -> Counting:
        raise PermissionError("psutil refused")

    monkeypatch.setattr(sysmetrics, "FIRST_WAIT", 3600.0)  # a wait for a first sample would outlast the test
    recorder = SystemRecorder(interval=0.01, sampler=refused)
    recorder.add(tmp_path)
    wait(lambda: not recorder._thread.is_alive(), "the thread goes on")
    recorder.add(tmp_path / "later")  # a stacked group's second run, after the sampler failed
    ending = threading.Thread(target=recorder.stop, daemon=True)
    ending.start()
    wait(lambda: not ending.is_alive(), "the runs' end waits for a first sample that cannot come")
    assert recorder.error == "no system metrics: psutil refused" and read_system(tmp_path) == []


def test_a_full_disk_ends_that_folders_recording_quietly(tmp_path, monkeypatch):
    real = SystemLog.add

    def add(self, row):
        if self.path.parent.name == "full":
            raise OSError(28, "No space left on device")
        real(self, row)

    monkeypatch.setattr(SystemLog, "add", add)
    full, fine = tmp_path / "full", tmp_path / "fine"
    full.mkdir(), fine.mkdir()
    sampler = Counting()
    recorder = SystemRecorder(interval=0.01, sampler=lambda: sampler)
    recorder.add(full)
    recorder.add(fine)
    wait(lambda: len(read_system(fine)) >= 3, "the other folder stopped too")
    recorder.stop()
    assert recorder.errors == {full: "system metrics stopped: No space left on device"} and recorder.error == ""
    assert sampler.closed and not (full / SYSTEM_FILE).exists()


def test_a_sampler_that_fails_ends_the_recording_without_a_traceback(tmp_path, capfd):
    class Broken(Counting):
        def sample(self) -> dict:
            raise RuntimeError("NVML went away")

    recorder = SystemRecorder(interval=0.01, sampler=Broken)
    recorder.add(tmp_path)
    wait(lambda: recorder.error, "no error")
    recorder.stop()
    assert recorder.error == "system metrics stopped: NVML went away" and "Traceback" not in capfd.readouterr().err


def test_reading_back_skips_what_is_not_a_row_and_refuses_a_link_or_a_huge_file(tmp_path, monkeypatch):
    good = {"t": 1.0, "cpu": 12.5, "rss": 100, "gpus": [{"index": 0, "util": 50, "power": 100.0, "name": "G"}]}
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"cpu": 5}),  # no time
        json.dumps({"t": 2.0, "cpu": "high", "rss": -1, "ram_used": float("inf")}),
        json.dumps({"t": 3.0, "gpus": [{"index": True, "util": 1}, {"index": 1, "util": "x", "temp": 50}, "gpu"]}),
        '{"t": 4.0, "cpu": 1',  # a half-written last line
    ]
    (tmp_path / SYSTEM_FILE).write_text("\n".join(lines))
    assert read_system(tmp_path) == [good, {"t": 2.0}, {"t": 3.0, "gpus": [{"index": 1, "temp": 50}]}]
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / SYSTEM_FILE).write_text(json.dumps(good))
    linked = tmp_path / "linked"
    linked.mkdir()
    os.symlink(other / SYSTEM_FILE, linked / SYSTEM_FILE)
    assert read_system(linked) == [] and read_system(tmp_path / "missing") == []
    monkeypatch.setitem(schema.MAX_BYTES, schema.SYSTEM, 10)
    assert read_system(tmp_path) == []


def test_peaks_are_the_highest_of_each_reading_per_gpu():
    samples = [
        {"t": 10.0, "cpu": 20.0, "rss": 5, "gpus": [{"index": 0, "name": "G0", "util": 10, "temp": 70}]},
        {"t": 12.0, "cpu": 90.0, "rss": 3, "gpus": [{"index": 0, "util": 99, "temp": 60}, {"index": 1, "util": 1}]},
        {"t": 15.0, "cpu": 30.0},
    ]
    assert peaks(samples) == {
        "cpu": 90.0,
        "rss": 5,
        "gpus": [{"index": 0, "name": "G0", "util": 99, "temp": 70}, {"index": 1, "util": 1}],
        "samples": 3,
        "first": 10.0,
        "last": 15.0,
    }
    assert peaks([]) == {}

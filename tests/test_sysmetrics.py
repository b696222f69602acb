"""System metrics (fmtui.sysmetrics): GPUs through a fake NVML module (no GPU here), CPU and memory through the
real psutil, the bounded system.jsonl, reading it back as untrusted input, and its peaks."""

from __future__ import annotations

import json
import os
import sys
import time
import types

import pytest

from fmtui import sysmetrics
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
    """A sampler that counts: sample k is {"t": k}."""

    def __init__(self) -> None:
        self.n, self.closed = 0, False

    def sample(self) -> dict:
        self.n += 1
        return {"t": float(self.n), "cpu": 50.0}

    def close(self) -> None:
        self.closed = True


def test_the_recorder_samples_at_its_interval_until_stopped(tmp_path):
    sampler = Counting()
    recorder = SystemRecorder(tmp_path, interval=0.01, sampler=sampler).start()
    deadline = time.monotonic() + 120
    while len(read_system(tmp_path)) < 3:
        assert time.monotonic() < deadline, "no samples"
        time.sleep(0.01)
    recorder.stop()
    written = read_system(tmp_path)
    assert sampler.closed and [r["t"] for r in written] == [float(k) for k in range(1, len(written) + 1)]
    assert not recorder._thread.is_alive() and recorder.error == ""


def test_a_full_disk_ends_the_recording_quietly(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(SystemLog, "add", full)
    sampler = Counting()
    recorder = SystemRecorder(tmp_path, interval=0.01, sampler=sampler).start()
    recorder._thread.join()
    assert recorder.error == "system metrics stopped: No space left on device" and sampler.closed


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
    monkeypatch.setattr(sysmetrics, "MAX_BYTES", 10)
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
        "seconds": 5.0,
    }
    assert peaks([]) == {}

"""System metrics beside a run: GPU utilisation, memory, temperature and power per device, CPU and memory use.

    {"t": 1764241200.5, "cpu": 37.5, "rss": 812646400, "ram_used": 9.1e9, "ram_total": 3.3e10,
     "gpus": [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "util": 97, "mem_used": 1.2e10, "mem_total": 8.5e10,
               "temp": 64, "power": 312.5}]}

One such row per sample, appended to `system.jsonl` in the run folder (SYSTEM_FILE). GPUs are read through
NVIDIA's management library (the `nvidia-ml-py` package, module `pynvml`), CPU and memory through `psutil`.
What cannot be measured is absent, never 0: no `gpus` key without the library or a GPU, no `power` for a GPU
that does not report it. `cpu` is the whole machine's CPU use (% of all cores), `rss` the sampled process's
resident memory, `ram_used`/`ram_total` the machine's; bytes, degrees Celsius, watts.

The file is bounded (SystemLog): past MAX_ROWS rows it is rewritten with every second row, and from then on
only every second sample is kept (then every fourth...), so a week-long run's file stays under a megabyte
while its start and end stay in it. `read_system` reads it back, checked like every run file (it is untrusted
input: bad lines are skipped, a huge file refused); `peaks` sums it up. No torch, no UI.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fmtui.runfolder.files import atomic_write

SYSTEM_FILE = "system.jsonl"
INTERVAL = 2.0
"""Seconds between two samples while a run trains."""
MAX_ROWS = 2000
"""Rows the file holds at most (about 400 bytes each on a one-GPU machine: under a megabyte)."""
MAX_BYTES = 16 << 20
"""A system.jsonl larger than this is no fmtui run's: it is not read."""
GPU_FIELDS = ("util", "mem_used", "mem_total", "temp", "power")
HOST_FIELDS = ("cpu", "rss", "ram_used", "ram_total")


# --- sampling -----------------------------------------------------------------------------------------------


def _nvml() -> Any | None:
    """The pynvml module with NVML started, or None (no nvidia-ml-py, no driver, no GPU: no GPU rows)."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # pynvml.NVMLError and its subclasses (LibraryNotFound, DriverNotLoaded...)
        return None
    return pynvml


def _read(call: Callable[[], Any]) -> Any:
    """One NVML reading, None when this GPU or driver cannot give it (NotSupported, NoPermission...)."""
    try:
        return call()
    except Exception:  # NVMLError: the field is absent, not zero
        return None


class Sampler:
    """Samples the machine (and one process, this one by default) each time `sample()` is called.

    NVML is started once and shut down by `close()`; CPU use is measured between two samples (psutil's
    cpu_percent), so the first sample's `cpu` covers the time since the Sampler was made."""

    def __init__(self, pid: int | None = None) -> None:
        import psutil

        self.psutil = psutil
        self.process = psutil.Process(pid)
        psutil.cpu_percent(interval=None)  # starts the measurement the first sample reads
        self.nvml = _nvml()
        self.handles: list[tuple[int, Any]] = []
        """(index, NVML handle) of each GPU that NVML gave a handle for."""
        if self.nvml is not None:
            nvml = self.nvml
            for i in range(_read(nvml.nvmlDeviceGetCount) or 0):
                handle = _read(lambda i=i: nvml.nvmlDeviceGetHandleByIndex(i))
                if handle is not None:
                    self.handles.append((i, handle))

    def sample(self) -> dict:
        """One row (see the module's docstring): the host's numbers, and `gpus` when NVML sees any."""
        psutil = self.psutil
        memory = psutil.virtual_memory()
        row: dict[str, Any] = {"t": round(time.time(), 3), "cpu": psutil.cpu_percent(interval=None)}
        rss = _read(lambda: self.process.memory_info().rss)
        row.update(rss=rss, ram_used=memory.used, ram_total=memory.total)
        gpus = [self._gpu(i, h) for i, h in self.handles]
        if gpus:
            row["gpus"] = gpus
        return {k: v for k, v in row.items() if v is not None}

    def _gpu(self, index: int, handle: Any) -> dict:
        nvml = self.nvml
        name = _read(lambda: nvml.nvmlDeviceGetName(handle))
        memory = _read(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        power = _read(lambda: nvml.nvmlDeviceGetPowerUsage(handle))  # milliwatts
        gpu = {
            "index": index,
            "name": name.decode(errors="replace") if isinstance(name, bytes) else name,
            "util": _read(lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
            "mem_used": getattr(memory, "used", None),
            "mem_total": getattr(memory, "total", None),
            "temp": _read(lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)),
            "power": round(power / 1000, 1) if isinstance(power, (int, float)) else None,
        }
        return {k: v for k, v in gpu.items() if v is not None}

    def close(self) -> None:
        if self.nvml is not None:
            _read(self.nvml.nvmlShutdown)
            self.nvml = None


# --- the file -------------------------------------------------------------------------------------------------


class SystemLog:
    """system.jsonl, appended to and kept at most MAX_ROWS rows (`add` one sample at a time).

    When the file reaches `most` rows, it is rewritten with every second row, and the stride doubles: from
    then on one sample in `stride` is written. The kept rows are held in memory (at most `most`), so the
    rewrite reads nothing back. An OSError (a full disk) propagates to the caller, which decides."""

    def __init__(self, path: Path, most: int = MAX_ROWS) -> None:
        self.path = Path(path)
        self.most = max(most - most % 2, 2)
        self.stride = 1
        self.rows: list[dict] = read_rows(self.path)[-self.most :]
        """The rows in the file (a resumed run's writer goes on after those of its earlier part)."""
        self._seen = 0

    def add(self, row: dict) -> None:
        self._seen += 1
        if (self._seen - 1) % self.stride:
            return
        self.rows.append(row)
        if len(self.rows) < self.most:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row, separators=(",", ":")) + "\n")
            return
        self.rows, self.stride = self.rows[::2], self.stride * 2  # every second row: evenly spaced, stride apart
        atomic_write(self.path, "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in self.rows), sync=False)


class SystemRecorder:
    """Samples every `interval` seconds in a daemon thread into a run folder's system.jsonl, until `stop()`.

    The hook for the run's writer: start it beside training, stop it at the end. A sample that cannot be
    written (a full disk) ends the recording quietly: system metrics never end a run."""

    def __init__(self, folder: Path, interval: float = INTERVAL, sampler: Sampler | None = None) -> None:
        self.log = SystemLog(Path(folder) / SYSTEM_FILE)
        self.interval = interval
        self.sampler = sampler
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str = ""
        """Why the recording ended early ("" while it goes on, or after stop())."""

    def start(self) -> SystemRecorder:
        self._thread = threading.Thread(target=self._run, name="fmtui-system-metrics", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            sampler = self.sampler or Sampler()
        except Exception as e:  # psutil missing or refused: no system metrics, the run goes on
            self.error = f"no system metrics: {e}"
            return
        try:
            while True:
                self.log.add(sampler.sample())
                if self._stop.wait(self.interval):
                    return
        except OSError as e:
            self.error = f"system metrics stopped: {e.strerror or e}"
        finally:
            sampler.close()

    def stop(self) -> None:
        """End the recording (waits for the thread, which is at most one sample away)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


# --- reading back -----------------------------------------------------------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def check_row(row: Any) -> dict | None:
    """A row as fmtui wrote it, with only fields of the right types; None when it is no row at all."""
    if not isinstance(row, dict) or not _number(row.get("t")):
        return None
    out: dict[str, Any] = {"t": float(row["t"])}
    out.update({k: row[k] for k in HOST_FIELDS if _number(row.get(k))})
    gpus = row.get("gpus")
    if isinstance(gpus, list):
        checked = []
        for gpu in gpus[:64]:
            if not isinstance(gpu, dict) or not isinstance(gpu.get("index"), int) or isinstance(gpu["index"], bool):
                continue
            g: dict[str, Any] = {"index": gpu["index"]}
            if isinstance(gpu.get("name"), str):
                g["name"] = gpu["name"][:80]
            g.update({k: gpu[k] for k in GPU_FIELDS if _number(gpu.get(k))})
            checked.append(g)
        if checked:
            out["gpus"] = checked
    return out


def read_system(folder: Path) -> list[dict]:
    """The checked rows of a run folder's system.jsonl (see read_rows)."""
    return read_rows(Path(folder) / SYSTEM_FILE)


def read_rows(file: Path) -> list[dict]:
    """The checked rows of a system.jsonl ([] when there is none, or it is too large, a link or no file); lines
    that are not rows (a half-written last line, garbage) are skipped: system metrics are a side view."""
    file = Path(file)
    try:
        if os.path.islink(file) or not file.is_file() or file.stat().st_size > MAX_BYTES:
            return []
        data = file.read_bytes()
    except OSError:
        return []
    rows = []
    for line in data.split(b"\n"):
        try:
            row = check_row(json.loads(line))
        except (ValueError, RecursionError):
            continue
        if row is not None:
            rows.append(row)
    return rows


def peaks(rows: list[dict]) -> dict:
    """The highest of each reading over the rows: the host's, and each GPU's (by index, with its name and total
    memory); {} when there are no rows. For `runs --json` and the Runs pane."""
    out: dict[str, Any] = {}
    for key in HOST_FIELDS:
        values = [r[key] for r in rows if key in r]
        if values:
            out[key] = max(values)
    gpus: dict[int, dict] = {}
    for row in rows:
        for gpu in row.get("gpus", []):
            peak = gpus.setdefault(gpu["index"], {"index": gpu["index"]})
            if "name" in gpu:
                peak["name"] = gpu["name"]
            for key in GPU_FIELDS:
                if key in gpu:
                    peak[key] = max(peak.get(key, gpu[key]), gpu[key])
    if gpus:
        out["gpus"] = [gpus[i] for i in sorted(gpus)]
    if rows:
        out["samples"] = len(rows)
        out["seconds"] = rows[-1]["t"] - rows[0]["t"]
    return out

"""System metrics beside a run: GPU utilisation, memory, temperature and power per device, CPU and memory use.

    {"t": 1764241200.5, "cpu": 37.5, "rss": 812646400, "ram_used": 9.1e9, "ram_total": 3.3e10,
     "gpus": [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "util": 97, "mem_used": 1.2e10, "mem_total": 8.5e10,
               "temp": 64, "power": 312.5}]}

One such row per sample, appended to `system.jsonl` in the run folder (fmtui.runfolder.schema declares the file
and its fields: SYSTEM, SYSTEM_DOCS, SYSTEM_GPU_DOCS). GPUs are read through NVIDIA's management library (the
`nvidia-ml-py` package, module `pynvml`), CPU and memory through `psutil`. What cannot be measured is absent,
never 0: no `gpus` key without the library or a GPU, no `power` for a GPU that does not report it. `cpu` is the
whole machine's CPU use (% of all cores), `rss` the sampled process's resident memory, `ram_used`/`ram_total`
the machine's; bytes, degrees Celsius, watts.

The writer's side: SystemRecorder, one sampling thread per recorder (fmtui.recorder starts it with a run and
stops it with the run); runs trained together (a stacked group) share each sample, written to each one's
folder. The file is bounded (SystemLog): past MAX_ROWS rows it is rewritten with every second row, and from
then on only every second sample is kept (then every fourth...), so a week-long run's file stays under a
megabyte while its start and end stay in it. A file that cannot be written (a full disk) ends its recording,
never the run.

The readers' side, untrusted input like every run file (bad lines skipped, a link or a huge file refused):
`read_system` (all rows), `read_tail` (the newest rows and the peaks, read on from where the last read ended:
a followed run costs one line per sample, fmtui.runfolder.read.FileCache.load_grown) and `peaks`. No torch, no UI.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmtui.errors import RunError
from fmtui.runfolder import files
from fmtui.runfolder.schema import MAX_BYTES, SYSTEM, SYSTEM_FIELDS, SYSTEM_GPU_FIELDS, SYSTEM_ROWS

SYSTEM_FILE = SYSTEM
INTERVAL = 2.0
"""Seconds between two samples while a run trains."""
MAX_ROWS = SYSTEM_ROWS
"""Rows the file holds at most (about 400 bytes each on a one-GPU machine: under a megabyte)."""
FIRST_WAIT = 10.0
"""Seconds a run's end waits at most for its first sample (the sampler's start: NVML's takes a moment)."""
TAIL = 64
"""Rows a follower keeps (read_tail): the sparklines draw the last few, the peaks cover the whole file."""
GPU_FIELDS = tuple(f for f in SYSTEM_GPU_FIELDS if f not in ("index", "name"))
HOST_FIELDS = tuple(f for f in SYSTEM_FIELDS if f not in ("t", "gpus"))


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


def _line(row: dict) -> str:
    return json.dumps(row, separators=(",", ":")) + "\n"


class SystemLog:
    """system.jsonl, appended to and kept at most MAX_ROWS rows (`add` one sample at a time).

    When the file reaches `most` rows, it is rewritten with every second row, and the stride doubles: from
    then on one sample in `stride` is written. The kept rows are held in memory (at most `most`), so the
    rewrite reads nothing back. Appends and rewrites never follow a link (fmtui.runfolder.files); an OSError
    (a full disk, a link) propagates to the caller, which decides."""

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
            files.append_lines(self.path, _line(row), sync=False)  # a side record: no fsync every sample
            return
        self.rows, self.stride = self.rows[::2], self.stride * 2  # every second row: evenly spaced, stride apart
        files.atomic_write(self.path, "".join(map(_line, self.rows)), sync=False)


class SystemRecorder:
    """Samples every `interval` seconds (INTERVAL) in one daemon thread, appending each sample to the system.jsonl
    of every run folder it records (`add`, `remove`), until `stop()`.

    The hook for a process that writes runs (fmtui.recorder): a folder is added when its run starts (it gets a
    sample at once) and removed when it ends (after its first sample: a run shorter than the interval has one
    too); runs trained together share each sample. A folder whose file cannot be written (a full disk) is
    dropped, its reason kept in `errors`; a sampler that fails ends the recording (`error`): system metrics never
    end a run. `sampler` makes the Sampler (tests give a fake); `most`: the rows each file keeps (SystemLog)."""

    def __init__(
        self, interval: float | None = None, sampler: Callable[[], Any] = lambda: Sampler(), most: int = MAX_ROWS
    ) -> None:
        self.interval = INTERVAL if interval is None else interval
        self.make_sampler = sampler
        self.most = most
        self.logs: dict[Path, SystemLog | None] = {}
        """The folders recorded, each with its log (None until the thread opens it: that reads a resumed file)."""
        self.errors: dict[Path, str] = {}
        """Folders whose recording ended early, and why."""
        self.error = ""
        """Why the sampling itself ended early ("" while it goes on, or after stop())."""
        self._first: dict[Path, threading.Event] = {}
        """Set once a folder's first sample is written (or it cannot be: dropped, no sampler)."""
        self._lock = threading.Lock()
        """Held while samples are written: remove() returns once no write to its folder is under way."""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, folder: Path) -> None:
        """Record this folder from now on (the thread is started with the first)."""
        with self._lock:
            self.logs[Path(folder)] = None
            self._first[Path(folder)] = threading.Event()
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="fmtui-system-metrics", daemon=True)
            self._thread.start()
        self._wake.set()

    def remove(self, folder: Path) -> None:
        """Record this folder no more, once it has its first sample (FIRST_WAIT seconds at most): once this
        returns, nothing is written to it."""
        first, thread = self._first.get(Path(folder)), self._thread
        deadline = time.monotonic() + FIRST_WAIT
        while first is not None and not first.is_set() and thread is not None and thread.is_alive():
            if time.monotonic() > deadline:
                break
            first.wait(0.05)
        with self._lock:
            self.logs.pop(Path(folder), None)
            self._first.pop(Path(folder), None)

    def stop(self) -> None:
        """End the recording of every folder (each after its first sample; then the thread, which is at most one
        sample away, is waited for)."""
        for folder in list(self._first):
            self.remove(folder)
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join()

    def _run(self) -> None:
        sampler = None
        try:
            sampler = self.make_sampler()
            while not self._stop.is_set():
                self._wake.clear()
                if self.logs:
                    self._write(sampler.sample())
                self._wake.wait(self.interval)
        except Exception as e:  # no psutil, or a sampler that breaks mid-run: never a traceback in the run
            self.error = f"system metrics stopped: {e}" if sampler else f"no system metrics: {e}"
        finally:
            for first in list(self._first.values()):
                first.set()  # nothing more will be written: nobody waits for a first sample
            if sampler is not None:
                sampler.close()

    def _write(self, row: dict) -> None:
        with self._lock:
            for folder, log in list(self.logs.items()):
                try:
                    if log is None:
                        log = self.logs[folder] = SystemLog(folder / SYSTEM, self.most)
                    log.add(row)
                except OSError as e:  # a full disk, a link put in its place: this folder's recording ends
                    del self.logs[folder]
                    self.errors[folder] = f"system metrics stopped: {e.strerror or e}"
                self._first[folder].set()


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


def _rows(lines: Iterable[bytes]) -> list[dict]:
    """The checked rows of these lines; lines that are not rows (a half-written last line, garbage) are skipped:
    system metrics are a side view, and one bad line must not hide the others."""
    rows = []
    for line in lines:
        try:
            row = check_row(json.loads(line))
        except (ValueError, RecursionError):
            continue
        if row is not None:
            rows.append(row)
    return rows


def read_system(folder: Path) -> list[dict]:
    """The checked rows of a run folder's system.jsonl (see read_rows)."""
    return read_rows(Path(folder) / SYSTEM)


def read_rows(file: Path) -> list[dict]:
    """The checked rows of a system.jsonl: [] when there is none, or it is a link, too large or no file."""
    try:
        if files.stat_file(Path(file)) is None:
            return []
        return _rows(files.read_bytes(Path(file)).split(b"\n"))
    except RunError:
        return []


def read_peaks(folder: Path) -> dict | None:
    """The peaks of a run folder's system.jsonl (`runs --json`); None when it has none, or no rows."""
    return peaks(read_system(folder)) or None


@dataclass(frozen=True)
class SystemTail:
    """system.jsonl as read so far: its newest rows (at most TAIL), the peaks of all its rows, and where its
    complete lines end (to read on from there when it only grew)."""

    rows: tuple[dict, ...]
    peaks: dict
    inode: int
    end: int
    """Bytes of complete lines read."""
    last: bytes = b""
    """The last complete line read (with its newline): still there = the file was only appended to."""


def read_tail(file: Path, st: os.stat_result, before: Any = None, keep: int = TAIL) -> SystemTail:
    """system.jsonl read on from `before` (a SystemTail) when the file only grew since, else from the start (a
    thinned file is a new one: renamed over the old). RunError when it cannot be opened (a link, no file)."""
    try:
        with files.open_read(file) as f:
            inode = os.fstat(f.fileno()).st_ino
            if isinstance(before, SystemTail) and before.inode == inode and before.end <= st.st_size:
                f.seek(before.end - len(before.last))
                data = f.read(MAX_BYTES[SYSTEM] + 1)
                if data.startswith(before.last):
                    return _extend(before, data[len(before.last) :], keep)
                f.seek(0)
            return _extend(SystemTail((), {}, inode, 0), f.read(MAX_BYTES[SYSTEM] + 1), keep)
    except OSError as e:
        raise RunError(file, f"cannot be read ({e.strerror})") from None


def _extend(state: SystemTail, data: bytes, keep: int) -> SystemTail:
    """state plus the rows of data's complete lines (a last line without its newline is being written)."""
    complete = data.split(b"\n")[:-1]
    if not complete:
        return state  # nothing new: the same object, so a follower sees no change
    new = _rows(complete)
    end = state.end + sum(len(line) + 1 for line in complete)
    return SystemTail((*state.rows, *new)[-keep:], peaks(new, state.peaks), state.inode, end, complete[-1] + b"\n")


def peaks(rows: list[dict], before: dict | None = None) -> dict:
    """The highest of each reading over the rows (and those `before` summed up): the host's, and each GPU's (by
    index, with its name); `samples`, and the `first` and `last` sample's time. {} when there are none. For
    `runs --json` and the Runs pane."""
    out: dict[str, Any] = dict(before or {})
    gpus = {g["index"]: dict(g) for g in out.get("gpus", [])}
    for row in rows:
        for key in HOST_FIELDS:
            if key in row:
                out[key] = max(out.get(key, row[key]), row[key])
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
        out["samples"] = out.get("samples", 0) + len(rows)
        out.setdefault("first", rows[0]["t"])
        out["last"] = rows[-1]["t"]
    return out

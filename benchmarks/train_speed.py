"""Training speed: the lecture's torchvision pipeline against fmtui's engine, alternated on one device.

Both train the lecture's config (MLP 784-256-10, ReLU, Normalize((0.5,), (0.5,)), SGD lr 0.01, no
momentum) from the same initial weights (the same seed right before the model is built) for the same
number of epochs, and both are evaluated on the test split after every epoch. "s/epoch" is training
time only, for both: the wall time of the epoch's batch loop, evaluation excluded (fmtui's
`EpochEnd.seconds`; for the lecture the loop is timed the same way, with a device sync at its end).

    .venv/bin/python benchmarks/train_speed.py --data-dir DIR [--device auto|cpu|cuda] [--epochs 2]
        [--repeats 3] [--batch-sizes 64,1024] [--threads N] [--json OUT] [--tui] [--help-time] [--no-graphs]

(a) lecture: FashionMNIST(root, download=True, transform=Compose([ToTensor(), Normalize])), a
    DataLoader(batch_size, shuffle=True), the loop with `.item()` per batch and `evaluate()` on a
    DataLoader(batch_size=64) over the test set, as the lecture writes them.
(b) fmtui: `fmtui.engine.prepare` + `run_prepared`, exactly what `fmtui --no-ui train` runs.
Pairs alternate their order (a,b / b,a / ...); the speed ratio of a pair is (a) s/epoch / (b) s/epoch.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import gzip
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn, optim

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere: import the fmtui of this checkout
    sys.path.insert(0, str(ROOT))

from fmtui.config import RunConfig  # noqa: E402
from fmtui.engine import (  # noqa: E402
    EpochEnd,
    Finished,
    Started,
    default_threads,
    prepare,
    resolve_device,
    run_prepared,
)

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
SUBFOLDERS = ("", "fashion-mnist", "FashionMNIST/raw")
CONFIG_OVERRIDES: dict = {}
"""RunConfig fields set on every fmtui run of this invocation beyond the lecture's (main's --no-graphs)."""


def graphs_supported() -> bool:
    """Whether this fmtui has a graphed training step that a RunConfig field `graphs` switches off."""
    return any(f.name == "graphs" for f in dataclasses.fields(RunConfig))


# --- one measured run ---------------------------------------------------------------------------


@dataclass
class Run:
    """What one training run of one pipeline measured."""

    pipeline: str
    batch_size: int
    pair: int
    epoch_seconds: list[float]
    """Training time of each epoch, evaluation excluded."""
    eval_seconds: list[float]
    test_accuracy: float
    """Test accuracy (%) after the last epoch."""
    train_accuracy: float
    n_train: int
    setup_seconds: float
    """Loading data and building the model (not part of s/epoch)."""
    other_load: float = 0.0
    """Average CPU cores busy with other processes during the run (from /proc/stat; 0 where unknown)."""
    steal: float = 0.0
    """Average cores' worth of time the hypervisor gave to other guests during the run."""
    loadavg: float = 0.0
    step: str | None = None
    """fmtui's training step as its Started event names it (graphed or eager), None where it names none."""

    @property
    def seconds(self) -> float:
        """Mean training seconds per epoch."""
        return statistics.fmean(self.epoch_seconds)

    @property
    def samples_per_s(self) -> float:
        return self.n_train / self.seconds


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def lecture_model() -> nn.Module:
    """The lecture's MLP, verbatim."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


def lecture_evaluate(model, testloader, criterion, device):
    """The lecture's `evaluate()` (Addition 2), verbatim apart from the device argument."""
    model.eval()
    test_loss, correct, total = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in testloader:
            images, labels = images.to(device), labels.to(device)
            outputs = model(images)
            loss = criterion(outputs, labels)
            test_loss += loss.item()
            _, predicted = torch.max(outputs.data, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    return test_loss / len(testloader), 100 * correct / total


def lecture_epoch(model, trainloader, criterion, optimizer, device) -> tuple[float, float]:
    """The lecture's training loop for one epoch (Addition 1): running loss and accuracy via .item()."""
    model.train()
    running_loss, correct, total = 0.0, 0, 0
    for i, (inputs, labels) in enumerate(trainloader, 0):  # noqa: B007 (the lecture's loop, verbatim)
        inputs, labels = inputs.to(device), labels.to(device)
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        _, predicted = torch.max(outputs.data, 1)
        total += labels.size(0)
        correct += (predicted == labels).sum().item()
        running_loss += loss.item()
    return running_loss / (i + 1), 100 * correct / total


def lecture_run(root: Path, device: torch.device, batch_size: int, epochs: int, seed: int, pair: int = 0) -> Run:
    """(a) The lecture's pipeline on the torchvision root prepared by `stage_lecture_root`."""
    from torch.utils.data import DataLoader
    from torchvision import transforms as T
    from torchvision.datasets import FashionMNIST

    t0 = time.perf_counter()
    transform = T.Compose([T.ToTensor(), T.Normalize((0.5,), (0.5,))])
    trainset = FashionMNIST(root=str(root), train=True, download=True, transform=transform)
    trainloader = DataLoader(trainset, batch_size=batch_size, shuffle=True)
    testset = FashionMNIST(root=str(root), train=False, download=True, transform=transform)
    testloader = DataLoader(testset, batch_size=64, shuffle=False)
    torch.manual_seed(seed)  # as fmtui's prepare: seed, then build the model -> identical initial weights
    model = lecture_model().to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    setup = time.perf_counter() - t0
    train_s, eval_s, train_acc, test_acc = [], [], 0.0, 0.0
    for _ in range(epochs):
        t = time.perf_counter()
        _, train_acc = lecture_epoch(model, trainloader, criterion, optimizer, device)
        sync(device)
        train_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        _, test_acc = lecture_evaluate(model, testloader, criterion, device)
        eval_s.append(time.perf_counter() - t)
    return Run("lecture", batch_size, pair, train_s, eval_s, test_acc, train_acc, len(trainset), setup)


def lecture_config(data_dir: Path, device: str, batch_size: int, epochs: int, seed: int, threads: int) -> RunConfig:
    """The lecture's run as a RunConfig, every lecture-relevant field spelled out."""
    return RunConfig(
        dataset="fashion-mnist",
        norm="symmetric",
        model="mlp",
        hidden=(256,),
        activation="relu",
        optimizer="sgd",
        lr=0.01,
        momentum=0.0,
        batch_size=batch_size,
        epochs=epochs,
        device=device,
        seed=seed,
        threads=threads,
        data_dir=str(data_dir),
        **CONFIG_OVERRIDES,
    )


def engine_run(cfg: RunConfig, pair: int = 0, dataset=None) -> Run:
    """(b) fmtui's engine: `prepare` + `run_prepared`, the code path of `fmtui --no-ui train`.

    `dataset` (an already loaded `fmtui.data.Dataset`) skips loading, for the thread measurements.
    """
    t0 = time.perf_counter()
    p = prepare(cfg, dataset)
    setup = time.perf_counter() - t0
    history: list[EpochEnd] = []
    step = None
    for ev in run_prepared(p):
        if isinstance(ev, Started):
            step = getattr(ev, "step", None)
        elif isinstance(ev, EpochEnd):
            history.append(ev)
        elif isinstance(ev, Finished) and ev.status != "completed":
            raise RuntimeError(f"fmtui run did not complete: {ev.message}")
    last = history[-1]
    return Run(
        "fmtui",
        cfg.batch_size,
        pair,
        [e.seconds for e in history],
        [e.eval_seconds for e in history],
        last.test_accuracy,
        last.train_accuracy,
        len(p.splits.y_train),
        setup,
        step=step,
    )


# --- data staging for torchvision ---------------------------------------------------------------


def find_files(data_dir: Path) -> Path:
    """The folder inside data_dir holding the four official .gz files (flat, fashion-mnist/ or torchvision's)."""
    for sub in SUBFOLDERS:
        folder = data_dir / sub if sub else data_dir
        if all((folder / name).is_file() for name in FILES):
            return folder
    raise SystemExit(
        f"error: the four Fashion-MNIST .gz files are not in {data_dir} (nor in its "
        f"{', '.join(s for s in SUBFOLDERS if s)} sub-folders)"
    )


def official_md5s() -> dict[str, str]:
    from torchvision.datasets import FashionMNIST

    return dict(FashionMNIST.resources)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def stage_lecture_root(data_dir: Path, tmp: Path) -> tuple[Path, bool]:
    """A torchvision root `tmp/FashionMNIST/raw/` with the four files linked in; True when they are official.

    Official files are symlinked as .gz and torchvision's `download=True` verifies their md5 and
    extracts them (no network is used). Other files (the tests' synthetic data) are extracted here,
    since torchvision would try to download over a file whose md5 it does not know.
    """
    src, raw = find_files(data_dir), tmp / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    known = official_md5s()
    official = all(md5(src / name) == known.get(name) for name in FILES)
    for name in FILES:
        if official:
            (raw / name).symlink_to((src / name).resolve())
        else:
            with gzip.open(src / name, "rb") as f:
                (raw / name.removesuffix(".gz")).write_bytes(f.read())
    return tmp, official


# --- load of the machine ------------------------------------------------------------------------


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, steal) jiffies of all CPUs from /proc/stat, None where there is none.

    busy = user + nice + system + irq + softirq (guest time is already inside user and nice);
    steal (the hypervisor running someone else) is kept apart: it is not a process on this machine.
    """
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields + [0] * (8 - len(fields))
    except (OSError, ValueError):
        return None
    return user + nice + system + irq + softirq, steal


def _own_cpu_seconds(pids: tuple[int, ...] = ()) -> float:
    """CPU seconds used by this process (all threads) plus the given child pids."""
    t = os.times()
    total = t.user + t.system
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for pid in pids:
        try:
            parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(parts[11]) + int(parts[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


@contextmanager
def other_load(own_pids: tuple[int, ...] = ()) -> Iterator[dict]:
    """Measure the average number of cores busy with *other* processes while the block runs.

    Busy time of all CPUs (/proc/stat) minus this process's and `own_pids`' CPU time, over wall time.
    Yields a dict that holds `cores`, `steal` (cores' worth of time taken by the hypervisor) and
    `loadavg` (1-minute load average at the start) after the block.
    """
    out = {"cores": 0.0, "steal": 0.0, "loadavg": os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0}
    j0, c0, t0 = _cpu_jiffies(), _own_cpu_seconds(own_pids), time.perf_counter()
    try:
        yield out
    finally:
        j1, c1, wall = _cpu_jiffies(), _own_cpu_seconds(own_pids), time.perf_counter() - t0
        if j0 and j1 and wall > 0:
            tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
            out["cores"] = max(0.0, (j1[0] - j0[0]) / tick - (c1 - c0)) / wall
            out["steal"] = (j1[1] - j0[1]) / tick / wall


def measured(fn: Callable[[], Run]) -> Run:
    """Run fn and note the background load during it."""
    with other_load() as load:
        run = fn()
    run.other_load, run.steal, run.loadavg = load["cores"], load["steal"], load["loadavg"]
    return run


# --- the comparison -----------------------------------------------------------------------------


@dataclass
class Bench:
    """All runs of one benchmark invocation and what it ran on."""

    machine: dict
    runs: list[Run] = field(default_factory=list)
    tui: list[dict] = field(default_factory=list)
    help_time: dict | None = None
    sweep: list[dict] = field(default_factory=list)


def machine_info(device: torch.device, threads: int) -> dict:
    info = {
        "device": device.type,
        "threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu_model(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def compare(
    bench: Bench,
    data_dir: Path,
    device: str,
    batch_sizes: list[int],
    epochs: int,
    repeats: int,
    threads: int,
    log: Callable[[str], None] = print,
) -> None:
    """Alternate (a) lecture and (b) fmtui `repeats` times per batch size; append the runs to bench."""
    dev = resolve_device(device)
    with tempfile.TemporaryDirectory(prefix="fmtui-bench-") as tmp:
        root, official = stage_lecture_root(data_dir, Path(tmp))
        if not official:
            log("note: these are not the official Fashion-MNIST files (md5 differs); extracted without verification")
        for bs in batch_sizes:
            for pair in range(1, repeats + 1):
                for name in ("lecture", "fmtui") if pair % 2 else ("fmtui", "lecture"):
                    torch.set_num_threads(threads)  # the same CPU threads for both pipelines
                    run = measured(functools.partial(one_run, name, root, data_dir, dev, bs, epochs, pair, threads))
                    bench.runs.append(run)
                    log(row(run))


def one_run(
    pipeline: str, root: Path, data_dir: Path, dev: torch.device, batch_size: int, epochs: int, pair: int, threads: int
) -> Run:
    """One run of either pipeline; pair n seeds both with n - 1, so a pair starts from the same weights."""
    if pipeline == "lecture":
        return lecture_run(root, dev, batch_size, epochs, pair - 1, pair)
    return engine_run(lecture_config(data_dir, dev.type, batch_size, epochs, pair - 1, threads), pair)


HEADER = (
    f"{'config':<10} {'pipeline':<8} {'pair':>4} {'s/epoch':>8} {'samples/s':>10} {'test acc':>8} "
    f"{'eval s':>7} {'other load':>10}"
)


def row(run: Run) -> str:
    return (
        f"{'batch ' + str(run.batch_size):<10} {run.pipeline:<8} {run.pair:>4} {run.seconds:>8.3f} "
        f"{run.samples_per_s:>10,.0f} {run.test_accuracy:>7.2f}% {statistics.fmean(run.eval_seconds):>7.3f} "
        f"{run.other_load:>10.2f}"
    )


def pair_ratios(runs: list[Run], batch_size: int) -> list[float]:
    """Per pair: lecture s/epoch / fmtui s/epoch (how many times faster fmtui trained)."""
    by_pair: dict[int, dict[str, Run]] = {}
    for r in runs:
        if r.batch_size == batch_size:
            by_pair.setdefault(r.pair, {})[r.pipeline] = r
    return [p["lecture"].seconds / p["fmtui"].seconds for _, p in sorted(by_pair.items()) if len(p) == 2]


def summary(bench: Bench) -> list[str]:
    """Medians per config and pipeline, then the per-pair ratios and their median."""
    lines = [f"{'config':<10} {'pipeline':<8} {'median s/epoch':>14} {'samples/s':>10} {'mean test acc':>13}"]
    ratios = []
    for bs in sorted({r.batch_size for r in bench.runs}):
        for name in ("lecture", "fmtui"):
            rs = [r for r in bench.runs if r.batch_size == bs and r.pipeline == name]
            if rs:
                med = statistics.median(r.seconds for r in rs)
                lines.append(
                    f"{'batch ' + str(bs):<10} {name:<8} {med:>14.3f} {rs[0].n_train / med:>10,.0f} "
                    f"{statistics.fmean(r.test_accuracy for r in rs):>12.2f}%"
                )
        rs = pair_ratios(bench.runs, bs)
        if rs:
            acc = {
                n: statistics.fmean(r.test_accuracy for r in bench.runs if r.batch_size == bs and r.pipeline == n)
                for n in ("lecture", "fmtui")
            }
            ratios.append(
                f"batch {bs}: speed ratio fmtui/lecture per pair {', '.join(f'{x:.2f}' for x in rs)}"
                f" -> median {statistics.median(rs):.2f}x; test acc fmtui - lecture "
                f"{acc['fmtui'] - acc['lecture']:+.2f} points"
            )
    loads = [r.other_load for r in bench.runs]
    load = (
        (
            f"load during the runs: other processes median {statistics.median(loads):.2f}, max {max(loads):.2f} "
            f"cores; hypervisor steal max {max(r.steal for r in bench.runs):.2f} cores"
        )
        if loads
        else ""
    )
    return lines + [""] + ratios + [load]


# --- TUI vs headless ----------------------------------------------------------------------------


def tui_run(cfg: RunConfig, runs_dir: Path, timeout: float = 600.0) -> dict:
    """Train cfg in the real app, headless (`App.run_test`), and read its run folder back.

    Uses `fmtui.app.make_app(config, runs_dir=..., autostart=True)`; the app writes metrics.jsonl
    with the engine's per-epoch training `seconds`. Returns those seconds, the final test accuracy and
    the share of a core the UI (main) thread used while the app ran.
    """
    from fmtui.app import make_app

    async def drive() -> tuple[Path, float]:
        app = make_app(cfg, runs_dir=runs_dir, autostart=True)
        async with app.run_test(size=(120, 40)):
            c0, t0 = time.thread_time(), time.perf_counter()  # this coroutine runs on the UI thread
            while time.perf_counter() - t0 < timeout:
                await asyncio.sleep(0.25)  # not pilot.pause(): it would poll every widget, adding UI work
                done = finished_run(runs_dir)
                if done is not None:
                    return done, (time.thread_time() - c0) / (time.perf_counter() - t0)
        raise TimeoutError(f"the TUI did not finish training within {timeout:.0f}s")

    folder, ui_share = asyncio.run(drive())
    used = RunConfig.from_dict(json.loads((folder / "config.json").read_text()))
    if used != cfg:
        raise RuntimeError(f"the TUI trained a different config: {used} instead of {cfg}")
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {
        "epoch_seconds": [r["seconds"] for r in rows],
        "test_accuracy": rows[-1]["test_accuracy"],
        "ui_thread_cpu_share": ui_share,
    }


def finished_run(runs_dir: Path) -> Path | None:
    """The run folder whose summary.json says it is no longer running, if any."""
    for summary_path in runs_dir.glob("*/summary.json"):
        try:
            status = json.loads(summary_path.read_text()).get("status")
        except (OSError, ValueError):
            continue
        if status in ("completed", "stopped", "diverged", "error"):
            if status != "completed":
                raise RuntimeError(f"the TUI run ended with status {status}: {summary_path.parent}")
            return summary_path.parent
    return None


def compare_tui(
    bench: Bench,
    data_dir: Path,
    device: str,
    batch_size: int,
    epochs: int,
    repeats: int,
    threads: int,
    log: Callable[[str], None] = print,
) -> None:
    """Alternate headless engine runs and TUI runs of the same config; ratio = TUI s/epoch / headless s/epoch."""
    dev = resolve_device(device)
    for pair in range(1, repeats + 1):
        cfg = lecture_config(data_dir, dev.type, batch_size, epochs, pair - 1, threads)
        result: dict = {"pair": pair, "batch_size": batch_size}
        for name in ("headless", "tui") if pair % 2 else ("tui", "headless"):
            torch.set_num_threads(threads)
            with other_load() as load, tempfile.TemporaryDirectory(prefix="fmtui-tui-") as tmp:
                if name == "tui":
                    result["tui"] = tui_run(cfg, Path(tmp))
                else:
                    run = engine_run(cfg, pair)
                    result["headless"] = {"epoch_seconds": run.epoch_seconds, "test_accuracy": run.test_accuracy}
            result[name]["other_load"] = load["cores"]
        result.update(tui_ratios(result["headless"]["epoch_seconds"], result["tui"]["epoch_seconds"]))
        bench.tui.append(result)
        log(tui_row(result))


def tui_ratios(headless: list[float], tui: list[float]) -> dict:
    """TUI/headless on the mean s/epoch, and on epochs after the first (the app's start-up work overlaps epoch 1)."""
    out = {"ratio": statistics.fmean(tui) / statistics.fmean(headless)}
    if len(tui) > 1 and len(headless) > 1:
        out["ratio_after_epoch_1"] = statistics.fmean(tui[1:]) / statistics.fmean(headless[1:])
    return out


def tui_row(r: dict) -> str:
    h, t = r["headless"], r["tui"]
    later = f", after epoch 1 {r['ratio_after_epoch_1']:.2f}" if "ratio_after_epoch_1" in r else ""
    return (
        f"batch {r['batch_size']} pair {r['pair']}: headless {' '.join(f'{s:.3f}' for s in h['epoch_seconds'])} "
        f"s, TUI {' '.join(f'{s:.3f}' for s in t['epoch_seconds'])} s; TUI/headless {r['ratio']:.2f}{later}; "
        f"UI thread {100 * t['ui_thread_cpu_share']:.0f}% of a core; test acc {h['test_accuracy']:.2f}/"
        f"{t['test_accuracy']:.2f}; other load {h['other_load']:.2f}/{t['other_load']:.2f}"
    )


def tui_summary(results: list[dict]) -> str:
    ratios = [r["ratio"] for r in results]
    line = (
        f"TUI/headless s/epoch per pair {', '.join(f'{x:.2f}' for x in ratios)} "
        f"-> median {statistics.median(ratios):.2f}"
    )
    later = [r["ratio_after_epoch_1"] for r in results if "ratio_after_epoch_1" in r]
    if later:
        line += f"; after epoch 1: median {statistics.median(later):.2f}"
    return line


# --- fmtui --help -------------------------------------------------------------------------------


def help_time(repeats: int = 5) -> dict:
    """Wall time of `python -m fmtui --help` (median) against a bare `python -c pass`, and whether torch loads."""

    def wall(args: list[str]) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, *args], cwd=ROOT, check=True, capture_output=True)
        return time.perf_counter() - t

    bare = statistics.median(wall(["-c", "pass"]) for _ in range(repeats))
    helps = [wall(["-m", "fmtui", "--help"]) for _ in range(repeats)]
    probe = (
        "import sys, runpy; sys.argv = ['fmtui', '--help']\n"
        "try: runpy.run_module('fmtui', run_name='__main__')\nexcept SystemExit: pass\n"
        "print(sorted(m for m in ('torch', 'textual', 'torchvision') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True)
    return {
        "median_s": statistics.median(helps),
        "runs_s": helps,
        "python_startup_s": bare,
        "heavy_modules_imported": loaded.stdout.strip().splitlines()[-1],
    }


# --- sweeps: several runs at once ---------------------------------------------------------------


def sweep_configs(data_dir: Path, device: str, epochs: int, threads: int) -> list[RunConfig]:
    """The lecture's softmax regression experiment (the Runs pane's `L`): 4 normalizations x 2 lrs, batch 64."""
    from fmtui.sweep import lecture_experiment

    base = RunConfig(data_dir=str(data_dir), device=device, epochs=epochs, threads=threads, **CONFIG_OVERRIDES)
    return lecture_experiment(base)


def train_seconds(events) -> float:
    """Training seconds (evaluation excluded) of a run, or of a stacked group, from its Finished event."""
    return max(ev.seconds for ev in events if isinstance(ev, Finished))


def compare_sweep(
    bench: Bench, data_dir: Path, device: str, epochs: int, repeats: int, threads: int, log: Callable[[str], None]
) -> None:
    """One run vs the 8-run sweep trained stacked vs the same 8 runs one after another, alternated."""
    from fmtui.batched import train_batched
    from fmtui.data import load_dataset
    from fmtui.engine import train

    configs = sweep_configs(data_dir, device, epochs, threads)
    ds = load_dataset("fashion-mnist", data_dir)
    for rep in range(1, repeats + 1):
        one = train_seconds(train(configs[4], dataset=ds))  # symmetric, lr 0.01: one run of the grid
        stacked = train_seconds(ev for _, ev in train_batched(configs, dataset=ds))
        sequential = sum(train_seconds(train(c, dataset=ds)) for c in configs)
        r = {
            "repeat": rep,
            "one_s": one,
            "stacked_s": stacked,
            "sequential_s": sequential,
            "stacked_over_one": stacked / one,
            "sequential_over_one": sequential / one,
        }
        bench.sweep.append(r)
        log(
            f"sweep of {len(configs)} runs, {epochs} epochs, repeat {rep}: one run {one:.2f}s, stacked {stacked:.2f}s "
            f"({r['stacked_over_one']:.2f}x one run), one after another {sequential:.2f}s "
            f"({r['sequential_over_one']:.2f}x)"
        )


def sweep_summary(results: list[dict]) -> str:
    def med(key):
        return statistics.median(r[key] for r in results)

    return (
        f"8-run sweep, median over {len(results)} repeats: stacked {med('stacked_over_one'):.2f}x one run, "
        f"one after another {med('sequential_over_one'):.2f}x; stacked is "
        f"{med('sequential_s') / med('stacked_s'):.2f}x faster than one after another"
    )


# --- command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get("FMTUI_DATA_DIR"),
        help="folder with the four Fashion-MNIST .gz files [$FMTUI_DATA_DIR]",
    )
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--epochs", type=int, default=2, help="epochs per run (accuracy compared after these) [2]")
    ap.add_argument("--repeats", type=int, default=3, help="pairs per batch size [3]")
    ap.add_argument("--batch-sizes", default="64,1024", help="comma-separated [64,1024]")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads for both pipelines; 0 = fmtui's default")
    ap.add_argument("--json", type=Path, help="write all raw figures to this JSON file")
    ap.add_argument("--tui", action="store_true", help="also compare training from the TUI with headless training")
    ap.add_argument("--tui-batch-size", type=int, default=64)
    ap.add_argument("--tui-repeats", type=int, default=3)
    ap.add_argument("--help-time", action="store_true", help="also time `fmtui --help`")
    ap.add_argument(
        "--sweep",
        action="store_true",
        help="also time the lecture's 8-run sweep: stacked vs one run vs one after another",
    )
    ap.add_argument("--sweep-repeats", type=int, default=3)
    ap.add_argument("--skip-compare", action="store_true", help="skip the lecture-vs-fmtui comparison")
    ap.add_argument(
        "--no-graphs",
        action="store_true",
        help="fmtui's eager step only, where it has a graphed one (ignored, with a note, where it has none)",
    )
    args = ap.parse_args(argv)
    if args.data_dir is None:
        ap.error("--data-dir is required (or set FMTUI_DATA_DIR)")
    args.batch_sizes = [int(b) for b in str(args.batch_sizes).split(",") if b.strip()]
    return args


def main(argv: list[str] | None = None, log: Callable[[str], None] = print) -> Bench:
    args = parse_args(argv)
    dev = resolve_device(args.device)
    threads = args.threads or default_threads()
    bench = Bench(machine_info(dev, threads))
    m = bench.machine
    CONFIG_OVERRIDES.clear()
    m["graphs_supported"], m["no_graphs"] = graphs_supported(), args.no_graphs
    if args.no_graphs and m["graphs_supported"]:
        CONFIG_OVERRIDES["graphs"] = False
    elif args.no_graphs:
        log("note: this fmtui has no graphed step (no RunConfig field `graphs`); --no-graphs changes nothing")
    log(
        f"device {dev.type}{' ' + m['gpu'] if 'gpu' in m else ''}, cpu {m['cpu']} ({m['cores']} cores), "
        f"torch {m['torch']}, {threads} CPU thread{'s' * (threads != 1)} for both pipelines, {args.epochs} epochs"
    )
    log("s/epoch = training time per epoch, evaluation excluded for both; other load = cores busy with other processes")
    if not args.skip_compare:
        log(HEADER)
        compare(bench, args.data_dir, dev.type, args.batch_sizes, args.epochs, args.repeats, threads, log)
        log("")
        for line in summary(bench):
            log(line)
    if args.tui:
        log("")
        compare_tui(bench, args.data_dir, dev.type, args.tui_batch_size, args.epochs, args.tui_repeats, threads, log)
        log(tui_summary(bench.tui))
    if args.sweep:
        log("")
        compare_sweep(bench, args.data_dir, dev.type, args.epochs, args.sweep_repeats, threads, log)
        log(sweep_summary(bench.sweep))
    if args.help_time:
        bench.help_time = help_time()
        h = bench.help_time
        log(
            f"\nfmtui --help: median {h['median_s']:.3f}s (python startup alone {h['python_startup_s']:.3f}s); "
            f"heavy modules imported: {h['heavy_modules_imported']}"
        )
    if args.json:
        args.json.write_text(to_json(bench, args))
    return bench


def to_json(bench: Bench, args: argparse.Namespace) -> str:
    """All raw figures; the data folder is left out (it is a local path)."""
    runs = [asdict(r) | {"seconds": r.seconds, "samples_per_s": r.samples_per_s} for r in bench.runs]
    options = {k: v for k, v in vars(args).items() if k not in ("data_dir", "json")}
    return json.dumps({**asdict(bench), "runs": runs, "args": options}, indent=2, default=str)


if __name__ == "__main__":
    main()

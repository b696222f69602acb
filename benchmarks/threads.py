"""Thread policy: fmtui's training s/epoch at several torch thread counts, on an idle and a loaded machine.

    .venv/bin/python benchmarks/threads.py --data-dir DIR [--threads 1,2] [--batch-sizes 64,1024]
        [--loads 0,1,2] [--repeats 3] [--epochs 1] [--json OUT]

"load N" starts N busy Python spin loops (each pinned to one core, counted from the last core) for
the duration of that block, and always stops them. Within a load, repeats alternate the order of the
thread counts. On a shared machine other people's work adds to the spinners, so every run measures
the cores busy elsewhere, and the table groups runs by that measured background load: "idle"
(< 0.25 cores busy besides this process), "~1 core", "~2 cores". A figure is the median of its group;
"vs 1 thread" is the ratio of the medians (s/epoch at N threads / s/epoch at 1 thread). Before each
run without spinners the script waits (up to --quiet-wait seconds) for the machine to go idle.
OMP_WAIT_POLICY and similar variables are read by torch at import: set them in the environment.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # train_speed, beside this file

import torch  # noqa: E402
from train_speed import cpu_model, engine_run, lecture_config, other_load  # noqa: E402

from fmtui.data import load_dataset  # noqa: E402
from fmtui.engine import default_threads  # noqa: E402


@dataclass
class Point:
    """One measured training run."""

    load: int
    batch_size: int
    threads: int
    repeat: int
    seconds: float
    """Mean training s/epoch (evaluation excluded)."""
    other_load: float


@contextmanager
def spinners(n: int) -> Iterator[tuple[int, ...]]:
    """n busy-looping Python processes, each pinned to one core (last core first); stopped on exit."""
    procs = []
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    try:
        for i in range(n):
            proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            procs.append(proc)
            if cores:
                os.sched_setaffinity(proc.pid, {cores[-1 - i % len(cores)]})
        yield tuple(p.pid for p in procs)
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def measure(
    data_dir: Path,
    threads: list[int],
    batch_sizes: list[int],
    loads: list[int],
    repeats: int,
    epochs: int,
    quiet_wait: float = 0.0,
    log: Callable[[str], None] = print,
) -> list[Point]:
    """s/epoch of the lecture config in fmtui's engine for every (load, batch size, threads), alternated."""
    dataset = load_dataset("fashion-mnist", data_dir)
    points = []
    for load in loads:
        with spinners(load) as pids:
            for rep in range(1, repeats + 1):
                order = threads if rep % 2 else threads[::-1]
                for bs in batch_sizes:
                    for t in order:
                        cfg = lecture_config(data_dir, "cpu", bs, epochs, 0, t)
                        if load == 0 and quiet_wait > 0:
                            wait_quiet(quiet_wait, log=log)
                        with other_load(pids) as busy:
                            seconds = engine_run(cfg, rep, dataset).seconds
                        points.append(Point(load, bs, t, rep, seconds, busy["cores"]))
                        log(
                            f"load {load} batch {bs:>5} threads {t} repeat {rep}: {seconds:.3f} s/epoch "
                            f"(other load {busy['cores']:.2f})"
                        )
    return points


def background(p: Point) -> str:
    """The load a point ran under: spinners started plus cores measured busy elsewhere, rounded."""
    cores = p.load + p.other_load
    if cores < 0.25:
        return "idle"
    n = min(max(round(cores), 1), 2)
    return f"~{n} core{'s' * (n > 1)}"


def table(points: list[Point], group: Callable[[Point], str] = background) -> list[str]:
    """Median s/epoch per (background load, batch size, threads); 'vs 1 thread' = ratio of the medians."""
    lines = [
        f"{'background':>10} {'batch':>5} {'threads':>7} {'n':>2} {'s/epoch':>8} {'samples/s':>9} {'vs 1 thread':>11}"
    ]
    cells: dict[tuple, list[float]] = {}
    for p in points:
        cells.setdefault((group(p), p.batch_size, p.threads), []).append(p.seconds)
    order = {"idle": 0, "~1 core": 1, "~2 cores": 2}
    for key in sorted(cells, key=lambda k: (order.get(k[0], 9), k[1], k[2])):
        g, bs, t = key
        med = statistics.median(cells[key])
        one = cells.get((g, bs, 1))
        vs = f"{med / statistics.median(one):.2f}x" if one else "-"
        lines.append(f"{g:>10} {bs:>5} {t:>7} {len(cells[key]):>2} {med:>8.3f} {60000 / med:>9,.0f} {vs:>11}")
    return lines


def wait_quiet(limit: float, threshold: float = 0.25, log: Callable[[str], None] = print) -> float:
    """Wait up to `limit` seconds for a 1-second window in which other processes use < threshold cores."""
    waited = 0.0
    while waited < limit:
        with other_load() as busy:
            time.sleep(1.0)
        if busy["cores"] < threshold:
            return busy["cores"]
        waited += 1.0
    log(f"  (machine still busy after {limit:.0f}s: {busy['cores']:.2f} cores in use elsewhere)")
    return busy["cores"]


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv: list[str] | None = None, log: Callable[[str], None] = print) -> list[Point]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get("FMTUI_DATA_DIR"),
        help="folder with the four Fashion-MNIST .gz files [$FMTUI_DATA_DIR]",
    )
    ap.add_argument("--threads", type=ints, default=[1, 2], help="thread counts [1,2]")
    ap.add_argument("--batch-sizes", type=ints, default=[64, 1024], help="[64,1024]")
    ap.add_argument("--loads", type=ints, default=[0, 1, 2], help="numbers of busy spin loops [0,1,2]")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="before each no-spinner run, wait up to this many seconds for the machine to be idle [30]",
    )
    ap.add_argument("--json", type=Path, help="write the raw points to this JSON file")
    args = ap.parse_args(argv)
    if args.data_dir is None:
        ap.error("--data-dir is required (or set FMTUI_DATA_DIR)")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    omp = {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "GOMP_", "KMP_", "MKL_"))}
    log(
        f"cpu {cpu_model()} ({cores} cores), torch {torch.__version__}; fmtui default_threads() = {default_threads()}"
        f"; environment {omp or 'no OMP_/GOMP_/KMP_/MKL_ variables'}"
    )
    points = measure(
        args.data_dir, args.threads, args.batch_sizes, args.loads, args.repeats, args.epochs, args.quiet_wait, log
    )
    log("")
    for line in table(points):
        log(line)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "cpu": cpu_model(),
                    "cores": cores,
                    "torch": torch.__version__,
                    "env": omp,
                    "points": [asdict(p) for p in points],
                },
                indent=2,
            )
        )
    return points


if __name__ == "__main__":
    main()

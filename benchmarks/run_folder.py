"""What writing the live run folder costs per epoch (checkpoint, model, predictions, mislabeled, metrics line,
summary, live.json, fsyncs), against training the same epochs with no folder at all.

    .venv/bin/python benchmarks/run_folder.py --data-dir DIR [--epochs 8] [--pairs 4] [--json OUT]

For each config, pairs of runs (no folder and a recorded folder, in alternating order) on the real
Fashion-MNIST, CPU, 1 thread. Per epoch: the wall time between two EpochEnd events and the training
thread's CPU time (less sensitive to other load on the machine); with a folder, the training thread's
time inside RunRecorder.handle (what training waits for: the checkpoint copied into bytes) and the writer
thread's wall and CPU time for the epoch's files (the wall time is what a writer without a thread of its
own would add to every epoch).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fmtui import engine  # noqa: E402
from fmtui.config import RunConfig  # noqa: E402
from fmtui.data import load_dataset  # noqa: E402
from fmtui.events import EpochEnd  # noqa: E402
from fmtui.recorder import RunRecorder, RunWriter  # noqa: E402

CONFIGS = {
    "softmax, batch 1024": dict(model="softmax", batch_size=1024),
    "MLP 256, batch 64 (the lecture's)": dict(),
}


def one_run(cfg: RunConfig, ds, folder: Path | None) -> dict[str, list[float]]:
    """Per-epoch figures of one run (the first epoch is left out: it warms up)."""
    out: dict[str, list[float]] = {"wall": [], "cpu": [], "handle": [], "writer_wall": [], "writer_cpu": []}
    real_epoch = RunWriter._write_epoch

    def timed_epoch(self, *args):
        t0, c0 = time.perf_counter(), time.thread_time()
        real_epoch(self, *args)
        out["writer_wall"].append(time.perf_counter() - t0)
        out["writer_cpu"].append(time.thread_time() - c0)

    RunWriter._write_epoch = timed_epoch
    try:
        recorder = RunRecorder(lambda c: folder) if folder else None
        last = last_cpu = None
        in_handle = 0.0
        with recorder or contextlib.nullcontext():
            for ev in engine.train(cfg, dataset=ds, progress_interval=0.1):
                if recorder is not None:
                    t0 = time.perf_counter()
                    recorder.handle(ev)
                    in_handle += time.perf_counter() - t0
                if isinstance(ev, EpochEnd):
                    now, cpu = time.perf_counter(), time.thread_time()
                    if last is not None:
                        out["wall"].append(now - last)
                        out["cpu"].append(cpu - last_cpu)
                        out["handle"].append(in_handle)
                    last, last_cpu, in_handle = now, cpu, 0.0
    finally:
        RunWriter._write_epoch = real_epoch
    out["writer_wall"], out["writer_cpu"] = out["writer_wall"][1:], out["writer_cpu"][1:]
    return out


def median(runs: list[dict], key: str) -> float:
    return statistics.median(x for r in runs for x in r[key])


def measure(cfg: RunConfig, ds, pairs: int) -> dict[str, float]:
    plain, recorded = [], []
    for i in range(pairs):
        for with_folder in (False, True) if i % 2 == 0 else (True, False):
            if not with_folder:
                plain.append(one_run(cfg, ds, None))
                continue
            with tempfile.TemporaryDirectory() as tmp:
                recorded.append(one_run(cfg, ds, Path(tmp) / "run"))
    return {
        "epoch_s_no_folder": median(plain, "wall"),
        "epoch_s_recorded": median(recorded, "wall"),
        "training_cpu_s_no_folder": median(plain, "cpu"),
        "training_cpu_s_recorded": median(recorded, "cpu"),
        "training_thread_ms": 1e3 * median(recorded, "handle"),
        "writer_wall_ms": 1e3 * median(recorded, "writer_wall"),
        "writer_cpu_ms": 1e3 * median(recorded, "writer_cpu"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    ds = load_dataset("fashion-mnist", args.data_dir)
    results = {}
    for name, changes in CONFIGS.items():
        cfg = RunConfig(data_dir=args.data_dir, epochs=args.epochs, threads=1, device="cpu", **changes)
        m = results[name] = measure(cfg, ds, args.pairs)
        print(
            f"{name}: epoch {m['epoch_s_no_folder']:.3f} s without a folder, {m['epoch_s_recorded']:.3f} s recorded; "
            f"training thread CPU {m['training_cpu_s_no_folder']:.3f} s vs {m['training_cpu_s_recorded']:.3f} s; "
            f"in handle {m['training_thread_ms']:.1f} ms; writer thread {m['writer_wall_ms']:.1f} ms "
            f"({m['writer_cpu_ms']:.1f} ms CPU) per epoch",
            flush=True,
        )
    results["loadavg"] = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None
    print("load average:", results["loadavg"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""What writing the live run folder costs per epoch (checkpoint, model, predictions, mislabeled, metrics line,
summary, live.json, fsyncs), against training the same epochs with no folder at all.

    .venv/bin/python benchmarks/run_folder.py --data-dir DIR [--epochs 10] [--pairs 3] [--json OUT]

For each config, pairs of runs (no folder, then a recorded folder) on the real Fashion-MNIST; per epoch:
the wall time between two EpochEnd events, the training thread's time inside RunRecorder.handle (what
training waits for: copying the checkpoint into bytes), and the writer thread's time for the epoch's files
(what a synchronous writer would have added to the epoch).
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


def one_run(cfg: RunConfig, ds, folder: Path | None) -> dict:
    """Per-epoch wall seconds; with a folder, the training thread's and the writer thread's seconds too."""
    handle, jobs = [], []
    real_epoch = RunWriter._write_epoch

    def timed_epoch(self, *args):
        t0 = time.perf_counter()
        real_epoch(self, *args)
        jobs.append(time.perf_counter() - t0)

    RunWriter._write_epoch = timed_epoch
    try:
        recorder = RunRecorder(lambda c: folder) if folder else None
        walls, last, in_handle = [], None, 0.0
        with recorder or contextlib.nullcontext():
            for ev in engine.train(cfg, dataset=ds, progress_interval=0.1):
                if recorder is not None:
                    t0 = time.perf_counter()
                    recorder.handle(ev)
                    in_handle += time.perf_counter() - t0
                if isinstance(ev, EpochEnd):
                    now = time.perf_counter()
                    if last is not None:
                        walls.append(now - last)
                        handle.append(in_handle)
                    last, in_handle = now, 0.0
            if recorder is not None:
                recorder.flush()
    finally:
        RunWriter._write_epoch = real_epoch
    return {"wall": walls, "handle": handle, "writer": jobs[1:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    ds = load_dataset("fashion-mnist", args.data_dir)
    results = {}
    for name, changes in CONFIGS.items():
        cfg = RunConfig(data_dir=args.data_dir, epochs=args.epochs, threads=1, device="cpu", **changes)
        plain, recorded = [], []
        for _ in range(args.pairs):
            plain.append(one_run(cfg, ds, None))
            with tempfile.TemporaryDirectory() as tmp:
                recorded.append(one_run(cfg, ds, Path(tmp) / "run"))
        med = {
            "epoch_s_no_folder": statistics.median(w for r in plain for w in r["wall"]),
            "epoch_s_recorded": statistics.median(w for r in recorded for w in r["wall"]),
            "training_thread_ms": 1e3 * statistics.median(h for r in recorded for h in r["handle"]),
            "writer_thread_ms": 1e3 * statistics.median(j for r in recorded for j in r["writer"]),
        }
        med["overhead_pct"] = 100 * (med["epoch_s_recorded"] / med["epoch_s_no_folder"] - 1)
        results[name] = med
        print(
            f"{name}: epoch {med['epoch_s_no_folder']:.3f} s without a folder, {med['epoch_s_recorded']:.3f} s recorded"
            f" ({med['overhead_pct']:+.1f}%); training thread {med['training_thread_ms']:.1f} ms per epoch, "
            f"writer thread {med['writer_thread_ms']:.1f} ms per epoch",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Stacked or one after another: the lecture's 8-run sweep both ways, per model and batch size, on one device.

For every (model, batch size) point the lecture's experiment (4 normalizations x lr 0.01 and 1e-5, with that
model and batch size) is trained by `fmtui.sweep.run_sweep` into a temporary folder, once stacked and once
with each run alone (`--sequential`), the order alternating between repeats. The time is the sweep's whole
wall time, as a user waits for it: set-up, training, evaluation and the run folders. The ratio of a repeat is
stacked / sequential (below 1: stacking is faster); a point's ratio is the median over its repeats. Each
point also says what `fmtui.stacking.pays` chooses there, and whether that was the faster mode.

    .venv/bin/python benchmarks/stacking.py --data-dir DIR [--device cpu] [--models softmax,mlp]
        [--batch-sizes 32,64,128,256,512,1024] [--epochs 1] [--repeats 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere: import the fmtui of this checkout
    sys.path.insert(0, str(ROOT))

from fmtui import stacking  # noqa: E402
from fmtui.config import RunConfig  # noqa: E402
from fmtui.engine import resolve_device  # noqa: E402
from fmtui.sweep import lecture_experiment, run_sweep  # noqa: E402


def sweep_seconds(configs: list[RunConfig], stacked: bool) -> float:
    """Wall seconds of the whole sweep, every event consumed, into a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="fmtui-stacking-") as out:
        start = time.perf_counter()
        for _ in run_sweep(configs, Path(out), should_stop=lambda: False, stacked=stacked):
            pass
        return time.perf_counter() - start


def measure_point(configs: list[RunConfig], repeats: int, log: Callable[[str], None]) -> dict:
    """Both modes `repeats` times, alternating which goes first; the ratios per repeat and their median."""
    rows = []
    for rep in range(repeats):
        order = (True, False) if rep % 2 == 0 else (False, True)
        seconds = {mode: sweep_seconds(configs, mode) for mode in order}
        rows.append({"stacked": seconds[True], "sequential": seconds[False], "ratio": seconds[True] / seconds[False]})
        log(f"    repeat {rep + 1}: stacked {seconds[True]:.2f} s, sequential {seconds[False]:.2f} s")
    return {"repeats": rows, "ratio": statistics.median(r["ratio"] for r in rows)}


def main(argv: list[str] | None = None, log: Callable[[str], None] = print) -> dict:
    args = parse_args(argv)
    device = resolve_device(args.device)
    base = RunConfig(data_dir=str(args.data_dir), device=args.device, epochs=args.epochs)
    if args.threads:
        base = base.replace(threads=args.threads)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    result: dict = {"device": str(device), "python": platform.python_version(), "load_before": load, "points": []}
    sweep_seconds(lecture_experiment(base.replace(model="softmax", batch_size=1024)), True)  # warm: data, imports
    for model in args.models.split(","):
        for batch in [int(b) for b in args.batch_sizes.split(",")]:
            configs = lecture_experiment(base).copy()
            configs = [c.replace(model=model, batch_size=batch) for c in configs]
            log(f"{model}, batch {batch}, {len(configs)} runs, {args.epochs} epoch(s):")
            point = measure_point(configs, args.repeats, log)
            rule = stacking.pays(device.type, batch, model, len(configs))
            faster = point["ratio"] < 1
            point |= {"model": model, "batch_size": batch, "rule_stacks": rule, "rule_right": rule == faster}
            result["points"].append(point)
            log(f"  stacked/sequential {point['ratio']:.2f}; the rule {'stacks' if rule else 'runs them one by one'}")
    result["load_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    log(table(result["points"]))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


def table(points: list[dict]) -> str:
    lines = [
        "| model | batch | stacked s | sequential s | stacked/sequential | rule | rule right |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in points:
        med = {k: statistics.median(r[k] for r in p["repeats"]) for k in ("stacked", "sequential")}
        rule = "stacked" if p["rule_stacks"] else "sequential"
        lines.append(
            f"| {p['model']} | {p['batch_size']} | {med['stacked']:.2f} | {med['sequential']:.2f} | "
            f"{p['ratio']:.2f} | {rule} | {'yes' if p['rule_right'] else 'no'} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=os.environ.get("FMTUI_DATA_DIR"), required=False)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", default="softmax,mlp")
    ap.add_argument("--batch-sizes", default="32,64,128,256,512,1024")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads [fmtui's default]")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.data_dir is None:
        ap.error("--data-dir (or $FMTUI_DATA_DIR) is needed")
    return args


if __name__ == "__main__":
    main()

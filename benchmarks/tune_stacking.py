"""Stacked trials or one after another, on this machine: what `fmtui tune`'s rule (fmtui.tune.trial.stacking_pays)
decides from. K MLP trials that differ in their learning rate, 1 epoch of the real Fashion-MNIST each, trained one
after another (fmtui.engine.train) and stacked (fmtui.batched.train_batched), in alternating order per repeat.

    .venv/bin/python benchmarks/tune_stacking.py --data-dir DIR [--device cpu] [--batch-sizes 64,256]
        [--trials 4] [--repeats 3] [--threads 1]

Prints, per batch size and repeat, the seconds of one run, of K one after another and of K stacked, and the ratio
stacked / one after another (below 1: stacking pays). Ratios come from one process, so a loaded machine slows
both sides alike; say the load when you report them.
"""

from __future__ import annotations

import argparse
import time

from fmtui import engine
from fmtui.batched import train_batched
from fmtui.config import RunConfig
from fmtui.data import load_dataset

LRS = (0.01, 0.03, 0.1, 0.3, 0.02, 0.05, 0.2, 0.5)


def seconds(run) -> float:
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def compare(configs: list[RunConfig], ds, repeats: int) -> None:
    """One run, the configs one after another and stacked, `repeats` times; a line each."""
    sides = {
        "sequential": lambda: [list(engine.train(c, dataset=ds)) for c in configs],
        "stacked": lambda: list(train_batched(configs, dataset=ds)),
    }
    for repeat in range(repeats):
        one = seconds(lambda: list(engine.train(configs[0], dataset=ds)))
        order = list(sides) if repeat % 2 == 0 else list(reversed(sides))
        took = {name: seconds(sides[name]) for name in order}
        seq, stk, k = took["sequential"], took["stacked"], len(configs)
        print(
            f"batch {configs[0].batch_size} repeat {repeat + 1}: one run {one:.2f} s; {k} one after another "
            f"{seq:.2f} s ({seq / one:.2f}x one); stacked {stk:.2f} s ({stk / one:.2f}x one); stacked / sequential "
            f"{stk / seq:.2f}",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-sizes", default="64,256")
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    ds = load_dataset("fashion-mnist", args.data_dir)
    for batch in map(int, args.batch_sizes.split(",")):
        configs = [
            RunConfig(epochs=1, batch_size=batch, lr=lr, val_split=0.1, device=args.device, threads=args.threads)
            for lr in LRS[: args.trials]
        ]
        compare(configs, ds, args.repeats)


if __name__ == "__main__":
    main()

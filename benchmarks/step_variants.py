"""Candidate speed-ups of the engine's training step, measured as whole epochs against a copy of today's loop.

    .venv/bin/python benchmarks/step_variants.py --data-dir DIR [--batch-sizes 64,1024] [--repeats 5]
        [--threads 1] [--variants engine,index_select,...]

Each variant trains one epoch of the lecture config from the same initial weights over the same
permutation; variants run round-robin (order rotated every repeat) and the figure is the median of the
per-repeat ratios to `engine` (the loop of fmtui.engine.run_prepared, reproduced here without its
progress events). On a shared machine the ratio is taken on CPU seconds of the training thread
(`time.thread_time`; with 1 torch thread all the work runs on it), which time slices lost to other
processes do not inflate; wall seconds are shown beside it. "same result" says whether the final
weights are bitwise equal to `engine`'s, or else the largest absolute difference (a different but
equally valid rounding order).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # train_speed, beside this file

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from train_speed import cpu_model, lecture_config  # noqa: E402

from fmtui.data import normalize  # noqa: E402
from fmtui.engine import Prepared, prepare  # noqa: E402


@dataclass(frozen=True)
class Variant:
    """One way of writing the step; `engine` is today's."""

    gather: str = "index"
    """index: x[idx]; index_select: x.index_select(0, idx); prenorm: normalized float32 copy, index_select."""
    norm: str = "engine"
    """engine: fmtui.data.normalize (tensor shift/scale built per batch); scalar: x.float().sub_(s).div_(s)."""
    optim: str = "default"
    """default, foreach or fused SGD."""
    first_bad: bool = True
    """Track the first non-finite batch loss per batch (torch.where + isfinite) as the engine does."""


VARIANTS = {
    "engine": Variant(),
    "index_select": Variant(gather="index_select"),
    "scalar_norm": Variant(norm="scalar"),
    "prenorm": Variant(gather="prenorm"),
    "foreach": Variant(optim="foreach"),
    "fused": Variant(optim="fused"),
    "no_first_bad": Variant(first_bad=False),
    "index_select+no_first_bad": Variant(gather="index_select", first_bad=False),
    "all_bitwise": Variant(gather="index_select", optim="fused", first_bad=False),
}


def make_optimizer(p: Prepared, kind: str) -> torch.optim.Optimizer:
    kw = {} if kind == "default" else {kind: True}
    return torch.optim.SGD(p.model.parameters(), lr=p.config.lr, **kw)


def batch_fn(p: Prepared, v: Variant) -> Callable[[torch.Tensor], torch.Tensor]:
    """idx -> normalized float batch, the way variant v gathers and normalizes."""
    x, stats = p.splits.x_train, p.stats
    if v.gather == "prenorm":
        xn = normalize(x, stats)
        return lambda idx: xn.index_select(0, idx)
    gather = (lambda idx: x[idx]) if v.gather == "index" else (lambda idx: x.index_select(0, idx))
    if v.norm == "engine":
        return lambda idx: normalize(gather(idx), stats)
    shift, scale = stats.shift[0], stats.scale[0]
    return lambda idx: gather(idx).float().sub_(shift).div_(scale)


def epoch(p: Prepared, v: Variant, perm: torch.Tensor, state: dict) -> tuple[float, float, dict, float]:
    """One epoch of variant v from `state`; returns (wall s, thread CPU s, final state, mean loss)."""
    model = p.model
    model.load_state_dict(state)
    opt, get_x, y = make_optimizer(p, v.optim), batch_fn(p, v), p.splits.y_train
    gather_y = (lambda idx: y[idx]) if v.gather == "index" else (lambda idx: y.index_select(0, idx))
    should_stop = lambda: False  # noqa: E731  (the engine polls one per batch)
    model.train()
    loss_sum = torch.zeros(())
    correct = torch.zeros((), dtype=torch.int64)
    first_bad = torch.full((), -1, dtype=torch.int64)
    t0, c0 = time.perf_counter(), time.thread_time()
    for b, idx in enumerate(perm.split(p.config.batch_size), 1):
        if should_stop():
            break
        xb, yb = get_x(idx), gather_y(idx)
        out = model(xb)
        loss = F.cross_entropy(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            loss_sum += loss.detach()
            correct += (out.argmax(1) == yb).sum()
            if v.first_bad:
                first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss.detach()), b, first_bad)
        time.perf_counter()
    seconds, cpu = time.perf_counter() - t0, time.thread_time() - c0
    return seconds, cpu, copy.deepcopy(model.state_dict()), loss_sum.item() / b


def difference(a: dict, b: dict) -> str:
    worst = max((x - y).abs().max().item() for x, y in zip(a.values(), b.values()))
    return "bitwise" if worst == 0 else f"max |dw| {worst:.1e}"


def measure(
    p: Prepared, names: list[str], repeats: int, log: Callable[[str], None] = print
) -> dict[str, list[tuple[float, float]]]:
    """Round-robin epochs of the named variants; returns (wall s, CPU s) per variant and repeat."""
    state = copy.deepcopy(p.model.state_dict())
    perm = torch.randperm(len(p.splits.y_train), generator=torch.Generator().manual_seed(0))
    times: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    finals: dict[str, tuple[dict, float]] = {}
    for rep in range(repeats):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            seconds, cpu, final, loss = epoch(p, VARIANTS[name], perm, state)
            times[name].append((seconds, cpu))
            finals[name] = (final, loss)
    ref = finals.get("engine")
    for name in names:
        same = difference(ref[0], finals[name][0]) if ref else "-"
        ratios = [e[1] / t[1] for e, t in zip(times.get("engine", times[name]), times[name])]
        wall, cpu = (statistics.median(t[i] for t in times[name]) for i in (0, 1))
        log(
            f"{'batch ' + str(p.config.batch_size):<10} {name:<26} {wall:8.3f} {cpu:8.3f} "
            f"{statistics.median(ratios):8.2f}x  loss {finals[name][1]:.5f}  {same}"
        )
    return times


def main(argv: list[str] | None = None, log: Callable[[str], None] = print) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=os.environ.get("FMTUI_DATA_DIR"))
    ap.add_argument("--batch-sizes", default="64,1024")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args(argv)
    if args.data_dir is None:
        ap.error("--data-dir is required (or set FMTUI_DATA_DIR)")
    names = [n for n in args.variants.split(",") if n]
    log(
        f"cpu {cpu_model()}, torch {torch.__version__}, {args.threads} thread(s), load average {os.getloadavg()[0]:.2f}"
    )
    log(
        f"{'config':<10} {'variant':<26} {'wall s':>8} {'CPU s':>8} {'speed-up':>9}  "
        "final mean train loss, same result as engine (speed-up on CPU s)"
    )
    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        p = prepare(lecture_config(args.data_dir, "cpu", bs, 1, 0, args.threads))
        measure(p, names, args.repeats, log)
    log(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

"""Find what grows in the dashboard: run the real app headless and look inside it between epochs.

    python scripts/memprobe.py --minutes 3 --every 20                 # RSS, epochs, objects, queues
    python scripts/memprobe.py --tracemalloc                          # + top allocation sites that grew
    python scripts/memprobe.py --disable history,epoch-log            # measure again without suspects
    python scripts/memprobe.py --fake 0.02 --pane 4                   # no training: synthetic epochs, fast
    python scripts/memprobe.py --engine thread                        # no app: the engine in a thread

The app is `make_app(cfg, autostart=True)` under `run_test` (Textual's headless driver: the same
widgets, workers and messages as in a terminal, only the frames are not written anywhere), training
fast softmax epochs by default. Every `--every` seconds it prints one JSON line: RSS, finished epochs,
MB per epoch since the previous line, live torch tensors (count, MiB), engine objects alive
(EpochEnd, Results), the biggest gc type-count deltas, the messages waiting in the app's and the
widgets' queues, the Train pane's chart and log sizes and, with --tracemalloc, the allocation sites
that grew most since the last line. The "malloc" numbers are glibc's (mallinfo2): memory in use, and
memory freed but still held in its arenas; --trim returns the latter to the system (malloc_trim) and
says how much RSS that freed: RSS growth that --trim takes back is fragmentation, not live objects.

--disable switches suspects off by monkeypatching (this script only; the package is untouched):
    history     the engine's EpochEnd.results of past epochs (each epoch drops the previous one's;
                the engine itself does so since the fix, so this matters for older code only)
    results     the app's handling of an epoch's Results (Errors pane, pending results)
    epoch-log   the Train pane's RichLog lines
    charts      the epoch charts and the batch-loss chart (no points added)
    progress    the worker's TrainingProgress messages (BatchProgress events not posted)
    runwriter   the RunWriter's files and rows
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import gc
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SUSPECTS = ("history", "results", "epoch-log", "charts", "progress", "runwriter")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]  # fmt: skip


def malloc_info() -> dict:
    """glibc's view, MiB: in use by malloc (small + mmapped), free but kept in its arenas."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = MallInfo2
        m = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    mib = 2**20
    return {
        "in_use_mb": round((m.uordblks + m.hblkhd) / mib, 1),
        "free_held_mb": round(m.fordblks / mib, 1),
        "mmapped_mb": round(m.hblkhd / mib, 1),
    }


def trim() -> float:
    """malloc_trim(0): give free arena memory back to the system; returns the RSS it freed (MiB)."""
    before = rss_mb()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return round(before - rss_mb(), 1)


def type_counts() -> collections.Counter:
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


def tensors() -> tuple[int, float]:
    """Live torch tensors reachable by gc (count, MiB of their storages, each storage once)."""
    import torch

    seen, total, n = set(), 0, 0
    for o in gc.get_objects():
        try:
            if not isinstance(o, torch.Tensor):
                continue
            n += 1
            st = o.untyped_storage()
            if st.data_ptr() not in seen:
                seen.add(st.data_ptr())
                total += st.nbytes()
        except Exception:  # noqa: S112 - a tensor subclass or a half-built object: not ours to count
            continue
    return n, total / 2**20


def disable(names: set[str]) -> None:
    """Switch suspects off (see the module docstring)."""
    from fmtui import app as app_mod
    from fmtui import engine, runs, workers
    from fmtui.widgets import charts

    if "history" in names:
        original = engine._end_epoch
        previous: list = []

        def end_epoch(*args, **kwargs):
            ev = original(*args, **kwargs)
            if previous:
                previous[0].results = None  # what the engine fix does: only the last epoch keeps its Results
            previous[:] = [ev]
            return ev

        engine._end_epoch = end_epoch
    if "results" in names:
        app_mod.FmtuiApp._show_results = lambda self, results=None: None
    if "epoch-log" in names:
        from textual.widgets import RichLog

        RichLog.write = lambda self, *a, **k: self
    if "charts" in names:
        charts.EpochChart.add = lambda self, *a, **k: None
        charts.BatchLossChart.add = lambda self, *a, **k: None
    if "progress" in names:
        original_run = workers.run_training

        def run_training(cfg, runs_dir, post, should_stop):
            from fmtui.messages import TrainingProgress

            def filtered(message):
                if not isinstance(message, TrainingProgress):
                    post(message)

            original_run(cfg, runs_dir, filtered, should_stop)

        app_mod.FmtuiApp.trainer = staticmethod(run_training)
    if "runwriter" in names:
        runs.RunWriter.handle = lambda self, event: None


def queues(app) -> dict:
    """Messages waiting in the app's queue and in the widgets' queues (the biggest few)."""
    sizes = {"app": app._message_queue.qsize()}
    for node in app.screen.walk_children(with_self=True):
        q = getattr(node, "_message_queue", None)
        if q is not None and q.qsize():
            sizes[f"{type(node).__name__}#{node.id}"] = q.qsize()
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:5])


def widget_sizes(app) -> dict:
    from textual.widgets import RichLog

    from fmtui.widgets.charts import BatchLossChart, EpochChart

    out = {}
    for chart in app.query(EpochChart):
        out[f"{chart.id}_points"] = sum(len(v) for v in chart.series.values())
    batch = app.query_one(BatchLossChart)
    out["batch_points"] = len(batch.series) if hasattr(batch, "series") else len(batch.xs)
    log = app.query_one(RichLog)
    out["log_lines"] = len(log.lines)
    out["notifications"] = len(app._notifications)
    out["pane"] = app.query_one("TabbedContent").active
    return out


def engine_objects() -> dict:
    from fmtui.engine import EpochEnd, Results

    counts = collections.Counter()
    for o in gc.get_objects():
        if isinstance(o, EpochEnd):
            counts["EpochEnd"] += 1
            counts["EpochEnd_with_results"] += o.results is not None
        elif isinstance(o, Results):
            counts["Results"] += 1
    return dict(counts)


def fake_trainer(epoch_s: float, keep_results: bool):
    """A stand-in for run_training that posts a synthetic run without training: Started, 4 progress
    events and one EpochEnd with fresh (10000, 10) Results per epoch, one epoch every epoch_s seconds,
    so the UI's own growth shows after thousands of epochs. keep_results: keep every epoch's Results
    (what the engine's history did)."""

    def run(cfg, runs_dir, post, should_stop) -> None:
        import torch

        from fmtui.data import NormStats
        from fmtui.engine import BatchProgress, EpochEnd, Results, Started
        from fmtui.messages import EpochFinished, TrainingProgress, TrainingStarted

        gen = torch.Generator().manual_seed(0)
        labels = torch.randint(0, 10, (10000,), generator=gen)
        images = torch.randint(0, 256, (10000, 1, 28, 28), dtype=torch.uint8, generator=gen)
        classes = [f"class {i}" for i in range(10)]
        norm = NormStats("zscore", (72.9,), (90.0,))
        post(TrainingStarted(Started(cfg, "fake", classes, "cpu", "fake", 7850, 60000, 0, 10000, 59, norm, 1),
                             Path(runs_dir) / "fake", images, classes))  # fmt: skip
        history = []
        for epoch in range(1, cfg.epochs + 1):
            for b in range(1, 5):
                if should_stop():
                    return
                loss = 1 / (epoch + b / 4)
                post(TrainingProgress(BatchProgress(epoch, cfg.epochs, b * 15, 59, loss, 80.0, 2e5, epoch, 9.0,
                                                    epoch * 59)))  # fmt: skip
                time.sleep(epoch_s / 4)
            probs = torch.rand(10000, 10, generator=gen).softmax(1)
            results = Results.from_probs(probs, labels, 0.4)
            end = EpochEnd(epoch, cfg.epochs, 0.4, 85.0, 0.45, results.accuracy, epoch_s, 0.01, 2e5, 0.01,
                           results=results)  # fmt: skip
            history.append(end)
            if not keep_results and len(history) > 1:
                history[-2].results = None
            FAKE_EPOCHS[0] = epoch
            post(EpochFinished(end))

    return run


FAKE_EPOCHS = [0]


async def probe(args: argparse.Namespace) -> None:
    from fmtui.app import make_app
    from fmtui.config import RunConfig

    cfg = RunConfig(model=args.model, norm="zscore", batch_size=args.batch_size, epochs=100000, data_dir=args.data_dir)
    app = make_app(cfg, runs_dir=Path(args.runs_dir), autostart=True)
    if args.fake:
        app.trainer = staticmethod(fake_trainer(args.fake, "history" not in args.disable))
    end = time.monotonic() + 60 * args.minutes
    last_counts = type_counts()
    last_snap = None
    last_rss, last_epoch = rss_mb(), 0
    t0 = time.monotonic()
    async with app.run_test(size=(args.width, args.height)) as pilot:
        if args.pane:
            while not app.training:  # autostart switches to the Train pane: switch after it
                await pilot.pause(0.1)
            await pilot.pause(1)
            await pilot.press(args.pane)
        while time.monotonic() < end:
            await pilot.pause(args.every)
            gc.collect()
            epoch = FAKE_EPOCHS[0] if args.fake else _epochs(Path(args.runs_dir))
            rss = rss_mb()
            counts = type_counts()
            delta = {k: counts[k] - last_counts.get(k, 0) for k in counts}
            grown = dict(sorted(((k, v) for k, v in delta.items() if v > 0), key=lambda kv: -kv[1])[:8])
            n_t, mb_t = tensors()
            line = {
                "t_s": round(time.monotonic() - t0),
                "rss_mb": round(rss, 1),
                "epoch": epoch,
                "mb_per_epoch": round((rss - last_rss) / max(epoch - last_epoch, 1), 3),
                "malloc": malloc_info(),
                "trimmed_mb": trim() if args.trim else None,
                "tensors": n_t,
                "tensor_mb": round(mb_t, 1),
                "engine": engine_objects(),
                "gc_grown": grown,
                "queues": queues(app),
                "widgets": widget_sizes(app),
            }
            if args.tracemalloc and last_snap is None:  # traced from the first probe on: training is running
                tracemalloc.start(args.frames)
                last_snap = tracemalloc.take_snapshot()
            elif last_snap is not None:
                snap = tracemalloc.take_snapshot()
                stats = snap.compare_to(last_snap, "traceback" if args.frames > 1 else "lineno")[:8]
                line["tracemalloc"] = [
                    f"{s.size_diff / 2**20:+.3f} MiB {s.count_diff:+d} blocks "
                    + " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in s.traceback)
                    for s in stats
                ]
                last_snap = snap
            print(json.dumps(line), flush=True)
            last_counts, last_rss, last_epoch = counts, rss, epoch
        app.exit()


def engine_only(args: argparse.Namespace) -> None:
    """No app: iterate the engine in the main thread or in one worker thread (as the dashboard does),
    keeping every event as the headless loop does, and print RSS and malloc's view every --every s."""
    import threading

    from fmtui.config import RunConfig
    from fmtui.engine import train

    cfg = RunConfig(model=args.model, norm="zscore", batch_size=args.batch_size, epochs=100000, data_dir=args.data_dir)
    stop = threading.Event()
    epochs = [0]

    def loop() -> None:
        for event in train(cfg, should_stop=stop.is_set, progress_interval=0.5):
            if type(event).__name__ == "EpochEnd":
                epochs[0] = event.epoch

    worker = threading.Thread(target=loop, daemon=True)
    if args.engine == "thread":
        worker.start()
    else:  # the engine in the main thread, the probe in a thread
        worker = threading.Thread(target=lambda: None)
    t0, end = time.monotonic(), time.monotonic() + 60 * args.minutes
    last_rss, last_epoch = rss_mb(), 0

    def report() -> None:
        nonlocal last_rss, last_epoch
        rss, epoch = rss_mb(), epochs[0]
        line = {"t_s": round(time.monotonic() - t0), "rss_mb": round(rss, 1), "epoch": epoch,
                "mb_per_epoch": round((rss - last_rss) / max(epoch - last_epoch, 1), 3), "malloc": malloc_info()}  # fmt: skip
        print(json.dumps(line), flush=True)
        last_rss, last_epoch = rss, epoch

    if args.engine == "thread":
        while time.monotonic() < end:
            time.sleep(args.every)
            report()
        stop.set()
        return

    def sampler() -> None:
        while time.monotonic() < end:
            time.sleep(args.every)
            report()
        stop.set()

    threading.Thread(target=sampler, daemon=True).start()
    loop()


def _epochs(runs_dir: Path) -> int:
    files = list(runs_dir.glob("*/metrics.jsonl"))
    return max((f.read_bytes().count(b"\n") for f in files), default=0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--every", type=float, default=20.0, help="seconds between probes [20]")
    p.add_argument("--model", default="softmax")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--width", type=int, default=120)
    p.add_argument("--height", type=int, default=40)
    p.add_argument("--pane", default="", help="a key to press first, e.g. 4 to watch the Errors pane")
    p.add_argument("--tracemalloc", action="store_true", help="trace allocations from the first probe on (slow)")
    p.add_argument("--frames", type=int, default=1, help="--tracemalloc: frames per traceback [1]")
    p.add_argument("--fake", type=float, default=0, help="no training: a synthetic epoch every FAKE seconds")
    p.add_argument("--trim", action="store_true", help="malloc_trim(0) at each probe, report what it freed")
    p.add_argument("--disable", default="", help=f"comma-separated suspects: {', '.join(SUSPECTS)}")
    p.add_argument("--engine", choices=("main", "thread"), help="no app: the engine alone, in this thread")
    p.add_argument("--data-dir", default=os.environ.get("FMTUI_DATA_DIR"))
    args = p.parse_args()
    names = {n for n in args.disable.split(",") if n}
    if names - set(SUSPECTS):
        p.error(f"--disable: unknown {sorted(names - set(SUSPECTS))}; choose from {', '.join(SUSPECTS)}")
    disable(names)
    if args.engine:
        engine_only(args)
        return
    with tempfile.TemporaryDirectory(prefix="fmtui-probe-") as runs_dir:
        args.runs_dir = runs_dir
        asyncio.run(probe(args))


if __name__ == "__main__":
    main()

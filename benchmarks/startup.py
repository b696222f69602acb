"""Start-up: how long fmtui makes a user wait for its first answer, as ratios to `python -c "import torch"`
measured in the same run (a loaded machine slows both alike; absolute seconds would say more about the load).

Every command is a fresh process; each round runs them all, in a rotated order, and the figures are medians
over the rounds (per-round differences and ratios, so that a burst of load hits one round's pair at most):

    torch         python -c "import torch"                       the reference: until it exits
    torch+dynamo  python -c "import torch, torch._dynamo"        what any torch.optim step needs (a floor)
    python        python -c pass                                 the interpreter alone
    help          fmtui --help                                   until it exits
    train-cold    fmtui --no-ui train --epochs 1 --model softmax --batch-size 1024, with an empty cache of
                  decoded data: until its first epoch line ("Epoch [1/1] ...")
    train-warm    the same with the cache filled by an earlier run (the usual case: every start but the first)
    dashboard     fmtui in a pseudo-terminal (120x40) until its first frame is drawn (--dashboard)

fmtui's modules are byte-compiled first (`compileall`, as an install does; where PYTHONDONTWRITEBYTECODE
is set, every start would compile them again), and the commands run without PYTHONDONTWRITEBYTECODE.
Each process's CPU time (user + system, from wait4) is kept too: it varies far less with the machine's load
than wall time does, and tells the work saved apart from the work overlapped (for train, the whole
process's, training and exit included; for the dashboard, up to when it was stopped after its first frame).
`--baseline DIR` runs help, train-cold and dashboard once more with the fmtui of another checkout (its
folder first on PYTHONPATH; it has no cache of decoded data, so its train is the same cold or warm), for
before/after figures from one sitting. `--rerun` adds an in-process measurement of a second run of the same
shape (the dashboard's second Start): seconds from `engine.train` to its Started event and to its first
progress, for a first and a second run of the lecture's MLP with zscore.

    nice -n 10 .venv/bin/python benchmarks/startup.py --data-dir DIR [--rounds 5] [--dashboard] [--rerun]
        [--baseline OTHER_CHECKOUT] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pty
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["--no-ui", "train", "--epochs", "1", "--model", "softmax", "--batch-size", "1024"]
FIRST_FRAME_BYTES = 4000
"""The dashboard's first frame at 120x40 is well over this many bytes of output after it enters the
alternate screen; the loading of Python and fmtui writes nothing."""


def timed_exit(argv: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a process run to its end."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    code, cpu = _reap(proc)
    if code != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {code}")
    return time.perf_counter() - start, cpu


def timed_line(argv: list[str], env: dict, prefix: str) -> tuple[float, float]:
    """(seconds until the process prints a line starting with prefix, CPU seconds of the whole process)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seen = None
    for line in proc.stdout:
        if seen is None and line.startswith(prefix):
            seen = time.perf_counter() - start
    code, cpu = _reap(proc)
    if code != 0 or seen is None:
        raise RuntimeError(f"{' '.join(argv)} exited {code} without a line starting {prefix!r}")
    return seen, cpu


def _reap(proc: subprocess.Popen) -> tuple[int, float]:
    """Wait for the process; its exit code and the CPU time (user + system) it used, from wait4."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def timed_first_frame(argv: list[str], env: dict, limit: float = 120.0) -> tuple[float, float]:
    """(Seconds until a program in a 120x40 pseudo-terminal has drawn its first frame, CPU seconds it had
    used when it was stopped, right after)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the dashboard in the terminal
        os.environ.update(env | {"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"})
        os.execvp(argv[0], argv)
    start = time.perf_counter()
    drawn, entered, seen = 0, False, None
    try:
        while seen is None and time.perf_counter() - start < limit:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child ended
                break
            if not entered and b"\x1b[?1049h" in chunk:
                entered, chunk = True, chunk.split(b"\x1b[?1049h", 1)[1]
            drawn += len(chunk) if entered else 0
            if drawn >= FIRST_FRAME_BYTES:
                seen = time.perf_counter() - start
    finally:
        os.kill(pid, signal.SIGKILL)
        _, _, usage = os.wait4(pid, 0)
        os.close(fd)
    if seen is None:
        raise RuntimeError(f"{' '.join(argv)}: no first frame within {limit:.0f} s")
    return seen, usage.ru_utime + usage.ru_stime


def commands(args: argparse.Namespace, tmp: Path) -> dict[str, Callable[[], tuple[float, float]]]:
    """name -> a function that runs the command once and returns its (wall, CPU) seconds."""
    py = sys.executable
    for tree in [ROOT, args.baseline] if args.baseline else [ROOT]:
        subprocess.run([py, "-m", "compileall", "-q", str(Path(tree) / "fmtui")], check=True)
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    base = {**environ, "FMTUI_DATA_DIR": str(args.data_dir), "FMTUI_NO_DOWNLOAD": "1", "FMTUI_RUNS_DIR": str(tmp)}
    ours = base | {"PYTHONPATH": str(ROOT), "FMTUI_CACHE_DIR": str(tmp / "cache-warm")}
    runs = iter(range(1_000_000))

    def out() -> list[str]:
        return ["--out", str(tmp / f"run-{next(runs)}")]

    def cold() -> tuple[float, float]:
        shutil.rmtree(tmp / "cache-cold", ignore_errors=True)
        return timed_line(
            [py, "-m", "fmtui", *TRAIN, *out()], ours | {"FMTUI_CACHE_DIR": str(tmp / "cache-cold")}, "Epoch ["
        )

    table: dict[str, Callable[[], tuple[float, float]]] = {
        "torch": lambda: timed_exit([py, "-c", "import torch"], base),
        "torch+dynamo": lambda: timed_exit([py, "-c", "import torch, torch._dynamo"], base),
        "python": lambda: timed_exit([py, "-c", "pass"], base),
        "help": lambda: timed_exit([py, "-m", "fmtui", "--help"], ours),
        "train-cold": cold,
        "train-warm": lambda: timed_line([py, "-m", "fmtui", *TRAIN, *out()], ours, "Epoch ["),
    }
    if args.dashboard:
        table["dashboard"] = lambda: timed_first_frame([py, "-m", "fmtui"], ours)
    if args.baseline:
        theirs = base | {"PYTHONPATH": str(args.baseline)}
        table["help (baseline)"] = lambda: timed_exit([py, "-m", "fmtui", "--help"], theirs)
        table["train (baseline)"] = lambda: timed_line([py, "-m", "fmtui", *TRAIN, *out()], theirs, "Epoch [")
        if args.dashboard:
            table["dashboard (baseline)"] = lambda: timed_first_frame([py, "-m", "fmtui"], theirs)
    return table


def rerun_seconds(data_dir: Path) -> dict:
    """A first and a second run of one shape in this process: seconds to Started and to the first progress."""
    sys.path.insert(0, str(ROOT))
    from fmtui import engine
    from fmtui.config import RunConfig
    from fmtui.data import load_dataset
    from fmtui.events import BatchProgress, Started
    from fmtui.workers import PROGRESS_INTERVAL  # the dashboard's: its first progress comes after one batch

    cfg = RunConfig(norm="zscore", epochs=1, data_dir=str(data_dir), device="cpu")
    out = {}
    for which in ("first", "second"):
        start = time.perf_counter()
        ds = load_dataset(cfg.dataset, cfg.data_dir)  # as the dashboard's worker does at every Start
        for ev in engine.train(cfg, dataset=ds, progress_interval=PROGRESS_INTERVAL):
            if isinstance(ev, Started):
                out[f"{which}_started_s"] = time.perf_counter() - start
            if isinstance(ev, BatchProgress):
                out[f"{which}_progress_s"] = time.perf_counter() - start
                out[f"{which}_batch_s"] = out[f"{which}_progress_s"] - out[f"{which}_started_s"]
                break
    return out


def main(argv: list[str] | None = None, log: Callable[[str], None] = print) -> dict:
    args = parse_args(argv)
    result: dict = {"python": platform.python_version(), "rounds": [], "cpu_rounds": []}
    result["load_before"] = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="fmtui-startup-") as tmp:
        table = commands(args, Path(tmp))
        table["train-warm"]()  # fills the warm cache (and the page cache): not counted
        names = list(table)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            both = {name: table[name]() for name in order}
            result["rounds"].append({name: both[name][0] for name in names})
            result["cpu_rounds"].append({name: both[name][1] for name in names})
            log(f"round {r + 1}: " + ", ".join(f"{n} {both[n][0]:.2f} s ({both[n][1]:.2f} CPU)" for n in names))
    result["load_after"] = os.getloadavg()
    result["summary"] = summarize(result["rounds"])
    result["cpu_summary"] = summarize(result["cpu_rounds"])
    if args.rerun:
        result["rerun"] = rerun_seconds(args.data_dir)
    log(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


def summarize(rounds: list[dict]) -> dict:
    """Per command: median seconds, median ratio to import torch and median seconds beyond it (per round)."""
    out = {}
    for name in rounds[0]:
        out[name] = {
            "median_s": statistics.median(r[name] for r in rounds),
            "over_torch": statistics.median(r[name] / r["torch"] for r in rounds),
            "beyond_torch_s": statistics.median(r[name] - r["torch"] for r in rounds),
        }
    return out


def report(result: dict) -> str:
    lines = [
        f"{len(result['rounds'])} rounds; load average before {result['load_before'][0]:.2f}, after "
        f"{result['load_after'][0]:.2f}",
        "| command | median s | ÷ import torch | − import torch, s | CPU s | CPU ÷ import torch's |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in result["summary"].items():
        c = result["cpu_summary"][name]
        lines.append(
            f"| {name} | {s['median_s']:.3f} | {s['over_torch']:.2f} | {s['beyond_torch_s']:+.2f} | "
            f"{c['median_s']:.2f} | {c['over_torch']:.2f} |"
        )
    if "rerun" in result:
        r = result["rerun"]
        lines.append(
            f"second run of one shape in one process (MLP, zscore): Started after {r['second_started_s']:.3f} s "
            f"(first run {r['first_started_s']:.3f} s); first progress {r['second_progress_s']:.3f} s "
            f"(one batch {r['second_batch_s']:.3f} s)"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=os.environ.get("FMTUI_DATA_DIR"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dashboard", action="store_true", help="also time the dashboard's first frame")
    ap.add_argument("--rerun", action="store_true", help="also time a second run of one shape in one process")
    ap.add_argument("--baseline", type=Path, help="another checkout, timed beside this one")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.data_dir is None:
        ap.error("--data-dir (or $FMTUI_DATA_DIR) is needed")
    return args


if __name__ == "__main__":
    main()

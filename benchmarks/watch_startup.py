"""Time from Enter to a watched run's recorded epochs: `fmtui watch RUN` on a pseudo-terminal, against
`python -c "import torch"` measured in the same run (issue 21's target: within 1.5 s on an idle box, torch not
imported).

    .venv/bin/python benchmarks/watch_startup.py [--epochs 50] [--repeats 5] [--data-dir DIR] [--json OUT]

The run folder is written by the real recorder (fmtui.recorder) from made-up events of a completed run: N epochs
and their step curve, the files a real run leaves (no model.pt: nothing that needs torch to write). Each repeat
starts `python -m fmtui watch RUN` on a 120x40 pseudo-terminal, reads what it draws until its epoch log shows the
last epoch's line (`Epoch [N/N]`), notes whether torch is loaded in it by then (libtorch in /proc/PID/maps), and
quits it with q. Alternated with it, in fresh processes: `python -c "import torch"` (the reference) and, with
--data-dir, the data loading that every watch waited for before its first epoch until this change (it loaded the
dataset and the model first). Times are wall times from the fork, on whatever load the machine has: compare the
ratios, and see the load average printed with them.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable
from pathlib import Path

from fmtui.config import RunConfig
from fmtui.events import BatchProgress, EpochEnd, Finished, NormStats, Started
from fmtui.recorder import RunRecorder

ESCAPES = re.compile(rb"\x1b\[[0-9;?<=>]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
"""Terminal escape sequences (CSI, OSC, two-byte): what is left is the text the dashboard drew."""
HANG = 300.0
"""Seconds after which one watch is given up as stuck (a guard, never a result)."""
BATCHES = 60


def make_run(folder: Path, epochs: int) -> Path:
    """A completed run of `epochs` epochs of BATCHES steps, written by the recorder from made-up events."""
    cfg = RunConfig(model="softmax", epochs=epochs)
    started = Started(cfg, "Fashion-MNIST", [f"class {k}" for k in range(10)], "cpu (1 thread)", "784-10 softmax",
                      7850, 60000, 0, 10000, BATCHES, NormStats("none", (0.0,), (1.0,)), 1)  # fmt: skip
    history = []
    with RunRecorder(lambda c: folder) as rec:
        rec.handle(started)
        for e in range(1, epochs + 1):
            steps = range((e - 1) * BATCHES + 1, e * BATCHES + 1)
            rec.handle(BatchProgress(e, epochs, BATCHES, BATCHES, 0.5, 80.0, 5e4, e * 1.0, 1.0, e * BATCHES,
                                     losses=[(s, 2.3 / s**0.3) for s in steps]))  # fmt: skip
            epoch = EpochEnd(e, epochs, 0.5, 80.0 + e / epochs, 0.6, 79.0 + e / epochs, 1.0, 0.1, 5e4, 0.01)
            rec.handle(epoch)
            history.append(epoch)
        rec.handle(Finished("completed", f"finished {epochs} epochs", history, None, float(epochs), None))  # type: ignore[arg-type]
    return folder


def torch_loaded(pid: int) -> bool | None:
    """Whether libtorch is mapped into the process (None where /proc cannot tell)."""
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return None


def watch_once(run: Path, epochs: int, env: dict[str, str]) -> dict:
    """One `fmtui watch RUN` on a pseudo-terminal: seconds to its first frame and to its last epoch's line."""
    marker, frame = f"Epoch [{epochs}/{epochs}]".encode(), b"3 Train"
    start = time.perf_counter()
    pid, master = pty.fork()
    if pid == 0:  # the child: the dashboard, its terminal the pty
        os.chdir(run.parent)  # not the source tree: `python -m` puts the working folder first on the path
        os.execve(sys.executable, [sys.executable, "-m", "fmtui", "watch", str(run)], env)
    fcntl_winsize(master)
    out, result = bytearray(), {"first_frame": None, "epochs_shown": None, "torch_loaded": None}
    try:
        while result["epochs_shown"] is None and time.perf_counter() - start < HANG:
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                continue
            try:
                out += os.read(master, 1 << 16)
            except OSError:
                break
            text = ESCAPES.sub(b"", bytes(out))
            now = time.perf_counter() - start
            if result["first_frame"] is None and frame in text:
                result["first_frame"] = now
            if marker in text:
                result["epochs_shown"], result["torch_loaded"] = now, torch_loaded(pid)
        os.write(master, b"q")
        _drain_until_exit(pid, master)
    finally:
        os.close(master)
    return result


def fcntl_winsize(fd: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))


def _drain_until_exit(pid: int, master: int) -> None:
    """Read what the dashboard still writes (a full terminal would block it) until it exits; kill it if it hangs."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        if select.select([master], [], [], 0.05)[0]:
            try:
                os.read(master, 1 << 16)
            except OSError:
                pass
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def seconds_of(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


LOAD = "import sys; from fmtui.data import load_dataset; load_dataset('fashion-mnist', sys.argv[1])"
"""What a watch did before its first epoch until issue 21 (with the model's build, which is quick)."""


def main(argv: list[str] | None = None, log: Callable[[str], None] = print) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=50, help="epochs of the watched run [50]")
    parser.add_argument("--repeats", type=int, default=5, help="watches (and references) measured [5]")
    parser.add_argument("--data-dir", help="also time the data loading every watch waited for before (this folder)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument(
        "--fmtui", type=Path, help="the source tree whose `fmtui watch` is timed (another version) [this one]"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp) / "runs" / "20260101-000000-fashion-mnist-softmax-none-lr0.01", args.epochs)
        env = {**os.environ, "TERM": "xterm-256color", "FMTUI_RUNS_DIR": str(Path(tmp) / "runs")}
        if args.fmtui:
            env["PYTHONPATH"] = os.pathsep.join([str(args.fmtui.resolve()), env.get("PYTHONPATH", "")])
        load0 = os.getloadavg()[0]
        watches, torch_s, data_s = [], [], []
        for _ in range(args.repeats):  # alternated, so that a change of load falls on all of them alike
            watches.append(watch_once(run, args.epochs, env))
            torch_s.append(seconds_of([sys.executable, "-c", "import torch"], env))
            if args.data_dir:
                data_s.append(seconds_of([sys.executable, "-c", LOAD, args.data_dir], env))
    result = summarize(args, watches, torch_s, data_s, [load0, os.getloadavg()[0]])
    for line in report(result):
        log(line)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


def summarize(args, watches: list[dict], torch_s: list[float], data_s: list[float], load: list[float]) -> dict:
    shown = [w["epochs_shown"] for w in watches if w["epochs_shown"] is not None]
    frames = [w["first_frame"] for w in watches if w["first_frame"] is not None]
    median = statistics.median
    return {
        "fmtui": "another tree (--fmtui)" if args.fmtui else "this tree",
        "epochs": args.epochs,
        "repeats": args.repeats,
        "cpus": os.cpu_count(),
        "load_average": load,
        "watch_epochs_shown_s": shown,
        "watch_first_frame_s": frames,
        "torch_loaded_when_shown": [w["torch_loaded"] for w in watches],
        "import_torch_s": torch_s,
        "load_data_s": data_s,
        "median_epochs_shown_s": median(shown) if shown else None,
        "median_import_torch_s": median(torch_s),
        "ratio_epochs_shown_to_import_torch": median(shown) / median(torch_s) if shown else None,
        "median_load_data_s": median(data_s) if data_s else None,
    }


def report(r: dict) -> list[str]:
    def s(values: list) -> str:
        return ", ".join(f"{v:.2f}" for v in values)

    lines = [
        f"{r['cpus']} CPUs, load average {r['load_average'][0]:.2f} at the start, {r['load_average'][1]:.2f} at the end",
        f"fmtui watch RUN ({r['fmtui']}, {r['epochs']} epochs): first frame after {s(r['watch_first_frame_s'])} s",
        f"  its {r['epochs']} epochs shown after {s(r['watch_epochs_shown_s'])} s"
        f" -> median {r['median_epochs_shown_s']:.2f} s; torch loaded by then: {r['torch_loaded_when_shown']}",
        f"python -c 'import torch': {s(r['import_torch_s'])} s -> median {r['median_import_torch_s']:.2f} s",
        f"epochs shown / import torch: {r['ratio_epochs_shown_to_import_torch']:.2f}",
    ]
    if r["load_data_s"]:
        lines.append(
            f"load_dataset in a fresh process (what a watch waited for before): {s(r['load_data_s'])} s"
            f" -> median {r['median_load_data_s']:.2f} s"
        )
    return lines


if __name__ == "__main__":
    main()

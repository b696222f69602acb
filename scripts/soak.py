"""Soak test: run fmtui (the dashboard in tmux, or any command) and sample its memory for a long while.

    python scripts/soak.py                                  # 20 min of fast softmax epochs in the dashboard
    python scripts/soak.py --minutes 5 --interval 10 --out runs/soak-before
    python scripts/soak.py --headless                       # the same training with --no-ui, no tmux
    python scripts/soak.py -- fmtui train --epochs 1000     # any command (run in tmux unless --headless)

Every `--interval` seconds it reads VmRSS of the biggest process under the command (the python that
trains, not tmux's shell) and the number of finished epochs (lines of metrics.jsonl in the newest run
folder of the runs folder it gives the command through FMTUI_RUNS_DIR). At the end it prints and writes
the series (PREFIX.csv, PREFIX.json) and the growth after the warm-up (from the first sample at or after
`--warmup` minutes): last minus first sample, the largest rise, least-squares slopes in MB/min and
MB/epoch, and the median of the last few samples minus the median of the first few, which decides: the
exit status is 1 when that exceeds `--limit-mb` (or RSS passed `--stop-above`), 2 when the command died
early, else 0. (RSS of a healthy run swings by tens of MB between samples; one sample decides nothing.)

The tmux session (on its own server, `tmux -L SOCKET`) is killed at the end, on Ctrl+C and on errors.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_COMMAND = ["fmtui", "train", "--model", "softmax", "--norm", "zscore", "--batch-size", "1024"]
DEFAULT_COMMAND += ["--epochs", "100000"]
"""Fast epochs (many per second on one CPU core): the quickest way to reach thousands of epochs."""


@dataclass
class Sample:
    t_s: float
    """Seconds since the command started."""
    rss_mb: float
    """VmRSS of the sampled process, MiB (2**20 bytes)."""
    epoch: int | None
    """Finished epochs of the newest run in the runs folder (None: not known)."""
    pid: int


# --- processes ------------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Direct children of pid (Linux /proc)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def descendants(pid: int) -> list[int]:
    """pid and every process below it."""
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += children(p)
    return seen


def rss_mb(pid: int) -> float | None:
    """VmRSS of pid in MiB, None when it is gone (or a zombie)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def biggest(root: int) -> tuple[int, float] | None:
    """(pid, rss MiB) of the process under root (root included) with the largest RSS."""
    found = [(p, r) for p in descendants(root) if (r := rss_mb(p)) is not None]
    return max(found, key=lambda pr: pr[1], default=None)


# --- the command under test ---------------------------------------------------------------------


class Target:
    """The command under test: started, its root pid, alive or not, stopped at the end."""

    def __init__(self, command: list[str], env: dict[str, str], args: argparse.Namespace) -> None:
        self.command, self.env, self.args = command, env, args
        self.root: int | None = None
        self.proc: subprocess.Popen | None = None
        self.session = f"soak-{os.getpid()}"

    def tmux(self, *argv: str, check: bool = True) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.args.socket, *argv], capture_output=True, text=True, check=False, env=self.env
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(argv[:2])} failed: {done.stderr.strip()}")
        return done.stdout

    def start(self) -> None:
        if self.args.headless:
            log = open(self.args.log, "wb") if self.args.log else subprocess.DEVNULL  # noqa: SIM115
            self.proc = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            self.root = self.proc.pid
            return
        if shutil.which("tmux") is None:
            raise RuntimeError("tmux is not installed (use --headless to run the command without it)")
        width, height = self.args.size.lower().split("x")
        # exec: the pane's process is the command itself, not a shell waiting for it
        line = "exec " + shlex.join(self.command)
        # an already running tmux server would not see our environment: hand the relevant part over
        names = [k for k in self.env if k.startswith("FMTUI_") or k in ("PYTHONPATH", "PATH", "NO_COLOR")]
        env_args = [a for k in names for a in ("-e", f"{k}={self.env[k]}")]
        new = ["new-session", "-d", "-s", self.session, "-x", width, "-y", height, *env_args, line]
        self.tmux(*new, ";", "set-option", "-t", self.session, "remain-on-exit", "on")  # a crash stays readable
        self.root = int(self.tmux("display-message", "-p", "-t", self.session, "#{pane_pid}").strip())

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        if self.root is None:
            return False
        dead = self.tmux("display-message", "-p", "-t", self.session, "#{pane_dead}", check=False).strip()
        return dead == "0"

    def screen(self) -> str:
        """The pane's last screen (tmux only), to see what the app showed when the soak ended."""
        if self.proc is not None or self.root is None:
            return ""
        return self.tmux("capture-pane", "-p", "-t", self.session, check=False)

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGINT)
                try:
                    self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
            return
        if self.root is not None:
            if self.args.quit_keys:  # quit cleanly: the run folder is closed
                self.tmux("send-keys", "-t", self.session, *self.args.quit_keys.split(), check=False)
            deadline = time.monotonic() + self.args.quit_wait
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.5)
        self.tmux("kill-session", "-t", self.session, check=False)


# --- epochs ---------------------------------------------------------------------------------------


def epochs_done(runs_dir: Path | None) -> int | None:
    """Finished epochs of the newest run folder: lines of its metrics.jsonl (None: no run yet)."""
    if runs_dir is None:
        return None
    runs = list(runs_dir.glob("*/metrics.jsonl"))
    if not runs:
        return None
    newest = max(runs, key=lambda p: p.stat().st_mtime)
    try:
        return newest.read_bytes().count(b"\n")
    except OSError:
        return None


# --- analysis -------------------------------------------------------------------------------------


def slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of ys over xs (None with fewer than 2 distinct xs)."""
    if len(xs) < 2:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return None if var == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var


def summarize(samples: list[Sample], warmup_s: float, limit_mb: float) -> dict:
    """Growth after the warm-up: last minus first sample at/after warmup_s, slopes, pass/fail."""
    after = [s for s in samples if s.t_s >= warmup_s] or samples[-1:]
    out: dict = {"samples": len(samples), "warmup_s": warmup_s, "limit_mb": limit_mb}
    if not after:
        return out
    first, last = after[0], after[-1]
    out |= {
        "rss_start_mb": round(samples[0].rss_mb, 1),
        "rss_at_warmup_mb": round(first.rss_mb, 1),
        "rss_end_mb": round(last.rss_mb, 1),
        "rss_max_mb": round(max(s.rss_mb for s in samples), 1),
        "growth_after_warmup_mb": round(last.rss_mb - first.rss_mb, 1),
        "max_growth_after_warmup_mb": round(max(s.rss_mb for s in after) - first.rss_mb, 1),
    }
    # RSS swings by tens of MB from one sample to the next (transient buffers); medians of a few samples
    # at each end of the window say whether it really grew
    k = max(1, min(5, len(after) // 4))
    trend = statistics.median(s.rss_mb for s in after[-k:]) - statistics.median(s.rss_mb for s in after[:k])
    out["median_growth_after_warmup_mb"] = round(trend, 1)
    per_min = slope([s.t_s / 60 for s in after], [s.rss_mb for s in after])
    out["slope_mb_per_min"] = None if per_min is None else round(per_min, 2)
    with_epochs = [s for s in after if s.epoch is not None]
    if with_epochs:
        out["epochs_at_warmup"], out["epochs_end"] = with_epochs[0].epoch, with_epochs[-1].epoch
        per_epoch = slope([float(s.epoch) for s in with_epochs], [s.rss_mb for s in with_epochs])
        out["slope_mb_per_epoch"] = None if per_epoch is None else round(per_epoch, 4)
    out["passed"] = trend <= limit_mb
    return out


def write_series(prefix: Path, samples: list[Sample], summary: dict, meta: dict) -> None:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    lines = ["t_s,rss_mb,epoch,pid"]
    lines += [f"{s.t_s:.1f},{s.rss_mb:.1f},{'' if s.epoch is None else s.epoch},{s.pid}" for s in samples]
    prefix.with_suffix(".csv").write_text("\n".join(lines) + "\n")
    data = {**meta, "summary": summary, "series": [asdict(s) for s in samples]}
    prefix.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Run fmtui (default: the dashboard in tmux) and sample its RSS over time.",
        epilog="Everything after -- is the command (default: " + shlex.join(DEFAULT_COMMAND) + ").",
    )
    p.add_argument("--minutes", type=float, default=20.0, help="how long to sample [20]")
    p.add_argument("--interval", type=float, default=30.0, help="seconds between samples [30]")
    p.add_argument("--warmup", type=float, default=2.0, help="minutes before growth is counted [2]")
    p.add_argument("--limit-mb", type=float, default=50.0, help="allowed growth after the warm-up, MiB [50]")
    p.add_argument("--stop-above", type=float, default=0, help="end early once RSS passes this many MiB [never]")
    p.add_argument("--out", type=Path, default=None, help="write OUT.csv and OUT.json [soak-<time> in cwd]")
    p.add_argument("--headless", action="store_true", help="run the command directly, without tmux")
    p.add_argument("--no-ui", action="store_true", help="default command headless: fmtui --no-ui train ...")
    p.add_argument("--socket", default="soak", help="tmux server socket name, as in tmux -L [soak]")
    p.add_argument("--size", default="120x40", help="tmux window size [120x40]")
    p.add_argument(
        "--quit-keys", default="q y", help="tmux keys that quit the command at the end (q asks while training) [q y]"
    )
    p.add_argument("--quit-wait", type=float, default=15, help="seconds to wait for it to quit [15]")
    p.add_argument("--runs-dir", type=Path, default=None, help="FMTUI_RUNS_DIR for the command [a temp dir]")
    p.add_argument("--log", type=Path, default=None, help="--headless: the command's output to this file")
    p.add_argument("--quiet", action="store_true", help="do not print each sample")
    p.add_argument("command", nargs="*", help="the command to run (after --)")
    args = p.parse_args(argv)
    if args.interval <= 0 or args.minutes <= 0 or args.warmup < 0:
        p.error("--interval and --minutes must be positive, --warmup not negative")
    if not args.command:
        args.command = (["fmtui", "--no-ui"] + DEFAULT_COMMAND[1:]) if args.no_ui else list(DEFAULT_COMMAND)
        args.headless = args.headless or args.no_ui
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    temp = None
    if args.runs_dir is None:
        temp = tempfile.TemporaryDirectory(prefix="fmtui-soak-")
        args.runs_dir = Path(temp.name)
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FMTUI_RUNS_DIR": str(args.runs_dir.resolve())}
    prefix = args.out or Path(f"soak-{time.strftime('%Y%m%d-%H%M%S')}")
    target = Target(args.command, env, args)
    samples: list[Sample] = []
    ended = "time"  # or: exited (the command died), stop-above, interrupted
    t0 = time.monotonic()
    try:
        target.start()
        print(f"soak: {shlex.join(args.command)}", file=sys.stderr)
        print(f"soak: every {args.interval:g}s for {args.minutes:g} min, root pid {target.root}", file=sys.stderr)
        end = t0 + 60 * args.minutes
        next_t = t0
        while True:
            now = time.monotonic()
            if next_t > now:
                time.sleep(next_t - now)
            if not target.alive():
                ended = "exited"
                print("soak: the command exited early", file=sys.stderr)
                break
            found = biggest(target.root)
            if found is not None:
                s = Sample(round(time.monotonic() - t0, 1), round(found[1], 1), epochs_done(args.runs_dir), found[0])
                samples.append(s)
                if not args.quiet:
                    print(f"{s.t_s:8.1f}s  {s.rss_mb:9.1f} MiB  epoch {s.epoch}  pid {s.pid}", flush=True)
                if args.stop_above and s.rss_mb > args.stop_above:
                    print(f"soak: RSS passed --stop-above {args.stop_above:g} MiB, ending early", file=sys.stderr)
                    ended = "stop-above"
                    break
            next_t += args.interval
            if next_t > end + 1e-6:
                break
    except KeyboardInterrupt:
        ended = "interrupted"
        print("soak: interrupted", file=sys.stderr)
    finally:
        screen = target.screen()
        target.stop()
        if temp is not None:
            temp.cleanup()
    summary = summarize(samples, 60 * args.warmup, args.limit_mb)
    summary["ended"] = ended
    if ended != "time":
        summary["passed"] = False
    meta = {"command": args.command, "interval_s": args.interval, "minutes": args.minutes, "tmux": not args.headless}
    if screen:
        meta["last_screen"] = screen.splitlines()
    write_series(prefix, samples, summary, meta)
    print(json.dumps(summary, indent=1))
    print(f"soak: wrote {prefix.with_suffix('.csv')} and {prefix.with_suffix('.json')}", file=sys.stderr)
    if ended == "exited":
        return 2
    return 0 if summary.get("passed", False) else 1


if __name__ == "__main__":
    sys.exit(main())

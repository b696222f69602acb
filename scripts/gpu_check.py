"""The GPU check: `prepare` here (wheels and data for the GPU machine), then one `run` call on a lent GPU.

    .venv/bin/python scripts/gpu_check.py prepare [--data-dir DIR] [--with-mnist]
        Downloads into .whl/ the wheels the GPU machine lacks (pinned to the versions of this venv),
        copies Fashion-MNIST into .gpu-data/, checks what would travel (64 MiB at most) and prints the
        device call to make: its command, its carry list and a timeout.
    python3 scripts/gpu_check.py run --device cuda --out "$OUT"          (on the GPU machine)
        Installs the carried wheels into /tmp/site, then runs each part as a time-boxed child process,
        going on to the next whatever happened: env, cli (the lecture's 5 epochs, the whole command timed),
        scale (the lecture experiment, 8 runs x 100 epochs, as one whole command; two tune workers sharing
        the GPU), screenshot (the Train pane during a GPU run, its GPU system metrics lines and the run folder's
        system.jsonl too), bench (benchmarks/train_speed.py on the device), tests (the suite with CUDA
        visible). Writes OUT/gpu-check.json (every figure, each part's status; rewritten after every part),
        OUT/tests.log, OUT/bench.log and OUT/train-pane.svg.
    python scripts/gpu_check.py run --device cpu --quick --out DIR
        The dry run: the same steps on the CPU at toy size (synthetic data, a few tests, 1 epoch), made by
        tests/test_gpu_check.py so that the check never rots.

`run` needs only the standard library: the parts are child processes of the same Python, with the
installed wheels and this checkout first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import json
import os
import random
import re
import resource
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEELS, DATA = ".whl", ".gpu-data"
FASHION_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
MISSING = (
    "textual",
    "textual-plotext",
    "plotext",
    "pytest-textual-snapshot",
    "syrupy",
    "platformdirs",
    "linkify-it-py",
    "mdit-py-plugins",
    "psutil",
    "nvidia-ml-py",
    "optuna",
    "alembic",
    "sqlalchemy",
    "mako",
    "colorlog",
    "tqdm",
    "pyyaml",
)
"""Not in the GPU machine's image: fmtui's UI and snapshot-test stack, its system metrics (psutil, nvidia-ml-py)
and the tune extra (optuna), and what they need."""
PINNED = ("rich", "pygments", "markdown-it-py", "mdurl", "click", "pytest")
"""In the image, at versions nobody here has read: carried at this venv's versions, so the device runs the
code the suite passes with here (textual needs recent rich and pygments; pytest-textual-snapshot pytest<9)."""
DEVICE_HAS = frozenset(
    "torch torchvision numpy pillow jinja2 markupsafe pluggy iniconfig packaging typing-extensions filelock "
    "fsspec sympy mpmath networkx triton setuptools colorama".split()
)
"""Packages of the GPU machine's image (its documented package list) that the carried wheels may need."""
TARGET_PYTHON = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux"}
FILES_BACK = 8
"""At most this many files come back from the device's OUT folder."""
MNIST_TESTS = (
    "tests/test_real_data.py::test_official_files_load_and_verify",
    "tests/test_data.py::test_swapped_official_dataset_is_caught",
)
"""The tests that read the real MNIST files, deselected where they are not carried (file checks, no GPU)."""


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- prepare (here) -----------------------------------------------------------------------------


def wheel_name(path: Path) -> tuple[str, str]:
    """(canonical name, version) from a wheel's file name."""
    name, version = path.name.split("-")[:2]
    return canon(name), version


def download_wheels(folder: Path, log=print) -> dict[str, Path]:
    """One wheel per carried package, at the version installed here; other versions are removed."""
    from importlib.metadata import PackageNotFoundError, version

    folder.mkdir(exist_ok=True)
    wanted = {}
    for name in MISSING + PINNED:
        try:
            wanted[canon(name)] = version(name)
        except PackageNotFoundError:
            raise SystemExit(f"error: {name} is not installed here; run prepare with the project's venv") from None
    have = {}
    for path in sorted(folder.glob("*.whl")):
        name, ver = wheel_name(path)
        if name in wanted and ver != wanted[name]:
            path.unlink()
        else:
            have[name] = path
    todo = [f"{name}=={ver}" for name, ver in wanted.items() if name not in have]
    if todo:
        log(f"downloading {len(todo)} wheels: {' '.join(todo)}")
        platforms = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
        cmd += ["--python-version", "3.12", "--implementation", "cp", "-d", str(folder), *todo]
        cmd += [arg for p in platforms for arg in ("--platform", p)]
        subprocess.run(cmd, check=True)
    wheels = {wheel_name(p)[0]: p for p in sorted(folder.glob("*.whl"))}
    extra = sorted(set(wheels) - set(wanted))
    if extra:
        log(f"note: {folder.name}/ also holds {', '.join(extra)}: they travel and are installed too")
    return wheels


def requirement_report(wheels: dict[str, Path]) -> tuple[list[str], list[str]]:
    """(needed from the device image, needed but neither carried nor known there) for the carried wheels."""
    from packaging.requirements import Requirement

    expected, missing, queue, seen = set(), [], [(name, "") for name in wheels], set()
    while queue:
        name, extra = queue.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        for req in map(Requirement, metadata_requires(wheels[name])):
            if req.marker and not req.marker.evaluate({**TARGET_PYTHON, "extra": extra}):
                continue
            dep = canon(req.name)
            if dep in wheels:
                queue += [(dep, e) for e in req.extras]
                if not req.specifier.contains(wheel_name(wheels[dep])[1], prereleases=True):
                    missing.append(f"{dep} {wheel_name(wheels[dep])[1]} (carried) but {name} wants {req}")
            elif dep in DEVICE_HAS:
                expected.add(dep)
            else:
                missing.append(f"{dep} (needed by {name})")
    return sorted(expected), sorted(set(missing))


def metadata_requires(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]


def find_data(data_dir: Path, dataset: str = "fashion-mnist") -> Path:
    for folder in (data_dir / dataset, data_dir):
        if all((folder / name).is_file() for name in FASHION_MD5):
            return folder
    raise SystemExit(f"error: the four {dataset} .gz files are not in {data_dir} (nor in its {dataset}/ folder)")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def copy_data(src_dir: Path, dest: Path, with_mnist: bool) -> int:
    """Copy Fashion-MNIST (checked against its official md5) and optionally MNIST into dest/<dataset>/."""
    src = find_data(src_dir)
    bad = [n for n, digest in FASHION_MD5.items() if md5(src / n) != digest]
    if bad:
        raise SystemExit(f"error: {', '.join(bad)} in {src} are not the official Fashion-MNIST files (md5)")
    pairs = [(src, dest / "fashion-mnist")]
    if with_mnist:
        pairs.append((find_data(src_dir, "mnist"), dest / "mnist"))
    elif (dest / "mnist").exists():
        shutil.rmtree(dest / "mnist")
    total = 0
    for from_dir, to_dir in pairs:
        to_dir.mkdir(parents=True, exist_ok=True)
        for name in FASHION_MD5:
            target = to_dir / name
            if not target.is_file() or target.stat().st_size != (from_dir / name).stat().st_size:
                shutil.copyfile(from_dir / name, target)
            total += target.stat().st_size
    return total


def tree_bytes(root: Path) -> int:
    """Bytes of the files that travel besides the carried folders: tracked and untracked-not-ignored."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum((root / p).stat().st_size for p in set(out.split("\0")) if p and (root / p).is_file())


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run_call() -> dict:
    """The device call that runs the check, for the device tool's `run`."""
    command = (
        'set -o pipefail; export PYTHONUNBUFFERED=1; python3 scripts/gpu_check.py run --device cuda --out "$OUT" '
        '2>&1 | tee "$OUT/gpu-check.log"'
    )
    return {"command": command, "carry": [WHEELS, DATA], "timeout_s": 400}


def prepare(args: argparse.Namespace) -> None:
    mib = 2**20
    wheels = download_wheels(ROOT / WHEELS)
    expected, missing = requirement_report(wheels)
    whl_bytes = folder_bytes(ROOT / WHEELS)
    print(
        f"wheels: {len(wheels)} in {WHEELS}/ ({whl_bytes / mib:.1f} MiB): " + ", ".join(p.name for p in wheels.values())
    )
    print(f"their needs expected in the device image: {', '.join(expected) or 'none'}")
    print(f"their needs neither carried nor known there: {'; '.join(missing) or 'none'}")
    data_bytes = copy_data(args.data_dir, ROOT / DATA, args.with_mnist)
    sets = "fashion-mnist and mnist" if args.with_mnist else "fashion-mnist (not mnist: its 2 tests are deselected)"
    print(f"data: {DATA}/ {sets}, official md5, {data_bytes / mib:.1f} MiB")
    for folder in (WHEELS, DATA):
        if subprocess.run(["git", "check-ignore", "-q", folder], cwd=ROOT).returncode != 0:
            raise SystemExit(f"error: {folder}/ is not ignored by git here; add it to .gitignore or .git/info/exclude")
    tree = tree_bytes(ROOT)
    total = tree + whl_bytes + data_bytes
    print(
        f"travels: tree {tree / mib:.1f} MiB + {WHEELS} {whl_bytes / mib:.1f} MiB + {DATA} {data_bytes / mib:.1f} MiB "
        f"= {total / mib:.1f} MiB of 64 MiB"
    )
    if total > 56 * mib:
        raise SystemExit("error: too close to the 64 MiB limit; leave out --with-mnist or clean the tree")
    call = run_call()
    print(
        f"\nThe device call, made from this checkout ({ROOT}); the device sends the checkout the session started in,\n"
        f"so prepare there. The run takes about 4 minutes (at most {call['timeout_s']} s), leaving time to rerun it:"
    )
    print(f"  command:   {call['command']}\n  carry:     {json.dumps(call['carry'])}\n  timeout_s: {call['timeout_s']}")
    print(f"  as JSON:   {json.dumps(call)}")
    print(
        "It prints each part and a summary; under $OUT come back gpu-check.json (every figure, each part "
        "passed/failed), gpu-check.log, tests.log, bench.log and train-pane.svg."
    )
    if missing:
        raise SystemExit("error: some needs of the carried wheels are neither carried nor known on the device")


# --- run (on the device, or the CPU dry run) ----------------------------------------------------


def idx_gz(path: Path, dims: tuple[int, ...], data: bytes) -> None:
    header = bytes([0, 0, 0x08, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header + data)


def synthetic_data(folder: Path, n_train: int = 1200, n_test: int = 300) -> Path:
    """Learnable toy Fashion-MNIST files (a bright band per class over noise) for the dry run."""
    rng, noise = random.Random(0), bytes(b % 60 for b in range(256))
    folder = folder / "fashion-mnist"
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = bytes(rng.randrange(10) for _ in range(n))
        images = bytearray(rng.randbytes(n * 784).translate(noise))
        for i, y in enumerate(labels):
            for row in range(y * 2 + 2, y * 2 + 5):
                start = i * 784 + row * 28 + 2
                images[start : start + 24] = b"\xc8" * 24
        idx_gz(folder / f"{prefix}-images-idx3-ubyte.gz", (n, 28, 28), bytes(images))
        idx_gz(folder / f"{prefix}-labels-idx1-ubyte.gz", (n,), labels)
    return folder.parent


class Child:
    """A child process whose output goes line by line to stdout (and a log), killed with its group at timeout."""

    def __init__(self, cmd: list[str], env: dict, timeout: float, log: Path | None = None):
        self.cmd, self.env, self.timeout, self.log = cmd, env, timeout, log
        self.lines: list[str] = []
        self.timed_out = False
        self.rc: int | None = None

    def run(self) -> int:
        print(f"$ {' '.join(self.cmd)}", flush=True)
        proc = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            preexec_fn=os.setpgrp,  # its own group, to stop it whole; not its own session, which would outlive us
        )
        reader = threading.Thread(target=self._read, args=(proc,), daemon=True)
        reader.start()
        try:
            proc.wait(timeout=max(self.timeout, 1))
        except subprocess.TimeoutExpired:
            self.timed_out = True
            self._kill(proc)
        reader.join(timeout=10)
        return proc.returncode

    def _read(self, proc: subprocess.Popen) -> None:
        with open(self.log, "a") if self.log else open(os.devnull, "w") as log:
            for line in proc.stdout:
                self.lines.append(line.rstrip("\n"))
                sys.stdout.write(line)
                sys.stdout.flush()
                log.write(line)
                log.flush()

    def _kill(self, proc: subprocess.Popen) -> None:
        print(f"!! timed out after {self.timeout:.0f} s: stopping it", flush=True)
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=wait)
                return
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue


class Check:
    """One run of the check: the parts in order, each time-boxed, the JSON rewritten after each."""

    PARTS = (
        ("install", 90),
        ("env", 60),
        ("cli", 120),
        ("scale", 120),
        ("screenshot", 90),
        ("bench", 240),
        ("tests", 240),
    )
    """(part, most seconds it may take); bench before tests: its figures are what the issue asks for."""

    def __init__(self, args: argparse.Namespace):
        self.args, self.quick, self.device = args, args.quick, args.device
        self.out = Path(args.out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="gpu-check-"))
        self.site = Path(args.site) if args.site else self.tmp / "site"
        self.started = time.monotonic()
        self.deadline = self.started + args.budget
        self.data = Path(args.data_dir).resolve() if args.data_dir else None
        self.wheels = Path(args.wheels).resolve() if args.wheels else None if self.quick else ROOT / WHEELS
        self.report: dict = {
            "check": {"device": self.device, "quick": self.quick, "budget_s": args.budget, "site": str(self.site)},
            "parts": {name: {"status": "pending"} for name, _ in self.PARTS},
            "figures": {},
            "targets": [],
            "raw": {},
        }

    # --- plumbing -------------------------------------------------------------------------------

    def env(self, **extra: str) -> dict:
        path = [str(self.site)] if self.site.is_dir() and any(self.site.iterdir()) else []
        path += [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "NO_COLOR")}
        env.update(
            PYTHONPATH=os.pathsep.join(path),
            PYTHONUNBUFFERED="1",
            FMTUI_DATA_DIR=str(self.data),
            FMTUI_NO_DOWNLOAD="1",
            FMTUI_RUNS_DIR=str(self.tmp / "runs"),
            TERM="xterm-256color",
        )
        env.update(extra)
        return env

    def child(self, cmd: list[str], timeout: float, log: str | None = None, **env: str) -> Child:
        c = Child(cmd, self.env(**env), timeout, self.out / log if log else None)
        c.rc = c.run()
        return c

    def save(self) -> None:
        path = self.out / "gpu-check.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.report, indent=2, default=str))
        tmp.replace(path)

    def run(self) -> int:
        print(f"gpu check: device {self.device}{' (quick dry run)' if self.quick else ''}, out {self.out}", flush=True)
        if self.quick and self.data is None:
            self.data = synthetic_data(self.tmp / "data")
        self.data = self.data or ROOT / DATA
        for i, (name, most) in enumerate(self.PARTS):
            left = self.deadline - time.monotonic() - 15 * (len(self.PARTS) - i - 1)
            self.part(name, left if self.quick else min(most, left))  # the dry run: the budget alone
        self.finish()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return 0 if all(p["status"] in ("passed", "skipped") for p in self.report["parts"].values()) else 1

    def part(self, name: str, timeout: float) -> None:
        record = self.report["parts"][name]
        if timeout < 5:
            record.update(status="skipped", note="out of time budget")
            self.save()
            return
        print(f"\n=== {name} (at most {timeout:.0f} s) ===", flush=True)
        t0, cpu0 = time.monotonic(), children_cpu()
        record.update(status="running", timeout_s=round(timeout))
        self.save()
        try:
            status, note = getattr(self, f"part_{name}")(timeout)
        except Exception as e:  # a bug in the check itself: record it, go on
            status, note = "failed", f"the check itself failed: {type(e).__name__}: {e}"
        record.update(status=status, note=note, seconds=round(time.monotonic() - t0, 2))
        record["cpu_s"] = round(children_cpu() - cpu0, 2)
        print(f"=== {name}: {status}{': ' + note if note else ''} ({record['seconds']:.1f} s)", flush=True)
        self.save()

    def left(self, t0: float, timeout: float) -> float:
        return timeout - (time.monotonic() - t0)

    @staticmethod
    def status_of(child: Child, ok: bool = True) -> str:
        return "timeout" if child.timed_out else "passed" if child.rc == 0 and ok else "failed"

    # --- the parts ------------------------------------------------------------------------------

    def part_install(self, timeout: float) -> tuple[str, str]:
        wheels = sorted(self.wheels.glob("*.whl")) if self.wheels else []
        if not wheels:
            return "skipped", f"no wheels in {self.wheels or 'the dry run'}: this machine's packages are used"
        names = [wheel_name(w)[0] for w in wheels]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            return "failed", f"two versions of {', '.join(twice)} in {self.wheels}: run prepare again"
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
        cmd += ["--no-cache-dir", "--upgrade", "--target", str(self.site), *map(str, wheels)]
        c = self.child(cmd, timeout)
        return self.status_of(c), f"{len(wheels)} wheels into {self.site}"

    def part_env(self, timeout: float) -> tuple[str, str]:
        c = self.child([sys.executable, __file__, "env"], timeout)
        info = last_json(c.lines, "ENV ")
        self.report["figures"]["env"] = info
        if info is None:
            return self.status_of(c, False), "no environment report"
        ok = self.device != "cuda" or info.get("cuda_available")
        gpu = info.get("gpu", "no GPU")
        note = f"{gpu}, torch {info.get('torch')}, Python {info.get('python')}"
        if info.get("requirement_problems"):
            note += f"; requirement problems: {'; '.join(info['requirement_problems'])}"
        return self.status_of(c, bool(ok)), note

    def part_cli(self, timeout: float) -> tuple[str, str]:
        """The lecture's config through the real command line, the whole command timed."""
        t0 = time.monotonic()
        fmtui = [sys.executable, "-m", "fmtui"]
        help_ = self.child([*fmtui, "--no-ui", "train", "--help"], min(60, timeout))
        graphs = "--no-graphs" in "\n".join(help_.lines)
        epochs = 1 if self.quick else 5
        runs = [("device", ["--device", self.device])]
        if self.device != "cpu":
            runs.append(("cpu", ["--device", "cpu"]))
        if graphs:
            runs.append(("device_eager", ["--device", self.device, "--no-graphs"]))
        results, ok = {"cli_has_no_graphs": graphs}, help_.rc == 0
        for name, extra in runs:
            out = self.tmp / f"cli-{name}"
            cmd = [*fmtui, "--no-ui", "train", "--epochs", str(epochs), "--json", "--out", str(out), *extra]
            start = time.perf_counter()
            c = self.child(cmd, self.left(t0, timeout))
            results[name] = cli_figures(c.lines, out, time.perf_counter() - start, c.rc)
            ok &= c.rc == 0 and results[name].get("status") == "completed"
            if c.timed_out:
                break
        self.report["figures"]["cli"] = results
        done = results.get("device", {})
        return ("passed" if ok else "failed"), (
            f"{epochs} epoch{'s' * (epochs != 1)} on {self.device}: {done.get('train_s', float('nan')):.2f} s training, "
            f"{done.get('wall_s', float('nan')):.2f} s the whole command, test acc {done.get('test_accuracy')}"
        )

    def part_scale(self, timeout: float) -> tuple[str, str]:
        """The lecture experiment as one whole command (softmax, 4 normalizations x 2 learning rates, batch 1024,
        100 epochs; 1 in the dry run), then two tune workers of one command sharing this one device."""
        t0, fmtui = time.monotonic(), [sys.executable, "-m", "fmtui", "--no-ui"]
        epochs = "1" if self.quick else "100"
        cmd = [*fmtui, "sweep", "--model", "softmax", "--norm", "none,unit,symmetric,zscore", "--lr", "0.01,1e-5"]
        cmd += ["--batch-size", "1024", "--epochs", epochs, "--device", self.device, "--json"]
        start = time.perf_counter()
        c = self.child([*cmd, "--out", str(self.tmp / "lecture")], self.left(t0, timeout) * 0.5)
        lecture = sweep_figures(c.lines, time.perf_counter() - start, c.rc)
        trials = 2 if self.quick else 6
        cmd = [*fmtui, "tune", "--workers", "2", "--trials", str(trials), "--epochs", "1" if self.quick else "3"]
        cmd += ["--lr", "1e-3..0.3", "--device", self.device, "--study", "gpu-check", "--json"]
        start = time.perf_counter()
        c2 = self.child([*cmd, "--runs-dir", str(self.tmp / "tune")], self.left(t0, timeout))
        tune = tune_figures(c2.lines, time.perf_counter() - start, c2.rc)
        self.report["figures"]["scale"] = {"lecture": lecture, "tune": tune}
        ok = lecture.get("runs") == 8 and lecture.get("failed") == 0 and c.rc == 0
        ok = ok and c2.rc == 0 and tune.get("trials") == trials and tune.get("failed") == 0
        timed_out = c.timed_out or c2.timed_out
        status = "timeout" if timed_out else "passed" if ok else "failed"
        return status, (
            f"lecture ({epochs} epochs, 8 runs): {lecture.get('wall_s', float('nan')):.2f} s the whole command, "
            f"best {lecture.get('best')}; tune, 2 workers on one {self.device}: {tune.get('trials')} trials "
            f"({tune.get('states')}) in {tune.get('wall_s', float('nan')):.2f} s"
        )

    def part_screenshot(self, timeout: float) -> tuple[str, str]:
        svg = self.out / "train-pane.svg"
        cmd = [sys.executable, __file__, "screenshot", "--device", self.device, "--svg", str(svg)]
        c = self.child(cmd + ["--limit", str(max(timeout - 15, 10))], timeout)
        info = last_json(c.lines, "SHOT ") or {}
        self.report["figures"]["screenshot"] = info
        ok = svg.is_file() and info.get("during_run") and info.get("system_lines")
        gpu = info.get("gpu_line") and info.get("system_gpu_line") and info.get("system_file_gpus")
        ok = ok and (self.device != "cuda" or gpu)
        system = " / ".join(info.get("system_lines") or ["no system lines"])
        return self.status_of(c, bool(ok)), f"{svg.name}: {info.get('stats', 'no state recorded')}; {system}"

    def part_bench(self, timeout: float) -> tuple[str, str]:
        """benchmarks/train_speed.py in sections, each its own process and JSON so that a time-out costs one:
        lecture vs fmtui at batch 64 and 1024, the 8-run sweep, TUI vs headless, fmtui eager (--no-graphs)."""
        t0, quick = time.monotonic(), self.quick
        epochs = repeats = "1" if quick else "2"
        base = [sys.executable, "benchmarks/train_speed.py", "--data-dir", str(self.data), "--device", self.device]
        base += ["--epochs", epochs] + (["--threads", "1"] if quick else [])
        sections = {
            "compare": ["--repeats", repeats, "--help-time"],
            "sweep": ["--skip-compare", "--sweep", "--sweep-repeats", repeats],
            "tui": ["--skip-compare", "--tui", "--tui-repeats", repeats],
            "eager": ["--no-graphs", "--repeats", "1"],
        }
        if quick:  # the dry run: one process for the three (each costs a torch import), no 11 --help processes
            sections = {"compare": ["--repeats", "1", "--sweep", "--tui", "--tui-repeats", "1", "--sweep-repeats", "1"]}
            sections["eager"] = ["--no-graphs", "--repeats", "1", "--batch-sizes", "64"]
        raw, states = self.report["raw"].setdefault("bench", {}), {}
        for name, extra in sections.items():
            if name == "eager" and not any(
                ((r or {}).get("machine") or {}).get("graphs_supported") for r in raw.values()
            ):
                states[name] = "skipped: this fmtui has no graphed step"
            elif self.left(t0, timeout) < 10:
                states[name] = "skipped: out of time"
            else:
                path = self.tmp / f"bench-{name}.json"
                c = self.child([*base, *extra, "--json", str(path)], self.left(t0, timeout), "bench.log")
                raw[name] = json.loads(path.read_text()) if path.is_file() else None
                states[name] = self.status_of(c, raw[name] is not None)
        self.report["figures"]["bench"] = fig = bench_figures(raw) | {"sections": states}
        bad = [s for n, s in states.items() if s != "passed" and not (n == "eager" and "graphed" in s)]
        status = "passed" if not bad else "timeout" if "timeout" in bad else "failed"
        return status, bench_note(fig)

    def part_tests(self, timeout: float) -> tuple[str, str]:
        """The suite (a handful of files in the dry run) CI-like: no plugins but the snapshot ones."""
        junit = self.tmp / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "syrupy"]
        cmd += ["-p", "pytest_textual_snapshot", "-rfEs", "--durations=10", f"--junitxml={junit}"]
        if importlib.util.find_spec("pytest_timeout") and not self.quick:  # one hung test fails, not the part
            cmd += ["-p", "pytest_timeout", "--timeout=120"]
        if importlib.util.find_spec("xdist"):  # pyproject's addopts hand the tests to a worker per core (-n auto)
            cmd += ["-p", "xdist"] + (["-n", "0"] if self.quick else [])  # a handful of tests: no workers
        else:  # not carried to the device: one process, without addopts' -n that no plugin would read
            cmd += ["-o", "addopts=-ra"]
        if self.args.tests:
            cmd += self.args.tests
        else:
            cmd += ["tests/test_config.py"] if self.quick else ["tests"]
            if not (self.data / "mnist").is_dir():
                cmd += [arg for test in MNIST_TESTS for arg in ("--deselect", test)]
        env = {"CI": "true", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        c = self.child(cmd, timeout, "tests.log", **env)
        summary = junit_summary(junit)
        self.report["figures"]["tests"] = summary
        counts = ", ".join(f"{summary.get(k, 0)} {k}" for k in ("passed", "failed", "errors", "skipped"))
        return self.status_of(c, bool(summary.get("passed"))), counts

    # --- the end --------------------------------------------------------------------------------

    def finish(self) -> None:
        self.report["targets"] = targets(self.report["figures"])
        files = sorted(p.relative_to(self.out).as_posix() for p in self.out.rglob("*") if p.is_file())
        self.report["check"].update(files=files, seconds=round(time.monotonic() - self.started, 1))
        if len(files) + 1 > FILES_BACK:  # + gpu-check.log, written by the command's tee
            self.report["check"]["note"] = f"{len(files)} files in OUT: only {FILES_BACK} come back"
        self.save()
        print("\n=== summary ===")
        for name, p in self.report["parts"].items():
            print(
                f"{name:<11} {p['status']:<8} {p.get('seconds', 0):>6.1f} s {p.get('cpu_s', 0):>6.1f} s CPU  {p.get('note', '')}"
            )
        for t in self.report["targets"]:
            met = {True: "met", False: "NOT met", None: "-"}[t["met"]]
            print(f"target: {t['target']}: {t['value']} ({met})")
        print(f"figures: {self.out / 'gpu-check.json'}", flush=True)


def children_cpu() -> float:
    """CPU seconds used so far by finished child processes (theirs and their children's)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def last_json(lines: list[str], prefix: str) -> dict | None:
    for line in reversed(lines):
        if line.startswith(prefix):
            return json.loads(line[len(prefix) :])
    return None


def cli_figures(lines: list[str], out: Path, wall: float, rc: int) -> dict:
    """Training and evaluation seconds, accuracy and start-up of one `fmtui --no-ui train --json` command."""
    events = [json.loads(line) for line in lines if line.startswith('{"event"')]
    by = {e["event"]: e for e in events}
    epochs = [e for e in events if e["event"] == "epoch"]
    fig: dict = {"rc": rc, "wall_s": round(wall, 3)}
    if "started" in by:
        fig.update(device=by["started"]["device"], step=by["started"].get("step"))
    if "finished" in by:
        done = by["finished"]
        eval_s = sum(e["eval_seconds"] for e in epochs)
        fig.update(status=done["status"], message=done["message"], train_s=done["seconds"], eval_s=eval_s)
        fig.update(startup_s=wall - done["seconds"] - eval_s, epoch_s=[e["seconds"] for e in epochs])
        if done.get("final"):
            fig["test_accuracy"] = done["final"]["test_accuracy"]
    config = out / "config.json"
    if config.is_file():
        saved = json.loads(config.read_text())
        fig["config_step"] = saved.get("step") or saved.get("resolved", {}).get("step")
    return fig


def bench_figures(raw: dict) -> dict:
    """Medians of the benchmark's raw runs: s/epoch per pipeline and batch size, ratios, TUI, sweep."""
    compare, eager = raw.get("compare") or {}, raw.get("eager") or {}
    fig: dict = {"machine": next((r["machine"] for r in raw.values() if r), None)}
    runs = compare.get("runs", [])
    for bs in sorted({r["batch_size"] for r in runs}):
        row = {p: median_s(runs, bs, p) for p in ("lecture", "fmtui")}
        row["fmtui_steps"] = sorted({str(r.get("step")) for r in runs if r["pipeline"] == "fmtui"})
        row["test_accuracy"] = {p: mean_acc(runs, bs, p) for p in ("lecture", "fmtui")}
        if row["lecture"] and row["fmtui"]:
            row["speedup"] = row["lecture"] / row["fmtui"]
        row["fmtui_eager"] = median_s(eager.get("runs", []), bs, "fmtui")
        if row["lecture"] and row["fmtui_eager"]:
            row["speedup_eager"] = row["lecture"] / row["fmtui_eager"]
        fig[f"batch_{bs}"] = row
    tui = section(raw, "tui")
    if tui:
        fig["tui_over_headless"] = statistics.median(r["ratio"] for r in tui)
        later = [r["ratio_after_epoch_1"] for r in tui if "ratio_after_epoch_1" in r]
        fig["tui_over_headless_after_epoch_1"] = statistics.median(later) if later else None
        fig["ui_thread_cpu_share"] = statistics.median(r["tui"]["ui_thread_cpu_share"] for r in tui)
    sweep = section(raw, "sweep")
    if sweep:
        for key in ("one_s", "stacked_s", "stacked_over_one", "sequential_over_one"):
            fig[f"sweep_{key}"] = statistics.median(r[key] for r in sweep)
    if compare.get("help_time"):
        fig["help_s"] = compare["help_time"]["median_s"]
    return fig


def section(raw: dict, key: str):
    """The benchmark's figures under key, from whichever of its runs (sections) measured them."""
    return next((r[key] for r in raw.values() if r and r.get(key)), None)


def median_s(runs: list[dict], bs: int, pipeline: str) -> float | None:
    xs = [r["seconds"] for r in runs if r["batch_size"] == bs and r["pipeline"] == pipeline]
    return statistics.median(xs) if xs else None


def mean_acc(runs: list[dict], bs: int, pipeline: str) -> float | None:
    xs = [r["test_accuracy"] for r in runs if r["batch_size"] == bs and r["pipeline"] == pipeline]
    return statistics.fmean(xs) if xs else None


def bench_note(fig: dict) -> str:
    b64, b1024 = fig.get("batch_64", {}), fig.get("batch_1024", {})
    parts = []
    if b64.get("speedup"):
        parts.append(f"batch 64: fmtui {b64['fmtui']:.4f} s/epoch, {b64['speedup']:.1f}x the lecture")
    if b1024.get("fmtui"):
        parts.append(f"batch 1024: {1000 * b1024['fmtui']:.1f} ms/epoch")
    if "sweep_stacked_over_one" in fig:
        parts.append(f"8-run sweep {fig['sweep_stacked_over_one']:.2f}x one run")
    if "tui_over_headless" in fig:
        parts.append(f"TUI/headless {fig['tui_over_headless']:.2f}")
    return "; ".join(parts) or "no figures"


def targets(figures: dict) -> list[dict]:
    """The issue's targets against what this run measured (None where it measured nothing)."""
    cli, bench, scale = figures.get("cli", {}), figures.get("bench", {}), figures.get("scale", {})
    shot = figures.get("screenshot", {})
    dev, cpu = cli.get("device", {}), cli.get("cpu", cli.get("device", {}))
    acc = (dev.get("test_accuracy"), cpu.get("test_accuracy"))
    rows = [
        ("lecture config: training at most 0.5 s", dev.get("train_s"), lambda v: v <= 0.5),
        ("the whole fmtui --no-ui train command (start-up reported)", dev.get("wall_s"), None),
        ("start-up of that command (wall - training - evaluation)", dev.get("startup_s"), None),
        ("same test accuracy as the CPU within 0.5 points", None if None in acc else acc[0] - acc[1], abs_le(0.5)),
        ("batch 64: at least 100x the lecture's pipeline", bench.get("batch_64", {}).get("speedup"), ge(100)),
        ("batch 1024: an epoch in at most 10 ms", bench.get("batch_1024", {}).get("fmtui"), lambda v: v <= 0.010),
        ("the 8-run sweep at most 2x one run", bench.get("sweep_stacked_over_one"), lambda v: v <= 2),
        ("the TUI at most 10% slower than headless", bench.get("tui_over_headless"), lambda v: v <= 1.10),
        ("the lecture experiment (8 runs x 100 epochs) in at most 6 s", scale.get("lecture", {}).get("wall_s"), None),
        ("the dashboard's second Start: first progress (0.5 s + a batch)", shot.get("second_start_progress_s"), None),
        (
            "the second Start replayed the first run's kept graphs (1 = yes)",
            _flag(shot.get("second_start_kept_graphs")),
            None,
        ),
        ("two tune workers on one device: no trial failed", scale.get("tune", {}).get("failed"), lambda v: v == 0),
    ]
    return [
        {"target": t, "value": None if v is None else round(v, 4), "met": None if v is None or f is None else f(v)}
        for t, v, f in rows
    ]


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


def abs_le(limit: float):
    return lambda v: abs(v) <= limit


def ge(limit: float):
    return lambda v: v >= limit


def sweep_figures(lines: list[str], wall: float, rc: int) -> dict:
    """Runs, failures and the best run of one `fmtui --no-ui sweep --json` command, timed whole."""
    events = [json.loads(line) for line in lines if line.startswith('{"event"')]
    runs = [e for e in events if e["event"] == "run"]
    summary = next((e for e in events if e["event"] == "summary"), {})
    failed = [r for r in runs if r.get("status") not in ("completed", "diverged")]
    return {"rc": rc, "wall_s": round(wall, 3), "runs": len(runs), "failed": len(failed), "best": summary.get("best")}


def tune_figures(lines: list[str], wall: float, rc: int) -> dict:
    """Trials by state, and the study's best, of one `fmtui --no-ui tune --json` command, timed whole."""
    events = [json.loads(line) for line in lines if line.startswith('{"event"')]
    trials = [e for e in events if e["event"] == "trial"]
    states: dict[str, int] = {}
    for t in trials:
        states[str(t.get("state"))] = states.get(str(t.get("state")), 0) + 1
    study = next((e for e in events if e["event"] == "study"), {})
    return {
        "rc": rc,
        "wall_s": round(wall, 3),
        "trials": len(trials),
        "states": states,
        "failed": states.get("failed", 0),
        "best_val_accuracy": (study.get("best") or {}).get("val_accuracy"),
    }


def junit_summary(path: Path) -> dict:
    """Counts and the failing tests (with their first message line) from pytest's JUnit XML."""
    if not path.is_file():
        return {}
    out: dict = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "failures": [], "skip_reasons": {}}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if bad is not None:
            out["failed" if bad.tag == "failure" else "errors"] += 1
            message = (bad.get("message") or "").strip().splitlines()
            out["failures"].append(f"{name}: {message[0][:300] if message else bad.tag}")
        elif skipped is not None:
            out["skipped"] += 1
            reason = (skipped.get("message") or "")[:120]
            out["skip_reasons"][reason] = out["skip_reasons"].get(reason, 0) + 1
        else:
            out["passed"] += 1
    return out


# --- children of run ----------------------------------------------------------------------------


def env_report() -> None:
    """What the check runs on: Python, torch, the GPU, where each carried package was imported from."""
    import platform
    from importlib.metadata import PackageNotFoundError, distribution

    import torch

    info: dict = {"python": platform.python_version(), "torch": torch.__version__, "cuda_build": torch.version.cuda}
    info.update(cuda_available=torch.cuda.is_available(), cpus=os.cpu_count(), pythonpath=os.environ.get("PYTHONPATH"))
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        free, total = torch.cuda.mem_get_info()
        info.update(gpu=p.name, capability=f"{p.major}.{p.minor}", sms=p.multi_processor_count)
        info.update(gpu_memory_gib=round(total / 2**30, 1), gpu_free_gib=round(free / 2**30, 1))
    smi = shutil.which("nvidia-smi")
    if smi:
        query = [smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]
        info["nvidia_smi"] = subprocess.run(query, capture_output=True, text=True).stdout.strip()
    packages = {}
    for name in (*MISSING, *PINNED, "torchvision", "numpy", "packaging", "pluggy", "jinja2"):
        try:
            d = distribution(name)
            packages[name] = f"{d.version} ({d.locate_file('')})"
        except PackageNotFoundError:
            packages[name] = None
    info["packages"] = packages
    info["requirement_problems"] = installed_requirement_problems()
    print("ENV " + json.dumps(info), flush=True)


def installed_requirement_problems() -> list[str]:
    """Requirements of the carried packages that the importable versions do not satisfy."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement

    problems = []
    for name in MISSING + PINNED:
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            problems.append(f"{name} not installed")
            continue
        for req in map(Requirement, requires):
            if req.marker and not req.marker.evaluate({"extra": ""}):
                continue
            try:
                have = distribution(req.name).version
            except PackageNotFoundError:
                problems.append(f"{name} needs {req}: not installed")
                continue
            if not req.specifier.contains(have, prereleases=True):
                problems.append(f"{name} needs {req}: {have} installed")
    return problems


async def second_start(pilot, deadline: float) -> float | None:
    """Seconds from a second Start (the same shape: data, statistics and steps kept warm) to the app handling its
    first progress (issue 21: at most 0.5 s plus one batch); None if none came. Timed in the handler: Pilot's
    press returns only once the app has caught up, long after that while a run trains."""
    from fmtui.app import FmtuiApp

    handled: list[float] = []
    real = FmtuiApp.on_training_progress

    def noted(self, message):
        handled.append(time.perf_counter())
        return real(self, message)

    await pilot.press("3")
    FmtuiApp.on_training_progress = noted
    try:
        t0 = time.perf_counter()
        await pilot.press("s")
        while not handled and time.monotonic() < deadline:
            await pilot.pause(0.01)
    finally:
        FmtuiApp.on_training_progress = real
    return round(handled[0] - t0, 3) if handled else None


def screenshot(args: argparse.Namespace) -> None:
    """Train the lecture's config in the real app and photograph the Train pane while it runs."""
    import asyncio

    from fmtui.app import make_app
    from fmtui.config import RunConfig
    from fmtui.sysmetrics import read_system

    runs = tempfile.TemporaryDirectory(prefix="gpu-shot-", ignore_cleanup_errors=True)
    app = make_app(RunConfig(device=args.device, epochs=200), runs_dir=Path(runs.name), autostart=True)
    info: dict = {"during_run": False, "gpu_line": False}
    svg = Path(args.svg)

    def texts() -> dict:
        return {k: str(app.query_one(f"#train-{k}").render()) for k in ("state", "stats", "message")}

    def system() -> list[str]:
        """The Train pane's system metrics lines (none until the run's first sample)."""
        view = app.query_one("#train-system")
        return str(view.render()).splitlines() if view.display else []

    async def shoot() -> None:
        deadline = time.monotonic() + args.limit
        async with app.run_test(size=(120, 36)) as pilot:
            while time.monotonic() < deadline:
                await pilot.pause(0.1)
                epochs = len(app.query_one("#loss-chart").series.get("train", []))
                now = texts()
                ready = epochs >= 2 and "samples/s" in now["stats"] and ("GPU mem" in now["stats"]) == info["want_gpu"]
                lines = system()  # GPU lines wanted on a GPU run (a CPU run on a GPU machine has them too)
                ready = ready and bool(lines) and (any(x.startswith("gpu") for x in lines) or not info["want_gpu"])
                if ready or (not app.activity.busy and epochs):
                    break
            info.update(texts(), epochs_shown=epochs, during_run=app.activity.busy)
            info["gpu_line"] = "GPU mem" in info["stats"]
            info["system_lines"] = system()  # issue 25: GPU system metrics in the dashboard and in the run folder
            info["system_gpu_line"] = any(line.startswith("gpu") for line in info["system_lines"])
            rows = read_system(app.train_pane.run_dir) if app.train_pane.run_dir else []
            info["system_file_gpus"] = len(rows[-1].get("gpus", [])) if rows else None
            app.train_pane.replot()
            await pilot.pause(0.2)
            app.save_screenshot(svg.name, str(svg.parent))
            app.action_stop()
            while app.activity.busy and time.monotonic() < deadline + 30:
                await pilot.pause(0.1)
            info["after_stop"] = texts()["message"]
            from fmtui import graphs

            kept = next(iter(graphs._kept.values()), None)  # the first run's graphed step (on a GPU)
            info["second_start_progress_s"] = await second_start(pilot, deadline + 60)
            app.action_stop()
            while app.activity.busy and time.monotonic() < deadline + 90:
                await pilot.pause(0.1)
            # the second run replayed the first run's graphs (kept, then kept again after it) rather than capturing
            info["second_start_kept_graphs"] = kept is not None and next(iter(graphs._kept.values()), None) is kept

    info["want_gpu"] = args.device == "cuda"
    with runs:
        asyncio.run(shoot())
    print("SHOT " + json.dumps(info), flush=True)


# --- command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare", help="wheels and data for the GPU machine; prints the device call")
    default_data = os.environ.get("FMTUI_DATA_DIR") or ROOT.parent / "shared" / "data"
    p.add_argument("--data-dir", type=Path, default=default_data, help="where Fashion-MNIST is [$FMTUI_DATA_DIR]")
    p.add_argument("--with-mnist", action="store_true", help="carry MNIST too (12 MiB more), for its loading test")
    r = sub.add_parser("run", help="the check itself (on the device; --device cpu --quick: the dry run)")
    r.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    r.add_argument("--out", default=os.environ.get("OUT"), help="folder for the JSON, logs and SVG [$OUT]")
    r.add_argument("--quick", action="store_true", help="toy size: synthetic data, a few tests, 1 epoch")
    r.add_argument("--data-dir", help=f"data folder [{DATA}/, or synthetic with --quick]")
    r.add_argument("--wheels", help=f"folder of wheels to install [{WHEELS}/; none with --quick]")
    r.add_argument("--site", help="where the carried wheels are installed [/tmp/site; a temporary one with --quick]")
    r.add_argument("--budget", type=float, help="seconds for all parts together [300; 150 with --quick]")
    r.add_argument("--tests", nargs="+", help="pytest arguments instead of the whole suite")
    sub.add_parser("env", help="(a child of run) describe the machine as one JSON line")
    s = sub.add_parser("screenshot", help="(a child of run) the Train pane during a run, as SVG")
    s.add_argument("--device", default="cuda")
    s.add_argument("--svg", required=True)
    s.add_argument("--limit", type=float, default=90)
    args = ap.parse_args(argv)
    if args.step == "run":
        if not args.out:
            ap.error("--out is required where $OUT is not set")
        if args.budget is None:
            args.budget = 150 if args.quick else 300
        if args.site is None and not args.quick:
            args.site = "/tmp/site"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.step == "prepare":
        prepare(args)
    elif args.step == "run":
        return Check(args).run()
    elif args.step == "env":
        env_report()
    else:
        screenshot(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

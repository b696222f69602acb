"""The device check's dry run: `scripts/gpu_check.py run --device cpu --quick` makes every part on the CPU,
so the one command a lent GPU gets has run here first (its wheel install too, with a stand-in wheel)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.cli
ROOT = Path(__file__).resolve().parents[1]
PARTS = ("install", "env", "cli", "scale", "screenshot", "bench", "tests")


def probe_wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel, standing in for the carried ones."""
    folder.mkdir()
    path = folder / "gpu_check_probe-1.0-py3-none-any.whl"
    info = "gpu_check_probe-1.0.dist-info"
    files = {
        "gpu_check_probe/__init__.py": "VALUE = 1\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: gpu-check-probe\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return folder


def test_the_dry_run_makes_every_part_and_the_screenshot(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "scripts/gpu_check.py", "run", "--device", "cpu", "--quick", "--budget", "3600"]
    cmd += ["--out", str(out), "--wheels", str(probe_wheel(tmp_path / "wheels"))]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    report = json.loads((out / "gpu-check.json").read_text())
    statuses = {name: part["status"] for name, part in report["parts"].items()}
    assert statuses == dict.fromkeys(PARTS, "passed"), f"{statuses}\n{done.stdout[-3000:]}"
    assert done.returncode == 0 and "=== summary ===" in done.stdout
    assert (out / "train-pane.svg").read_text().startswith("<svg")
    assert sorted(report["check"]["files"]) == ["bench.log", "gpu-check.json", "tests.log", "train-pane.svg"]

    figures = report["figures"]
    assert figures["env"]["pythonpath"].split(os.pathsep)[0] == report["check"]["site"]  # the wheels come first
    assert figures["env"]["cuda_available"] in (True, False) and figures["env"]["torch"]
    assert figures["cli"]["device"]["status"] == "completed" and figures["cli"]["device"]["startup_s"] > 0
    lecture, tune = figures["scale"]["lecture"], figures["scale"]["tune"]  # whole commands, timed
    assert lecture["runs"] == 8 and lecture["failed"] == 0 and lecture["wall_s"] > 0 and lecture["best"]
    assert tune["trials"] == 2 and tune["failed"] == 0 and sum(tune["states"].values()) == 2
    assert figures["screenshot"]["during_run"] and "cpu (" in figures["screenshot"]["state"]
    assert figures["screenshot"]["system_lines"][0].startswith("cpu ")  # the Train pane's system metrics
    assert figures["screenshot"]["second_start_progress_s"] > 0  # the dashboard's second Start, timed
    assert figures["screenshot"]["second_start_kept_graphs"] is False  # no CUDA graphs on the CPU to keep
    assert figures["bench"]["batch_64"]["speedup"] > 0 and figures["bench"]["batch_1024"]["fmtui"] > 0
    assert figures["bench"]["sweep_stacked_over_one"] > 0 and figures["bench"]["tui_over_headless"] > 0
    assert figures["tests"]["passed"] > 0 and figures["tests"]["failed"] == 0
    assert {t["target"] for t in report["targets"]} >= {"the 8-run sweep at most 2x one run"}
    assert all(t["value"] is not None for t in report["targets"])


def test_what_fmtui_and_its_tune_extra_need_is_on_the_device_or_travels():
    """Every requirement of fmtui (and of `fmtui tune`) is in the GPU machine's image or among the carried wheels:
    a new dependency that neither names fails here, before a lent GPU finds it missing."""
    import importlib.util

    from packaging.requirements import Requirement
    from test_import_hygiene import tomllib  # (tomli on Python 3.10)

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needs = [*project["dependencies"], *project["optional-dependencies"]["tune"]]
    there = {check.canon(n) for n in (*check.MISSING, *check.PINNED)} | set(check.DEVICE_HAS)
    assert [r for r in needs if check.canon(Requirement(r).name) not in there] == []

"""scripts/soak.py, the memory soak tool: arguments, the growth summary, a short run on a stand-in command."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_soak():
    spec = importlib.util.spec_from_file_location("soak", ROOT / "scripts" / "soak.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_help_names_the_defaults():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "soak.py"), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--interval" in out.stdout and "tmux -L" in out.stdout


def test_growth_is_counted_after_the_warmup():
    soak = load_soak()
    series = [(0, 10, None), (30, 900, 5), (60, 950, 10), (90, 960, 20), (120, 970, 30), (150, 1000, 40)]
    samples = [soak.Sample(t, rss, epoch, 1) for t, rss, epoch in series]
    summary = soak.summarize(samples, warmup_s=60, limit_mb=40)
    assert summary["rss_at_warmup_mb"] == 950 and summary["growth_after_warmup_mb"] == 50
    assert summary["slope_mb_per_epoch"] == pytest.approx(1.5, abs=0.2) and summary["passed"] is False
    assert summary["median_growth_after_warmup_mb"] == 50
    assert soak.summarize(samples, warmup_s=60, limit_mb=50)["passed"] is True


def test_one_noisy_sample_decides_nothing():
    soak = load_soak()
    rss = [900, 905, 895, 990, 900, 898, 903, 901, 899, 902, 897, 904]  # one swing of +90 MB
    samples = [soak.Sample(30.0 * i, r, 10 * i, 1) for i, r in enumerate(rss)]
    summary = soak.summarize(samples, warmup_s=0, limit_mb=50)
    assert summary["max_growth_after_warmup_mb"] == 90 and summary["passed"] is True
    samples[-3:] = [soak.Sample(30.0 * i, 960, 10 * i, 1) for i in (9, 10, 11)]  # a real rise of 60 MB
    assert soak.summarize(samples, warmup_s=0, limit_mb=50)["passed"] is False


def run_soak(tmp_path, *args):
    """Soak a stand-in command that holds 30 MiB for 3 s (tmux sockets go under tmp_path)."""
    out = tmp_path / "series"
    command = [sys.executable, "-c", "import time; x = bytearray(30 * 2**20); time.sleep(30)"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "soak.py"), "--minutes", "0.05", "--interval", "1"]
        + ["--warmup", "0", "--out", str(out), "--runs-dir", str(tmp_path / "runs"), *args, "--", *command],
        capture_output=True,
        text=True,
        env={**os.environ, "TMUX_TMPDIR": str(tmp_path)},
    )
    data = json.loads(out.with_suffix(".json").read_text())
    csv = out.with_suffix(".csv").read_text().splitlines()
    return done, data, csv


def test_a_headless_soak_samples_the_command_and_writes_the_series(tmp_path):
    done, data, csv = run_soak(tmp_path, "--headless")
    assert done.returncode == 0, done.stderr
    assert csv[0] == "t_s,rss_mb,epoch,pid" and len(csv) == len(data["series"]) + 1 >= 3
    assert data["series"][-1]["rss_mb"] > 30  # the stand-in's 30 MiB buffer, so its own process was sampled
    assert data["summary"]["ended"] == "time" and data["summary"]["passed"] is True


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_a_tmux_soak_kills_its_session(tmp_path):
    socket = f"fmtui-test-soak-{os.getpid()}"
    done, data, _ = run_soak(tmp_path, "--socket", socket, "--quit-wait", "0")
    assert done.returncode == 0, done.stderr
    assert data["tmux"] and data["series"][-1]["rss_mb"] > 30
    env = {**os.environ, "TMUX_TMPDIR": str(tmp_path)}
    left = subprocess.run(["tmux", "-L", socket, "list-sessions"], capture_output=True, text=True, env=env)
    assert left.returncode != 0  # no session (and so no server) is left behind

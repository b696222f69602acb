"""Start-up: `fmtui --help` loads only what it needs; a headless training command imports the engine in the
background while it reads the data (no timing asserted: benchmarks/startup.py measures it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.cli
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


HELP = "import json\nfrom fmtui.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"


def test_help_loads_neither_torch_nor_numpy_nor_the_run_folder_modules():
    loaded = loaded_after(HELP)
    assert "fmtui.cli" in loaded and "fmtui.errors" in loaded
    heavy = {"torch", "numpy", "textual", "fmtui.report", "fmtui.runfolder.read", "fmtui.headless", "fmtui.idx"}
    assert not heavy & loaded


def test_warm_up_imports_the_engine_in_a_thread_and_reads_the_data_meanwhile(tiny_data, tmp_path):
    code = (
        "import json, sys, threading\n"
        "from fmtui import cli, idx\n"
        "from fmtui.config import RunConfig\n"
        f"cli.warm_up([RunConfig(data_dir={str(tiny_data)!r})])\n"
        "thread = cli._engine_import\n"
        "assert thread is not None and thread.daemon and thread is not threading.current_thread()\n"
        "assert idx._load.cache_info().currsize == 1  # the data is read by now\n"
        "cli.warm_up([])\n"
        "assert cli._engine_import is thread  # one thread, whatever the number of calls\n"
        "thread.join()\n"
    )
    loaded = loaded_after(code)
    assert {"fmtui.engine", "torch", "torch._dynamo"} <= loaded


def test_a_headless_train_prints_its_epochs_with_the_engine_imported_in_the_background(tiny_data, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "fmtui", "--no-ui", "train", "--model", "softmax", "--epochs", "1"]
        + ["--batch-size", "100", "--data-dir", str(tiny_data), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "Epoch [1/1]" in out.stdout and out.stderr == ""
    assert list((tmp_path / "cache" / "fmtui" / "decoded").glob("fashion-mnist-*.fmd"))  # the user cache, by XDG


def startup_bench():
    sys.path.insert(0, str(BENCHMARKS))
    import startup

    return startup


def test_the_startup_benchmark_reports_ratios_to_import_torch(tiny_data, tmp_path):
    bench = startup_bench()
    out = tmp_path / "startup.json"
    result = bench.main(
        ["--data-dir", str(tiny_data), "--rounds", "1", "--rerun", "--json", str(out)], log=lambda _: None
    )
    (row,) = result["rounds"]
    assert set(row) == {"torch", "torch+dynamo", "python", "help", "train-cold", "train-warm"} and all(
        v > 0 for v in row.values()
    )
    summary = result["summary"]
    assert summary["torch"]["over_torch"] == 1.0 and summary["help"]["over_torch"] == row["help"] / row["torch"]
    rerun = result["rerun"]
    assert 0 < rerun["second_started_s"] <= rerun["second_progress_s"] and rerun["first_started_s"] > 0
    assert json.loads(out.read_text())["summary"] == summary
    (cpu,) = result["cpu_rounds"]
    assert (
        set(cpu) == set(row) and all(v > 0 for v in cpu.values()) and result["cpu_summary"]["torch"]["over_torch"] == 1
    )
    assert "| train-warm |" in bench.report(result)


def test_the_first_frame_is_timed_in_a_pseudo_terminal(tmp_path):
    bench = startup_bench()
    drawer = "import sys, time\nsys.stdout.write('\\x1b[?1049h'); sys.stdout.flush(); time.sleep(0.2)\n"
    drawer += "sys.stdout.write('x' * 5000); sys.stdout.flush(); time.sleep(60)\n"
    seconds, cpu = bench.timed_first_frame([sys.executable, "-c", drawer], dict(os.environ))
    assert seconds >= 0.2 and cpu > 0  # not before the frame was written; and the drawer, sleeping on, was stopped
    with pytest.raises(RuntimeError, match="no first frame"):
        bench.timed_first_frame([sys.executable, "-c", "print('no frame')"], dict(os.environ), limit=30)

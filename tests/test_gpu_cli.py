"""The CUDA half of the command line: running out of GPU memory is one line, exit 1, the run folder says error.

The `cuda` test runs on a lent GPU (scripts/gpu_check.py); its CPU half below runs everywhere.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_gpu import LEFT_FREE, TOO_BIG, cuda, fill_gpu, out_of_memory_at_first_forward

from fmtui.cli import main as cli_main

pytestmark = pytest.mark.cli
ROOT = Path(__file__).resolve().parents[1]


def assert_one_memory_line(rc: int, stderr: str, run_dir: Path) -> None:
    """Out of memory: one `Error: ...memory...` line and no traceback; exit 1 with the run folder marked error
    (or no folder at all when the memory ran out while the run was being set up, before it started: on the
    H200 the graph capture's warm-up met it first), or exit 2 where fmtui refuses the config up front."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "memory" in errors[0].lower(), stderr
    assert rc in (1, 2), (rc, stderr)
    if rc == 1 and run_dir.exists():
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "error"


@cuda
@pytest.mark.real_data
def test_cuda_out_of_memory_is_one_line_not_a_traceback(real_data, tmp_path):
    """The GPU filled but for LEFT_FREE bytes, by the process that then trains TOO_BIG headless."""
    out = tmp_path / "run"
    hidden, batch = ",".join(map(str, TOO_BIG["hidden"])), str(TOO_BIG["batch_size"])
    args = ["--no-ui", "train", "--device", "cuda", "--hidden", hidden, "--batch-size", batch, "--epochs", "1"]
    args += ["--data-dir", str(real_data), "--out", str(out)]
    code = f"import sys\n{inspect.getsource(fill_gpu)}\nhog = fill_gpu({LEFT_FREE})\n"
    code += "from fmtui.cli import main\nmain(sys.argv[1:])\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    assert_one_memory_line(done.returncode, done.stderr, out)


def test_out_of_memory_during_training_is_one_line(tiny_data, tmp_path, monkeypatch, capsys):
    out_of_memory_at_first_forward(monkeypatch)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:
        cli_main(["--no-ui", "train", "--device", "cpu", "--data-dir", str(tiny_data), "--out", str(out)])
    assert exit_.value.code == 1
    assert_one_memory_line(exit_.value.code, capsys.readouterr().err, out)

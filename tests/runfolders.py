"""Run folders made by the tests: good ones with fixed numbers, a writer process that holds the lock as the
recorder does, and the broken folders of the fault suite (each with the words its reason must contain)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from fmtui.config import RunConfig


def row(epoch: int, acc: float = 80.0) -> dict:
    return {
        "epoch": epoch,
        "train_loss": 0.5,
        "train_accuracy": acc - 1,
        "test_loss": 0.6,
        "test_accuracy": acc,
        "seconds": 1.0,
    }


def write_run(
    path: Path,
    *,
    epochs: int = 3,
    done: int | None = None,
    status: str = "completed",
    config: dict | None = None,
    **fields,
) -> Path:
    """A run folder with `done` epochs (default: all) of fixed numbers and summary.json's status."""
    path.mkdir(parents=True, exist_ok=True)
    cfg = {**RunConfig(**{"model": "softmax", "epochs": epochs, **fields}).to_dict(), **(config or {})}
    (path / "config.json").write_text(json.dumps(cfg))
    rows = [row(e, 70.0 + e % 30) for e in range(1, (epochs if done is None else done) + 1)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "summary.json").write_text(json.dumps({"status": status, "message": status, "epochs_done": len(rows)}))
    return path


# A process that writes a run folder the way the live-run protocol says: it holds the flock on .lock for its
# whole life, writes config.json, summary.json and live.json, and appends one metrics.jsonl line for each
# line it reads on stdin (printing "epoch K" when it is written); at stdin's end it completes the run.
WRITER = r"""
import fcntl, json, os, socket, sys, time
folder, epochs = sys.argv[1], int(sys.argv[2])
os.makedirs(folder, exist_ok=True)
lock = open(os.path.join(folder, ".lock"), "w")
fcntl.flock(lock, fcntl.LOCK_EX)
def put(name, obj):
    tmp = os.path.join(folder, "." + name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, os.path.join(folder, name))
def state(k, status="running"):
    put("summary.json", {"status": status, "message": f"epoch {k}/{epochs}", "epochs_done": k})
    put("live.json", {"status": status, "epoch": k, "epochs": epochs, "heartbeat": time.time(),
                      "pid": os.getpid(), "host": socket.gethostname()})
put("config.json", {"model": "softmax", "epochs": epochs})
state(0)
print("ready", flush=True)
for k, _ in enumerate(sys.stdin, 1):
    with open(os.path.join(folder, "metrics.jsonl"), "a") as f:
        f.write(json.dumps({"epoch": k, "train_loss": 0.5, "train_accuracy": 80.0, "test_loss": 0.6,
                            "test_accuracy": 80.0 + k}) + "\n")
        f.flush()
        os.fsync(f.fileno())
    state(k)
    print(f"epoch {k}", flush=True)
state(k, "completed")
"""


class Writer:
    """The WRITER process on a folder: `epoch()` has it append one epoch and waits until it is written."""

    def __init__(self, folder: Path, epochs: int = 3) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(folder), str(epochs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout.readline().strip() == "ready"

    def epoch(self) -> None:
        self.proc.stdin.write("next\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().startswith("epoch")

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no handler runs, only the kernel releases the lock
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        self.proc.stdin.close()
        self.proc.stdout.close()


# --- the fault suite's broken folders -------------------------------------------------------------------


def _json(name: str, value) -> Callable[[Path], None]:
    return lambda p: (p / name).write_text(json.dumps(value))


def _text(name: str, text: str) -> Callable[[Path], None]:
    return lambda p: (p / name).write_text(text)


def _folder(name: str) -> Callable[[Path], None]:
    def make(p: Path) -> None:
        (p / name).unlink()
        (p / name).mkdir()

    return make


def _config(**values) -> Callable[[Path], None]:
    def make(p: Path) -> None:
        cfg = json.loads((p / "config.json").read_text())
        (p / "config.json").write_text(json.dumps({**cfg, **values}))

    return make


def _metrics_line(line: str) -> Callable[[Path], None]:
    return lambda p: (p / "metrics.jsonl").write_text(json.dumps(row(1)) + "\n" + line + "\n")


def _row(**values) -> Callable[[Path], None]:
    changed = {k: v for k, v in {**row(2), **values}.items() if v is not ...}
    return _metrics_line(json.dumps(changed))


BROKEN = {
    # name: (what breaks the folder, words of the reason: file first)
    "config-list": (_json("config.json", [1, 2]), "config.json: a list, not a JSON object"),
    "config-string": (_json("config.json", "mlp"), "config.json: a string ('mlp'), not a JSON object"),
    "config-hidden-5": (_config(hidden=5), "config.json: hidden is a number (5), expected a list of integers"),
    "config-hidden-text": (_config(hidden=["256", "x"]), "config.json: hidden is a list, expected a list of integers"),
    "config-epochs-text": (_config(epochs="five"), "config.json: epochs is a string ('five'), expected an integer"),
    "config-lr-negative": (_config(lr=-1), "config.json: lr: must be > 0"),
    "config-markup": (_config(norm="[/x]"), "config.json: norm: unknown value '[/x]'"),
    "config-resolved-list": (_config(resolved=[]), "config.json: resolved is a list, expected an object"),
    "config-garbage": (_text("config.json", "{not json"), "config.json: not valid JSON"),
    "config-empty": (_text("config.json", ""), "config.json: empty file"),
    "config-binary": (lambda p: (p / "config.json").write_bytes(b"\xff\xfe{}"), "config.json: not UTF-8 text"),
    "config-folder": (_folder("config.json"), "config.json: a folder, not a file"),
    "metrics-no-test-accuracy": (_row(test_accuracy=...), "metrics.jsonl: line 2 has no test_accuracy"),
    "metrics-list-line": (_metrics_line("[1, 2]"), "metrics.jsonl: line 2 is a list, not a JSON object"),
    "metrics-string-accuracy": (
        _row(test_accuracy="85"),
        "metrics.jsonl: line 2: test_accuracy is a string ('85'), expected a number",
    ),
    "metrics-epoch-one": (_row(epoch="one"), "metrics.jsonl: line 2: epoch is a string ('one'), expected a positive"),
    "metrics-epoch-backwards": (_row(epoch=1), "metrics.jsonl: line 2: epoch 1 does not follow epoch 1"),
    "metrics-accuracy-250": (_row(test_accuracy=250), "metrics.jsonl: line 2: test_accuracy is 250, expected a perc"),
    "metrics-accuracy-nan": (_row(test_accuracy=float("nan")), "metrics.jsonl: line 2: test_accuracy is nan, expected"),
    "metrics-loss-huge-int": (_row(test_loss=10**400), "metrics.jsonl: line 2: test_loss is a number (1000"),
    "metrics-epoch-huge": (_row(epoch=10**30), "metrics.jsonl: line 2: epoch is a number (1000000000000000000000"),
    "metrics-garbage-line": (_metrics_line("{oops"), "metrics.jsonl: not valid JSON"),
    "metrics-folder": (_folder("metrics.jsonl"), "metrics.jsonl: a folder, not a file"),
    "summary-list": (_json("summary.json", []), "summary.json: a list, not a JSON object"),
    "summary-folder": (_folder("summary.json"), "summary.json: a folder, not a file"),
    "summary-empty": (_text("summary.json", ""), "summary.json: empty file"),
    "summary-garbage": (_text("summary.json", "{{{"), "summary.json: not valid JSON"),
    "summary-status-markup": (_json("summary.json", {"status": "[/x]"}), "summary.json: status a string ('[/x]')"),
    "summary-epochs-text": (
        _json("summary.json", {"status": "completed", "epochs_done": "2"}),
        "summary.json: epochs_done is a string ('2'), expected an integer",
    ),
}
"""Every case of issue 10's broken run folders (and their neighbours), by what breaks and what must be said."""


class Evil:
    """A pickle that would run a command if it were ever unpickled without weights_only."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


BROKEN_MODELS = {
    "model-garbage": (lambda p: (p / "model.pt").write_bytes(os.urandom(64)), "model.pt: not a saved model"),
    "model-empty": (_text("model.pt", ""), "model.pt: empty file"),
    "model-malicious": (
        lambda p: (p / "model.pt").write_bytes(pickle.dumps(Evil(p / "PWNED"))),
        "model.pt: not a saved model (UnpicklingError)",
    ),
    "model-folder": (lambda p: (p / "model.pt").mkdir(), "model.pt: a folder, not a file"),
    "model-missing": (lambda p: None, "model.pt: no such file"),
    "model-not-a-state-dict": (_json("model.pt", [1]), "model.pt: not a saved model"),
}
"""model.pt faults (eval only: listing a run never opens its weights)."""


def make_broken(base: Path, name: str, cases: dict = BROKEN) -> Path:
    """A good two-epoch run folder at base/name, then broken as cases[name] says."""
    path = write_run(base / name, epochs=2)
    cases[name][0](path)
    return path

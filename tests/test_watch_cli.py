"""`fmtui watch` (the entry point with a fake terminal and app factory), and the real dashboard under a
pseudo-terminal stopped by SIGTERM, by its terminal hanging up, and going on under nohup when it hangs up."""

import fcntl
import io
import json
import os
import pty
import signal
import struct
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
from runfolders import Writer, write_run
from test_cli import FakeApp, Terminal, fmtui_in

import fmtui.app
import fmtui.cli

pytestmark = pytest.mark.cli

HANG = 300.0
"""Seconds after which a wait gives up: a guard against a hang, never a speed check."""


@pytest.fixture
def app_factory(monkeypatch) -> list[dict]:
    """Replaces the app factory; each call's keyword arguments are recorded."""
    calls = []
    monkeypatch.setattr(fmtui.app, "make_app", lambda config, **kw: calls.append(kw) or FakeApp())
    monkeypatch.setattr(os, "_exit", sys.exit)  # the CLI leaves with os._exit once torch is loaded
    return calls


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FMTUI_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_watch_opens_the_dashboard_on_the_newest_running_run(monkeypatch, app_factory, runs):
    write_run(runs / "20260103-000000-done", status="completed")
    writers = [Writer(runs / name) for name in ("20260101-000000-old", "20260102-000000-new")]
    try:
        assert fmtui_in(monkeypatch, Terminal(), "watch") == 0
    finally:
        for w in writers:
            w.close()
    ((kw),) = app_factory
    assert kw["watch"] == runs / "20260102-000000-new" and kw["signals"] is True


def test_watch_a_given_run_folder_whatever_its_state(monkeypatch, app_factory, runs, tmp_path):
    path = write_run(tmp_path / "elsewhere" / "run", status="completed")
    assert fmtui_in(monkeypatch, Terminal(), "watch", path, "--data-dir", tmp_path / "data") == 0
    ((kw),) = app_factory
    assert kw["watch"] == path and kw["runs_dir"] is None


@pytest.mark.parametrize(
    "args,message",
    [
        (
            [],
            "Error: no run is training in {runs} (a run shows there a few seconds after it starts, once its data is"
            " loaded; fmtui runs lists the others; or give RUN_DIR)",
        ),
        (["{runs}/nothing"], "Error: {runs}/nothing: no such folder"),
        (["{runs}"], "Error: {runs}: not a fmtui run folder (no config.json)"),
    ],
    ids=["nothing running", "no such folder", "not a run"],
)
def test_nothing_to_watch_is_one_line_and_exit_2(monkeypatch, capsys, app_factory, runs, args, message):
    write_run(runs / "20260101-000000-done", status="completed")
    assert fmtui_in(monkeypatch, Terminal(), "watch", *[a.format(runs=runs) for a in args]) == 2
    assert capsys.readouterr().err == message.format(runs=runs) + "\n"
    assert app_factory == []


def test_watch_without_the_dashboard_is_a_usage_error(monkeypatch, capsys, app_factory, runs):
    assert fmtui_in(monkeypatch, io.StringIO(), "--no-ui", "watch") == 2
    assert "watch opens the dashboard; for a look without it: fmtui runs" in capsys.readouterr().err


# --- the real dashboard under a pseudo-terminal ----------------------------------------------------------


class Dashboard:
    """`fmtui ARGS` on a pseudo-terminal of 120x40, its output drained by a thread (a full terminal blocks)."""

    def __init__(self, *args, ignore_hangup: bool = False) -> None:
        self.pid, self.master = pty.fork()
        if self.pid == 0:  # the child: the dashboard, its terminal the pty
            if ignore_hangup:
                signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as nohup does
            os.environ["TERM"] = "xterm-256color"
            os.execv(sys.executable, [sys.executable, "-m", "fmtui", *map(str, args)])
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.output = bytearray()
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the master was closed (a hang-up), or the child ended
                return
            if not data:
                return
            self.output.extend(data)

    def hang_up(self) -> None:
        """The terminal goes away, as when an SSH session drops: the kernel sends SIGHUP, writes fail."""
        os.close(self.master)

    def wait(self) -> int | None:
        """The exit code; None (after killing it) when it did not end within HANG seconds."""
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        return None


def run_folder(runs: Path, epochs: int = 1) -> Path:
    """The run folder once it has `epochs` complete epochs."""
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline:
        done = [p for p in runs.glob("*/metrics.jsonl") if len(p.read_text().splitlines()) >= epochs]
        if done:
            return done[0].parent
        time.sleep(0.05)
    raise AssertionError(f"no run folder with {epochs} epochs in {runs}")


def summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def dashboard_training(tiny_data: Path, runs: Path, **kw) -> Dashboard:
    return Dashboard(
        "train", "--data-dir", tiny_data, "--batch-size", 4, "--epochs", 200, "--runs-dir", runs, **kw
    )  # the dashboard opens and trains


def test_sigterm_stops_the_dashboard_its_run_names_it_and_the_terminal_is_restored(tiny_data, tmp_path):
    runs = tmp_path / "runs"
    app = dashboard_training(tiny_data, runs)
    try:
        folder = run_folder(runs)
        os.kill(app.pid, signal.SIGTERM)
        assert app.wait() == 128 + signal.SIGTERM
    finally:
        app.hang_up()
    assert summary(folder)["status"] == "stopped"
    assert summary(folder)["message"].startswith("stopped by SIGTERM during epoch ")
    app.reader.join(timeout=HANG)
    tail = bytes(app.output[-400:])
    assert b"\x1b[?1049l" in tail and b"\x1b[?25h" in tail  # left the alternate screen, cursor shown again
    assert b"Traceback" not in app.output


def test_a_terminal_that_hangs_up_stops_the_dashboard_without_hanging(tiny_data, tmp_path):
    runs = tmp_path / "runs"
    app = dashboard_training(tiny_data, runs)
    folder = run_folder(runs)
    app.hang_up()
    assert app.wait() == 128 + signal.SIGHUP
    assert summary(folder)["status"] == "stopped"
    assert summary(folder)["message"].startswith("stopped by SIGHUP during epoch ")


def test_under_nohup_a_hang_up_does_not_stop_the_dashboard_and_sigterm_still_does(tiny_data, tmp_path):
    """With its terminal gone, the dashboard's frames go nowhere: it trains on, and can still be stopped."""
    runs = tmp_path / "runs"
    app = dashboard_training(tiny_data, runs, ignore_hangup=True)
    folder = run_folder(runs)
    app.hang_up()
    before = summary(folder)["epochs_done"]
    run_folder(runs, epochs=before + 2)  # training goes on
    os.kill(app.pid, signal.SIGTERM)
    assert app.wait() == 128 + signal.SIGTERM  # not stuck on writing to a terminal that is gone
    assert summary(folder)["message"].startswith("stopped by SIGTERM during epoch ")


# --- the start-up benchmark ----------------------------------------------------------------------------------


def test_the_watch_startup_benchmark_times_a_real_watch_that_imports_no_torch(tmp_path):
    """benchmarks/watch_startup.py end to end (no timing asserted): the dashboard under a pseudo-terminal showed the
    run's last epoch, without torch, and the reference was measured beside it."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import watch_startup
    finally:
        sys.path.pop(0)
    lines: list[str] = []
    result = watch_startup.main(["--repeats", "1", "--epochs", "3", "--json", str(tmp_path / "w.json")], lines.append)
    (shown,) = result["watch_epochs_shown_s"]
    assert shown > 0 and result["torch_loaded_when_shown"] == [False] and len(result["import_torch_s"]) == 1
    assert "epochs shown / import torch: " in "\n".join(lines)
    assert json.loads((tmp_path / "w.json").read_text())["epochs"] == 3

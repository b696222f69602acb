"""The headless progress bar is drawn on stderr whenever stderr is a terminal, and stdout keeps the lines:
`fmtui train --no-ui > log` shows the bar while the log gets the epoch lines. Real fmtui processes with a
pseudo-terminal (pty.openpty) for one stream and a pipe for the other, and the reverse."""

from __future__ import annotations

import fcntl
import json
import os
import re
import struct
import subprocess
import sys
import termios
import threading

import pytest
from test_cli import EPOCH_LINE
from test_faults_input import PAUSE_AT_BATCH, assert_run_completed

pytestmark = pytest.mark.cli

ESC = "\x1b"


class Terminal:
    """A pseudo-terminal 200 columns wide whose output is read in a thread until its last writer closes it."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        self.seen = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)

    def start(self, read: bool = True) -> None:
        """Once the child holds the slave end: close ours, so that the reader ends when the child does."""
        os.close(self.slave)
        if read:
            self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: every writer closed the terminal
                chunk = b""
            self.seen.extend(chunk)
            if not chunk:
                return

    def read_until(self, text: bytes) -> None:
        """Read here (no reader thread) until text was drawn."""
        while text not in self.seen:
            chunk = os.read(self.master, 4096)
            assert chunk, bytes(self.seen)
            self.seen.extend(chunk)

    def text(self) -> str:
        self.reader.join(timeout=300)
        os.close(self.master)
        return self.seen.decode(errors="replace")


def fmtui_on(terminal_for: str, tiny_data, tmp_path, *args) -> tuple[int, str, str]:
    """Run fmtui with `terminal_for` ("stdout", "stderr" or "both") on a pty and the other stream on a pipe;
    return its exit code, what the pipe got and what the terminal got."""
    term = Terminal()
    pipe = subprocess.PIPE
    streams = {"stdout": (term.slave, pipe), "stderr": (pipe, term.slave), "both": (term.slave, term.slave)}
    stdout, stderr = streams[terminal_for]
    where = ["--data-dir", tiny_data, "--runs-dir", tmp_path / "runs"]
    command = [sys.executable, "-m", "fmtui", "--no-ui", *map(str, args), *map(str, where)]
    proc = subprocess.Popen(command, stdout=stdout, stderr=stderr, env={**os.environ, "FMTUI_NO_DOWNLOAD": "1"})
    term.start()
    try:
        out, err = proc.communicate(timeout=300)  # guards against a hang; measures nothing
    finally:
        proc.kill()
    piped = (out if terminal_for == "stderr" else err) or b""
    return proc.returncode, piped.decode(), term.text()


TRAIN = ["train", "--epochs", 2, "--batch-size", 32, "--progress-interval", 0]


def test_with_stdout_redirected_the_bar_is_on_the_terminal_and_the_lines_in_the_file(tiny_data, tmp_path):
    """`fmtui train --no-ui > log`: the bar draws on stderr's terminal; the log holds the lines, no bar."""
    code, log, terminal = fmtui_on("stderr", tiny_data, tmp_path, *TRAIN)
    assert code == 0, (log, terminal)
    lines = log.splitlines()
    assert lines[0].startswith("Fashion-MNIST (600 train / 200 test)") and lines[-1].startswith("Done: Finished")
    assert [m.groups() for m in map(EPOCH_LINE.match, lines) if m] == [("1", "2"), ("2", "2")]
    assert ESC not in log and "of the run" not in log
    assert "Epoch 2/2 · batch 19/19" in terminal and "100% of the run" in terminal
    assert "Epoch [1/2]" not in terminal  # the lines are stdout's


def test_with_stderr_redirected_the_terminal_gets_the_lines_and_no_bar(tiny_data, tmp_path):
    """`fmtui train --no-ui 2> err`: no terminal to draw a bar on; the lines reach stdout's terminal."""
    code, err, terminal = fmtui_on("stdout", tiny_data, tmp_path, *TRAIN)
    assert code == 0 and err == "", err
    assert [m.groups() for m in map(EPOCH_LINE.match, terminal.splitlines()) if m] == [("1", "2"), ("2", "2")]
    assert "of the run" not in terminal and "Done: Finished 2 epochs" in terminal


def test_one_terminal_for_both_shows_the_lines_above_the_bar(tiny_data, tmp_path):
    code, _, terminal = fmtui_on("both", tiny_data, tmp_path, *TRAIN)
    assert code == 0, terminal
    assert "100% of the run" in terminal and terminal.index("Epoch [1/2]") < terminal.index("Epoch [2/2]")
    for epoch in (1, 2):  # each line starts a line of its own, where the bar was erased, never behind it
        assert re.search(rf"(^|{ESC}\[2K)Epoch \[{epoch}/2\]", terminal, re.M), terminal[-2000:]
    last = terminal.rstrip().splitlines()[-1].split(ESC + "[2K")[-1]  # after the bar's line is erased
    assert last.startswith("Done: Finished 2 epochs"), terminal


def test_json_puts_nothing_on_a_terminal_stderr(tiny_data, tmp_path):
    code, out, terminal = fmtui_on("stderr", tiny_data, tmp_path, *TRAIN, "--json")
    assert code == 0 and terminal == "", terminal
    events = [json.loads(line)["event"] for line in out.splitlines()]
    assert events[0] == "started" and events[-1] == "finished" and "progress" in events


@pytest.mark.parametrize(
    "args,bar,line",
    [
        (["sweep", "--lr", "0.1,0.01", "--model", "softmax,mlp", "--epochs", 2], "4/4 runs done", "[4/4] "),
        (["lr-find", "--steps", 60, "--end-lr", 1], "lr finder · step 60/60", "Suggested learning rate"),
    ],
    ids=["sweep", "lr-find"],
)
def test_sweep_and_lr_find_draw_their_bar_on_stderr(tiny_data, tmp_path, args, bar, line):
    code, out, terminal = fmtui_on("stderr", tiny_data, tmp_path, *args)
    assert code in (0, 1) and line in out and ESC not in out, (out, terminal)  # lr-find: 1 without a suggestion
    assert bar in terminal and "%" in terminal and line not in terminal


def test_a_terminal_that_goes_away_under_the_bar_does_not_end_the_run(tiny_data, tmp_path):
    """stderr is a terminal (the bar draws there) that closes mid-run: the run trains to the end, stdout (a
    pipe) gets every line, the exit code is the run's."""
    out, go = tmp_path / "run", tmp_path / "go"
    term = Terminal()
    args = ["--no-ui", "train", "--model", "softmax", "--epochs", 3, "--batch-size", 200, "--out", out]
    command = [sys.executable, "-c", PAUSE_AT_BATCH, "2", str(go), *map(str, args), "--data-dir", str(tiny_data)]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=term.slave, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    term.start(read=False)
    try:
        term.read_until(b"of the run")
        os.close(term.master)  # the terminal goes away: writes to stderr now fail (EIO)
        go.touch()
        lines = proc.communicate(timeout=300)[0].decode().splitlines()  # guards against a hang
    finally:
        proc.kill()
    assert proc.returncode == 0, lines
    assert len([line for line in lines if EPOCH_LINE.match(line)]) == 3 and lines[-1].startswith("Done: Finished")
    assert_run_completed(out, 3)

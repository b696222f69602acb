"""Standard output that a closed reader cannot break: `fmtui --no-ui train | head -1`, `>&-`, a vanished terminal.

What fmtui prints is a view of what the run folders record; losing the view must not lose the run. When a write
to stdout fails (a broken pipe, a terminal gone, a full disk behind `> log`), stdout is pointed at /dev/null, one
note goes to stderr, and the command carries on: training goes on to the end and exits with the run's code.
A stdout that was closed before fmtui started gets the same note. Standard library only: the CLI loads it first.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

NOTE = "Note: stdout {why}; fmtui goes on without printing to it (run folders keep every result)"


class OutputGuard:
    """A text stream that passes everything to `stream` until a write or flush fails with OSError; from then
    on it drops what it is given. `on_lost(why)` is called once, at that moment ("cannot be written (Broken pipe)")."""

    def __init__(self, stream: TextIO, on_lost: Callable[[str], Any] | None = None):
        self.stream, self.on_lost, self.lost = stream, on_lost, False

    def write(self, text: str) -> int:
        if not self.lost:
            try:
                return self.stream.write(text)
            except OSError as e:
                self.lose(f"cannot be written ({e.strerror or type(e).__name__})")
        return len(text)

    def flush(self) -> None:
        if not self.lost:
            try:
                self.stream.flush()
            except OSError as e:
                self.lose(f"cannot be written ({e.strerror or type(e).__name__})")

    def isatty(self) -> bool:
        return not self.lost and self.stream.isatty()

    def lose(self, reason: str) -> None:
        """Stop writing; what is still buffered, and what C code writes to the descriptor, goes to /dev/null."""
        self.lost = True
        _to_devnull(self.stream)
        if self.on_lost is not None:
            self.on_lost(reason)

    def __getattr__(self, name: str) -> Any:  # encoding, errors, fileno, buffer...: click and Rich ask for them
        return getattr(self.stream, name)


def _to_devnull(stream: TextIO) -> None:
    try:
        fd = stream.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
        stream.flush()  # the bytes a broken pipe refused, now into /dev/null: nothing fails again at exit
    except (OSError, ValueError):  # no descriptor (a StringIO), or the stream is closed: nothing to redirect
        pass


def _reopen(fd: int) -> TextIO:
    """A stream for a standard descriptor that was closed when Python started (sys.stdout is then None): the
    descriptor is taken by /dev/null, so that no file fmtui opens later gets it and receives stray output."""
    try:
        os.fstat(fd)
    except OSError:
        null = os.open(os.devnull, os.O_WRONLY)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    return open(os.devnull, "w", encoding="utf-8")  # closed by guarded_output


@contextmanager
def guarded_terminal() -> Iterator[None]:
    """Guard the stream the dashboard draws on (sys.__stderr__: Textual's driver writes its frames there from a
    thread) while the dashboard runs. When the terminal hangs up (a dropped SSH session) a write fails with EIO:
    unguarded, Textual's writer thread would die of it, and the app then wait forever for room to write its
    next frames; guarded, the frames go to /dev/null and the app can stop (or go on, under nohup)."""
    saved = sys.__stderr__
    if saved is None:
        yield
        return
    sys.__stderr__ = OutputGuard(saved)  # type: ignore[misc]
    try:
        yield
    finally:
        sys.__stderr__ = saved  # type: ignore[misc]


@contextmanager
def guarded_output() -> Iterator[None]:
    """Guard sys.stdout (with a note on stderr when it is lost) and sys.stderr, for the duration of a command."""
    saved = sys.stdout, sys.stderr
    opened = []
    if sys.stderr is None:
        sys.stderr = _reopen(2)
        opened.append(sys.stderr)
    err = OutputGuard(sys.stderr)

    def note(why: str) -> None:
        print(NOTE.format(why=why), file=err, flush=True)

    if sys.stdout is None:
        sys.stdout = _reopen(1)
        opened.append(sys.stdout)
        out = OutputGuard(sys.stdout, note)
        out.lose("was closed before fmtui started")
    else:
        out = OutputGuard(sys.stdout, note)
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        out.flush()
        sys.stdout, sys.stderr = saved
        for stream in opened:
            stream.close()

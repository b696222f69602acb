"""Signals, handled in one place: Ctrl+C (SIGINT), SIGTERM (kill, a job scheduler), SIGHUP (a dropped SSH
session) and SIGQUIT (Ctrl+\\) end every command the same way, with exit code 128 + the signal's number
(130, 143, 129, 131) and one line, never by the default action (a core dump for SIGQUIT).

`install()` is the first thing the command line does, before click parses anything and long before torch is
imported or data loaded: until a command has something to keep, a signal ends fmtui at once ("Interrupted by
SIGTERM."). A command that trains (train, sweep, lr-find) arms a `Stop` with `stopping()`: the first signal
then asks training to stop after its current batch (the run folder keeps the finished epochs), a second one
aborts (KeyboardInterrupt: the run is recorded as an error), a third leaves at once. After the command, the
quick exit is back in place. A signal that was ignored when fmtui started stays ignored (`nohup`).
The dashboard takes these signals over on its own event loop (fmtui.app_live) while it runs.

Standard library only: this module is imported by the command line before anything heavy.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fmtui.errors import ExitCode

STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
"""Signals that stop fmtui: Ctrl+C, kill, a dropped SSH session, Ctrl+\\."""


def label(signum: int) -> str:
    """How a signal is named to people: `Ctrl+C` for SIGINT, else its name (`SIGTERM`)."""
    return "Ctrl+C" if signum == signal.SIGINT else signal.Signals(signum).name


class Stop:
    """What the signals asked of a command: nothing yet; stop after the current batch (the first one); abort
    (the second one raises KeyboardInterrupt); a third one leaves at once."""

    def __init__(self, after: str = "after the current batch") -> None:
        self.after = after
        """What the first signal does, as its line says: `stopping after the current batch` ("": the command
        says it itself)."""
        self.event = threading.Event()
        self.signum: int | None = None
        """The signal that stopped the run, then the one that aborted it (None: none came)."""
        self.aborting = False

    def is_set(self) -> bool:
        return self.event.is_set()

    def set(self, signum: int = signal.SIGINT) -> None:
        self.signum = self.signum or signum
        self.event.set()

    def reason(self) -> str | bool:
        """The engine's stop check: False goes on; True (Ctrl+C) stops; a signal's name stops and says so."""
        if not self.event.is_set():
            return False
        return True if self.signum in (None, signal.SIGINT) else label(self.signum)

    @property
    def exit_code(self) -> ExitCode:
        """128 + the signal that stopped the command (130 when it was stopped otherwise)."""
        return ExitCode.of_signal(self.signum or signal.SIGINT)

    def handler(self, signum: int, frame: Any) -> None:
        name = label(signum)
        if self.aborting:  # the third signal: leave now
            leave(signum)
        if self.event.is_set():
            self.aborting, self.signum = True, signum
            raise KeyboardInterrupt(f"aborted by a second {name}")
        self.set(signum)
        if not self.after:
            return
        again = "Ctrl+C again" if signum == signal.SIGINT else f"{name} or Ctrl+C again"
        print(f"\n{name}: stopping {self.after} ({again} to abort)...", file=sys.stderr, flush=True)


_armed: Stop | None = None
"""The Stop of the command that trains now; None: a signal ends fmtui at once."""
_taken: dict[int, Any] = {}
"""The signals `install` took, with the handler each had before."""


def leave(signum: int) -> None:
    """End the process now with 128 + signum and one line on stderr (nothing is running that could be kept)."""
    try:
        sys.stdout.flush()
    except Exception:  # the main thread may be inside a write to the same stream: its bytes are not ours to save
        pass
    os.write(2, f"\nInterrupted by {label(signum)}.\n".encode())
    os._exit(ExitCode.of_signal(signum))


def _handle(signum: int, frame: Any) -> None:
    stop = _armed
    if stop is None:
        leave(signum)
    else:
        stop.handler(signum, frame)


def _signums() -> list[int]:
    return [s for name in STOP_SIGNALS if (s := getattr(signal, name, None)) is not None]


def install() -> None:
    """Handle STOP_SIGNALS from now on (see the module's docstring); again after something replaced the
    handlers (the dashboard's event loop). Signals ignored at the first call stay ignored. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in _signums():
        current = signal.getsignal(signum)
        if signum not in _taken:
            if current == signal.SIG_IGN:
                continue
            _taken[signum] = current
        if current is not _handle:
            signal.signal(signum, _handle)


def uninstall() -> None:
    """Give the signals back the handlers they had before `install` (the command line, as it returns)."""
    for signum, previous in list(_taken.items()):
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        del _taken[signum]


@contextmanager
def stopping(after: str = "after the current batch") -> Iterator[Stop]:
    """A command that trains: the first stop signal stops it after the current batch, the second aborts it.
    (`after` says what the first signal does in a command that does not train; "" when that command says it
    itself, as `fmtui export --follow` does.)

    Installs the handlers if the command line has not (a caller of fmtui.headless from Python); outside the
    main thread no handler can be installed, and only `set` stops."""
    global _armed
    stop = Stop(after)
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    mine = not _taken
    install()
    before, _armed = _armed, stop
    try:
        yield stop
    finally:
        _armed = before
        if mine:
            uninstall()

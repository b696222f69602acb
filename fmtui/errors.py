"""fmtui's errors: one tree of exceptions that know their one-line message and their exit code, the exit codes
themselves, and the one printer of a one-line error.

Standard library only (no torch, no click, no textual; the run folder's schema for one file name), so every
layer can raise and catch these, and the command line can turn any of them into `Error: <one line>` and its
exit code without importing the engine.
Errors are told apart by isinstance, never by their class's name.
"""

from __future__ import annotations

import sys
from enum import IntEnum
from pathlib import Path
from typing import TextIO

from fmtui.runfolder.schema import METRICS


class ExitCode(IntEnum):
    """What a `fmtui --no-ui` command returns to the shell."""

    OK = 0
    """The run completed, or the command did what it was asked."""
    FAILED = 1
    """The run diverged or failed (out of memory, a full disk, ...); its metrics so far are saved."""
    USAGE = 2
    """Bad input (an option, a missing or broken dataset, a folder that is no run): nothing was trained."""
    HANGUP = 129
    """Stopped by SIGHUP (128 + 1: the terminal or SSH session went away); the finished epochs are kept."""
    INTERRUPTED = 130
    """Stopped by Ctrl+C (128 + SIGINT, as shells count it); the finished epochs or runs are kept."""
    QUIT = 131
    """Stopped by SIGQUIT (128 + 3, Ctrl+\\); the finished epochs are kept."""
    TERMINATED = 143
    """Stopped by SIGTERM (128 + 15, `kill`, a job scheduler); the finished epochs are kept."""

    @classmethod
    def of_status(cls, status: str) -> ExitCode:
        """The code of a run that ended with Finished(status): completed, stopped, or anything else (diverged)."""
        return {"completed": cls.OK, "stopped": cls.INTERRUPTED}.get(str(status), cls.FAILED)

    @classmethod
    def of_signal(cls, signum: int) -> ExitCode:
        """The code of a run stopped (or aborted) by a signal: 128 + its number, as a shell reports a process
        killed by it, so scripts see the same code whether fmtui stopped cleanly or not."""
        return cls(128 + signum)


class FmtuiError(Exception):
    """An error meant for the user: str(e) is one line, `exit_code` what a command returns for it."""

    exit_code: int = ExitCode.USAGE

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self)


class UsageError(FmtuiError):
    """Bad input that is no misuse of one option (a folder that cannot be used, ...): exit 2, nothing done."""


class ConfigError(FmtuiError, ValueError):
    """A bad value for a run option: which field and why, for one line meant for the user.

    `field` is the RunConfig field whose value is bad, or None when no single field is to blame (a bad
    combination, an unavailable device); `reason` is the line without the option's name. str(e) is
    "--lr: must be > 0, got 0" when there is a field, else the reason alone. `option` is the option's name
    as typed, when it is not the field's with dashes (fmtui.config.parse_field passes it).
    """

    def __init__(self, reason: str, field: str | None = None, option: str | None = None) -> None:
        self.reason, self.field = reason, field
        name = option or (field or "").replace("_", "-")
        super().__init__(f"--{name}: {reason}" if field else reason)


class DataError(FmtuiError, RuntimeError):
    """Dataset files missing, unreadable or inconsistent; the message is one line for the user (exit 2)."""


class RunError(FmtuiError, ValueError):
    """A run folder, or one of its files, that cannot be read: str(e) is one line naming the file (exit 2)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: {reason}")


class RunFolderRefused(FmtuiError):
    """A folder this process must not write: another writer holds it, or it cannot be resumed (exit 2)."""


class RunFolderError(FmtuiError):
    """A run folder could not be written (a full disk, a read-only mount, ...). The message is one line that
    names the file and the cause; `short` names the file only (for summary.json); `began` says whether
    training had begun: after it, a failure (exit 1); before it, bad input (exit 2): nothing was lost."""

    def __init__(self, message: str, short: str, began: bool = True) -> None:
        super().__init__(message)
        self.short, self.began = short, began

    @property  # type: ignore[override]
    def exit_code(self) -> int:
        return ExitCode.FAILED if self.began else ExitCode.USAGE


class StopRefused(FmtuiError):
    """A watched run's process cannot (or must not) be signalled from here; str(e) says why, in one line."""


class ExportError(FmtuiError, ValueError):
    """Nothing was exported: the extra is missing or a target folder cannot be used (one line, exit 2)."""


def error_message(exc: BaseException) -> str:
    """One line for the user: our own errors as they are, device errors with a hint, the rest named."""
    text = next(iter(str(exc).strip().splitlines()), "")
    if isinstance(exc, KeyboardInterrupt):
        return text or "aborted by a second Ctrl+C"
    if isinstance(exc, FmtuiError):
        return text
    if _out_of_gpu_memory(exc):
        return f"out of GPU memory: try a smaller batch size or model ({text[:100]})"
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _out_of_gpu_memory(exc: BaseException) -> bool:
    """torch.cuda.OutOfMemoryError, asked only of a torch already imported (an error that is one came from it)."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    oom = getattr(cuda, "OutOfMemoryError", None)
    return isinstance(oom, type) and isinstance(exc, oom)


def error_line(message: str, run_dir: Path | None = None) -> str:
    """`Error: <one line>`, and where the metrics of the epochs so far are when a run folder holds some."""
    from fmtui.text import safe_text

    line = f"Error: {safe_text(message)}"
    if run_dir is None:
        return line
    if (Path(run_dir) / METRICS).is_file():
        return f"{line}; metrics so far are in {safe_text(str(run_dir))}"
    return f"{line}; no epoch was saved in {safe_text(str(run_dir))}"


def print_error(error: BaseException | str, run_dir: Path | None = None, file: TextIO | None = None) -> None:
    """The one printer of one-line errors: `Error: ...` on stderr (control characters escaped)."""
    message = error if isinstance(error, str) else error_message(error)
    print(error_line(message, run_dir), file=file or sys.stderr, flush=True)

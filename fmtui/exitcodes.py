"""What a `fmtui --no-ui` command returns to the shell: its own small module, so that the command line
knows the codes without importing the reports (fmtui.report re-exports it, where the codes are used)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a `fmtui --no-ui` command returns to the shell."""

    OK = 0
    """The run completed, or the command did what it was asked."""
    FAILED = 1
    """The run diverged or failed on the device (out of memory, ...); its metrics so far are saved."""
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
        return {"completed": cls.OK, "stopped": cls.INTERRUPTED}.get(status, cls.FAILED)

    @classmethod
    def of_signal(cls, signum: int) -> ExitCode:
        """The code of a run stopped (or aborted) by a signal: 128 + its number, as a shell reports a process
        killed by it, so scripts see the same code whether fmtui stopped cleanly or not."""
        return cls(128 + signum)

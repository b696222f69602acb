"""`fmtui --no-ui train` (and `train --resume`): one run through fmtui.session, shown by a reporter; signals
stop it after the current batch (fmtui.signals); every error is one line and an exit code (fmtui.errors)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from fmtui import signals
from fmtui.config import RunConfig
from fmtui.errors import ConfigError, ExitCode, FmtuiError, RunFolderError, RunFolderRefused, print_error
from fmtui.events import Finished, Started
from fmtui.headless.folders import check_out, prepare_out
from fmtui.headless.reporters import Reporter, make_reporter
from fmtui.report import closing_line
from fmtui.runfolder.schema import Status
from fmtui.text import safe_text


def run_training(
    cfg: RunConfig,
    *,
    out: Path | None = None,
    runs_dir: Path | None = None,
    json_mode: bool = False,
    reporter: Reporter | None = None,
    progress_interval: float = 0.1,
) -> int:
    """Train headless, write the run folder, report; return the exit code."""
    check_out(out)
    rep = reporter or make_reporter(json_mode)
    return _train(
        dict(config=cfg, folder=lambda c: prepare_out(out, runs_dir, c)), cfg, rep, json_mode, progress_interval
    )


def resume_training(
    run_dir: Path,
    *,
    epochs: int | None = None,
    json_mode: bool = False,
    reporter: Reporter | None = None,
    progress_interval: float = 0.1,
    take_over: bool = False,
    **changes: Any,
) -> int:
    """Go on training an interrupted, stopped or completed run in its own folder (fmtui.resume.open_resume
    says which can); `epochs` is the total to reach; `take_over` lets it go on from another host's writer.
    Return the exit code."""
    from fmtui.resume import open_resume

    resume = open_resume(run_dir, epochs, take_over=take_over, **changes)  # RunFolderRefused: one line, exit 2
    try:
        rep = reporter or make_reporter(json_mode)
        return _train(dict(resume=resume), resume.config, rep, json_mode, progress_interval)
    finally:
        resume.close()  # (the session closes it when training ends; this covers an error before it began)


def _train(what: dict[str, Any], cfg: RunConfig, reporter: Reporter, json_mode: bool, interval: float) -> int:
    """The events of one run (fmtui.session.train_and_record(**what)) into the reporter, signals stopping it;
    errors become one line. The engine (torch) is imported first: a signal while it loads ends fmtui at once,
    as nothing is begun; one that comes while the data loads stops the run before its first batch."""
    import fmtui.engine  # noqa: F401  (see above)
    from fmtui.session import train_and_record

    resume = what.get("resume")
    folder: Path | None = resume.path if resume is not None else None
    ev: Any = None
    with signals.stopping() as stop, reporter as rep:
        try:
            for ev, path in train_and_record(**what, should_stop=stop.reason, progress_interval=interval):
                folder = path
                rep.handle(ev, path)
                if isinstance(ev, Started) and ev.resumed_from and not json_mode:
                    rep.print(f"Resumed {safe_text(str(path))} after epoch {ev.resumed_from} of {cfg.epochs}")
        except ConfigError as e:
            if resume is not None:  # the folder, not an option, is to blame
                raise RunFolderRefused(f"cannot resume {safe_text(str(resume.path))}: {e}") from None
            raise click.UsageError(str(e)) from None
        except RunFolderError as e:  # the disk is full, read-only, ...: after training began, a failure
            return failed(e, folder if e.began else None, e.exit_code)
        except FmtuiError:  # bad data, a folder another writer took first: one line, exit 2 (fmtui.cli)
            raise
        except KeyboardInterrupt as e:  # a second signal: the run folder records the abort
            return failed(e, folder, stop.exit_code)
        except Exception as e:  # device errors (CUDA out of memory, ...): one line, metrics kept
            return failed(e, folder, ExitCode.FAILED, debug=True)
    return _closing(ev, folder, json_mode, stop)


def failed(exc: BaseException, run_dir: Path | None, code: int, debug: bool = False) -> int:
    """An error ended the run (the recorder has written it into the run folder): say so, in one line."""
    if debug and os.environ.get("FMTUI_DEBUG"):
        raise exc
    print_error(exc, run_dir)
    return code


def _closing(ev: Finished, run_dir: Path | None, json_mode: bool, stop: signals.Stop) -> int:
    if not json_mode:
        click.echo(closing_line(ev, run_dir), err=ev.status != Status.COMPLETED)
    return stop.exit_code if ev.status == Status.STOPPED else ExitCode.of_status(ev.status)

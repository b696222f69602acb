"""`fmtui eval RUN_DIR`: a run folder's saved model evaluated again on the test split."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from fmtui.errors import ExitCode, FmtuiError, RunError
from fmtui.headless.train import failed
from fmtui.report import eval_diverged, eval_note, eval_text, json_line
from fmtui.runfolder.read import read_run
from fmtui.runfolder.schema import MODEL, Status
from fmtui.runfolder.tensors import load_state_dict
from fmtui.text import safe_text


def run_eval(run_dir: Path, *, device: str | None = None, data_dir: Path | None = None, json_mode: bool = False) -> int:
    """Evaluate a run folder's model.pt on the test split; print loss and accuracy (and the recorded one).

    Exit codes: 0 evaluated (an interrupted or running run too: model.pt holds its last complete epoch);
    1 the run diverged (its weights are not a trained model) or the evaluation failed on the device;
    2 no such folder, not a run, or a file of it broken (one line naming the file). model.pt is only ever
    loaded with weights_only=True."""
    from fmtui import engine

    try:
        record = read_run(run_dir)
        saved = (run_dir / MODEL).exists() or (run_dir / MODEL).is_symlink()
        if record.status == Status.DIVERGED and not saved:
            return _diverged_without_model(record, run_dir, json_mode)
        if record.status == Status.INTERRUPTED and not saved:
            raise RunError(run_dir, f"{record.message}, before it saved a model (no model.pt)")
        load_state_dict(run_dir / MODEL)  # checked here (no link, a state_dict of tensors): what fails is named
        note = eval_note(record.status, record.message, record.epochs_done)
        if note and not json_mode:
            click.echo(note, err=True)
        results, seconds = engine.evaluate_saved(
            record.config, run_dir / MODEL, device=device, data_dir=str(data_dir) if data_dir else None
        )
    except FmtuiError:  # a broken folder or file, model.pt that does not fit config.json, no data: exit 2
        raise
    except Exception as e:  # the device failed (out of memory, ...): one line
        return failed(e, None, ExitCode.FAILED, debug=True)
    diverged = record.status == Status.DIVERGED or not math.isfinite(results.loss)
    recorded = record.final_accuracy
    if json_mode:
        fields = {"run_dir": str(run_dir), "status": record.status, "epochs_done": record.epochs_done}
        fields |= {"diverged": diverged, "test_loss": results.loss if math.isfinite(results.loss) else None}
        click.echo(
            json_line(
                "eval",
                fields | {"test_accuracy": results.accuracy, "recorded_test_accuracy": recorded, "seconds": seconds},
            )
        )
    else:
        click.echo(eval_text(safe_text(record.config.summary()), results.loss, results.accuracy, recorded))
    if diverged:
        if not json_mode:
            if record.status == Status.DIVERGED:
                click.echo(eval_diverged(record.message, record.epochs_done), err=True)
            else:
                click.echo(eval_diverged(""), err=True)
        return ExitCode.FAILED
    return ExitCode.OK


def _diverged_without_model(record: Any, run_dir: Path, json_mode: bool) -> int:
    """A run that diverged before its first complete epoch saved no weights: say so (exit 1), nothing to load."""
    if json_mode:
        facts = {
            "run_dir": str(run_dir),
            "status": Status.DIVERGED,
            "epochs_done": record.epochs_done,
            "diverged": True,
        }
        nothing = {"test_loss": None, "test_accuracy": None, "recorded_test_accuracy": None, "seconds": None}
        click.echo(json_line("eval", facts | nothing))
    else:
        click.echo(eval_diverged(record.message, 0), err=True)
    return ExitCode.FAILED

"""One trial: the config its parameters make, its run folder, its epochs reported to Optuna, pruning, the verdict.

A trial is an ordinary run folder (`<study>/trial-0007/`), so everything that reads runs reads trials; its
config.json's resolved part names the study, the trial, its parameters and its worker. After each epoch the
trial reports its validation accuracy; it is pruned when the pruner says so, or at once when its health says
it cannot be learning (exploding; a loss that is no longer finite ends the run by itself, as diverged). A pruned
trial's summary.json says `pruned at epoch k: why` (status stopped, or diverged), and Optuna records it PRUNED.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmtui.config import ConfigError, RunConfig, format_value
from fmtui.errors import RunFolderError, error_message
from fmtui.events import EpochEnd, Finished, Started
from fmtui.recorder import RunRecorder
from fmtui.runs import atomic_write
from fmtui.tune.folder import pruned_message, trial_folder_name
from fmtui.tune.space import Space
from fmtui.tune.study import fail_and_retry

PRUNE_HEALTH = ("diverged", "exploding")
"""A trial whose health says it cannot be learning is pruned at once (whatever the pruner, except none)."""


@dataclass
class Outcome:
    """How `train_trial` ended: the engine's Finished status and message (a pruned trial's says so)."""

    status: str
    message: str
    rows: list[dict]
    pruned_at: int | None = None


def train_trial(
    cfg: RunConfig,
    folder: Path,
    study: dict[str, Any],
    on_epoch: Callable[[EpochEnd], str | None],
    should_stop: Callable[[], object],
    dataset: Any = None,
) -> Outcome:
    """Train one trial into its run folder; `on_epoch` returns why to prune after an epoch, or None.

    SESSION API: this is the one function that trains and records a trial. It drives fmtui.engine.train into
    fmtui.recorder.RunRecorder as fmtui.headless._train does; when fmtui.session's "train and record a run"
    path lands, its body becomes one call to it, with `study` as an extra of config.json's resolved part and
    on_epoch as its per-epoch hook (which may stop the run). Errors propagate (the recorder has written them)."""
    from fmtui import engine

    pruned: list[tuple[int, str]] = []
    recorder = RunRecorder(lambda _cfg: folder)
    rows: list[dict] = []
    stop = lambda: should_stop() or ("the pruner" if pruned else False)  # noqa: E731
    with recorder:
        for ev in engine.train(cfg, dataset=dataset, should_stop=stop):
            if isinstance(ev, Finished):
                ev = _verdict(ev, pruned)
            path = recorder.handle(ev)
            if isinstance(ev, Started) and path is not None:
                _add_study(path, study)
            elif isinstance(ev, EpochEnd):
                rows.append(ev.metrics())
                why = None if pruned else on_epoch(ev)
                if why:
                    pruned.append((ev.epoch, why))
    return Outcome(ev.status, ev.message, rows, pruned[0][0] if pruned else None)


def _verdict(ev: Finished, pruned: list[tuple[int, str]]) -> Finished:
    """A pruned run's Finished says so; a diverged one is pruned in the epoch where its loss broke."""
    if ev.status == "diverged":
        pruned.append((len(ev.history) + 1, ev.message))
    if not pruned:
        return ev
    return dataclasses.replace(ev, message=pruned_message(*pruned[0]))


def _add_study(path: Path, study: dict[str, Any]) -> None:
    """config.json's resolved part names the study (written right after the recorder's config.json)."""
    file = path / "config.json"
    config = json.loads(file.read_text())
    config["resolved"]["study"] = study
    try:
        atomic_write(file, json.dumps(config, indent=2))
    except OSError as e:
        raise RunFolderError(f"cannot write {file}: {e.strerror}", f"cannot write config.json: {e.strerror}") from None


# --- a trial from claim to verdict ----------------------------------------------------------------------


@dataclass
class TrialResult:
    """A finished trial, for the worker's line and the study's count."""

    number: int
    state: str
    """complete, pruned or failed."""
    detail: str = ""
    value: float | None = None
    """Validation accuracy of the last epoch (complete trials: the objective)."""
    test: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    seconds: float = 0.0
    retry_of: int | None = None
    """The trial this one runs again (its worker died, or a signal stopped it)."""
    stop: str = ""
    """Why the worker must stop after this trial: a signal, bad data, a full disk ("" = go on)."""
    exit_code: int | None = None
    """The worker's exit code when it must stop; None: that of the signal that stopped it."""


class TrialRunner:
    """Runs the trials a worker claims: one Optuna trial in, one run folder and one verdict out."""

    def __init__(self, study: Any, space: Space, study_dir: Path, worker: str, pruner: str) -> None:
        self.study, self.space, self.study_dir = study, space, study_dir
        self.worker, self.pruner = worker, pruner
        self.dataset: Any = None
        """The dataset, loaded once for all of this worker's trials."""

    def run(self, trial: Any, should_stop: Callable[[], object]) -> TrialResult:
        from optuna.trial import TrialState

        t0 = time.perf_counter()
        result = TrialResult(trial.number, "failed", retry_of=trial.user_attrs.get("retry_of"))
        try:
            cfg = self.space.suggest(trial)
        except ConfigError as e:  # a combination the options refuse (nesterov with adam, ...)
            self.study.tell(trial, state=TrialState.FAIL)
            result.detail = f"invalid combination: {e}"
            return result
        result.params = dict(trial.params)
        try:
            result.path = self._folder(trial.number)
            trial.set_user_attr("run", result.path.name)
            outcome = self._train(cfg, trial, result, should_stop)
        except KeyboardInterrupt as e:  # a second signal: abort now, the trial is queued again
            self._requeue(trial.number)
            return self._stopped(result, error_message(e))
        except Exception as e:
            return self._failed(trial, result, e)
        finally:
            result.seconds = time.perf_counter() - t0
        return self._judge(trial, outcome, result)

    def _train(self, cfg: RunConfig, trial: Any, result: TrialResult, should_stop: Callable[[], object]) -> Outcome:
        if self.dataset is None:
            from fmtui.data import load_dataset

            self.dataset = load_dataset(cfg.dataset, cfg.data_dir)
        block = {
            "name": self.study.study_name,
            "trial": trial.number,
            "params": {k: _plain(v) for k, v in trial.params.items()},
            "worker": self.worker,
        }
        return train_trial(cfg, result.path, block, lambda ev: self._report(trial, ev), should_stop, self.dataset)

    def _report(self, trial: Any, ev: EpochEnd) -> str | None:
        """Report the epoch's validation accuracy; why to prune now, or None."""
        value = ev.val_accuracy if ev.val_accuracy is not None else ev.test_accuracy
        trial.report(value, ev.epoch)
        if self.pruner == "none" or ev.epoch >= ev.epochs:
            return None
        if ev.health.state in PRUNE_HEALTH:
            return f"{ev.health.state}: {ev.health.hint.split(';')[0]}"
        if trial.should_prune():
            return f"the {self.pruner} pruner (val accuracy {value:.2f}%)"
        return None

    def _judge(self, trial: Any, outcome: Outcome, result: TrialResult) -> TrialResult:
        from optuna.trial import TrialState

        last = outcome.rows[-1] if outcome.rows else {}
        result.value, result.test = last.get("val_accuracy"), last.get("test_accuracy")
        if result.test is not None:
            trial.set_user_attr("test_accuracy", result.test)  # reported beside the objective, never ranked on
        if outcome.status == "completed":
            self.study.tell(trial, result.value)
            result.state, result.detail = "complete", outcome.message
        elif outcome.pruned_at is not None:
            if outcome.status == "diverged":  # the worst a trial can do at that epoch (TPE ranks NaN last)
                trial.report(math.nan, outcome.pruned_at)
            self.study.tell(trial, state=TrialState.PRUNED)
            result.state, result.detail = "pruned", outcome.message
        else:  # stopped by a signal: the trial is queued again for the study to reach its count
            self._requeue(trial.number)
            return self._stopped(result, outcome.message)
        return result

    def _failed(self, trial: Any, result: TrialResult, e: Exception) -> TrialResult:
        """An error ended the trial (its folder says so). Bad data or a disk that cannot be written stop the
        worker too, and the trial is queued again; a device error fails this trial only."""
        from fmtui.data import DataError

        result.detail = error_message(e)
        if isinstance(e, (DataError, RunFolderError, OSError)):  # OSError: the trial's folder cannot be made
            self._requeue(trial.number)
            result.stop, result.exit_code = result.detail, 2 if isinstance(e, DataError) else 1
            return result
        from optuna.trial import TrialState

        self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        return result

    def _stopped(self, result: TrialResult, message: str) -> TrialResult:
        result.detail = result.stop = message
        return result

    def _requeue(self, number: int) -> None:
        fail_and_retry(self.study, number)

    def _folder(self, number: int) -> Path:
        """The trial's run folder: trial-0007 (trial-0007-1 if a folder of that name is there already)."""
        name = trial_folder_name(number)
        for i in range(100):
            path = self.study_dir / (name if i == 0 else f"{name}-{i}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
        raise FileExistsError(f"no free folder name for trial {number} in {self.study_dir}")


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float)) else format_value(value)

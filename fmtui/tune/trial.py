"""Trials: their configs, their run folders, their epochs reported to Optuna, pruning, the verdicts.

A trial is an ordinary run folder (`<study>/trial-0007/`), trained and recorded by fmtui.session like any run,
so everything that reads runs reads trials; its config.json's resolved part names the study, the trial, its
parameters and its worker (fmtui.runfolder.schema.STUDY), written with it at the start. After each epoch the
trial reports its validation accuracy; it is pruned when the pruner says so, or at once when its health says
it cannot be learning (exploding; a loss that is no longer finite ends the run by itself, as diverged). A pruned
trial stops through the session's stop check (a fmtui.session.Pruned): its summary.json says `stopped` and
`pruned_at`, the epoch whose report pruned it; a diverged one says `diverged`. Optuna records both PRUNED.

Several trials may train at once, stacked into one model (fmtui.batched) where they can be and it pays
(`stack_size`): each copy reports its own epochs, and a pruned one is dropped from the stack while the others
go on (the session's should_drop).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmtui.config import ConfigError, RunConfig, format_value
from fmtui.errors import DataError, RunFolderError, error_message
from fmtui.events import EpochEnd, Event, Finished, Started
from fmtui.runfolder.schema import STUDY, Status
from fmtui.session import Pruned
from fmtui.tune.folder import trial_folder_name
from fmtui.tune.space import Space
from fmtui.tune.study import fail_and_retry

PRUNE_HEALTH = ("diverged", "exploding")
"""A trial whose health says it cannot be learning is pruned at once (whatever the pruner, except none)."""
STACK = 8
"""Trials a worker trains stacked at most, where they can be and stacking pays (`stack_size`)."""


def stack_size(space: Space, device: str) -> int:
    """How many trials a worker trains at once: STACK where any two trials of the space can train stacked (only
    fields that differ per copy are searched: normalization, lr, momentum, weight decay; a stackable model with
    SGD) and stacking pays on this worker's device; else 1."""
    from fmtui.batched import PER_COPY, can_batch

    if any(d.field not in PER_COPY for d in space.dims) or not can_batch([space.base, space.base]):
        return 1
    return STACK if stacking_pays(device) else 1


def stacking_pays(device: str) -> bool:
    """Whether stacked trials train faster than one after another here: on a GPU, where a small model's step is
    bound by kernel launches and K copies cost little more than one; not on a CPU, where every copy's arithmetic
    is done all the same (4 MLP trials stacked took 0.9 to 1.6 times as long as one after another: BENCHMARKS.md,
    "Stacked trials on a CPU")."""
    from fmtui.engine import resolve_device

    return resolve_device(device).type == "cuda"


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


@dataclass
class Job:
    """One claimed trial while it trains: its config, its epochs so far, the pruner's verdict, its end."""

    trial: Any
    cfg: RunConfig
    result: TrialResult
    rows: list[dict] = field(default_factory=list)
    pruned: Pruned | None = None
    finished: Finished | None = None


def pruned_line(epoch: int, why: str) -> str:
    """How a worker's line tells a pruned trial: `pruned at epoch 2: the asha pruner (val accuracy 71.20%)`."""
    return f"pruned at epoch {epoch}: {why}"


class TrialRunner:
    """Runs the trials a worker claims: Optuna trials in, one run folder and one verdict out for each."""

    def __init__(self, study: Any, space: Space, study_dir: Path, worker: str, pruner: str) -> None:
        self.study, self.space, self.study_dir = study, space, study_dir
        self.worker, self.pruner = worker, pruner
        self.dataset: Any = None
        """The dataset, loaded once for all of this worker's trials."""

    def run(self, trials: list[Any], should_stop: Callable[[], object]) -> list[TrialResult]:
        """Train the claimed trials: stacked in groups where their configs can be (fmtui.batched.batch_groups),
        one after another otherwise; their results in the order they ended."""
        from fmtui.batched import batch_groups

        results, jobs = [], []
        for trial in trials:
            result = TrialResult(trial.number, "failed", retry_of=trial.user_attrs.get("retry_of"))
            try:
                jobs.append(Job(trial, self.space.suggest(trial), result))
                result.params = dict(trial.params)
            except ConfigError as e:  # a combination the options refuse (nesterov with adam, ...)
                self.study.tell(trial, state=_state("FAIL"))
                result.detail = f"invalid combination: {e}"
                results.append(result)
        groups = batch_groups([j.cfg for j in jobs]) if len(jobs) > 1 else [[0]] if jobs else []
        for group in groups:
            members = [jobs[i] for i in group]
            stop = should_stop() or next((r.stop for r in results if r.stop), "")
            if stop:  # a signal (or bad data) ended an earlier group: these are left to other workers
                results += [self._requeued(j.result, j.trial, str(stop) if stop is not True else "") for j in members]
                continue
            results += self._train(members, should_stop)
        return results

    def _train(self, jobs: list[Job], should_stop: Callable[[], object]) -> list[TrialResult]:
        """Train one trial, or a group stacked; each one's verdict."""
        t0 = time.perf_counter()
        try:
            for i, ev, path in self._events(jobs, should_stop):
                self._handle(jobs[i], ev, path)
        except KeyboardInterrupt as e:  # a second signal: abort now, the unfinished trials are queued again
            ended = [self._requeued(j.result, j.trial, error_message(e)) for j in jobs if j.finished is None]
        except Exception as e:
            ended = [self._failed(j, e) for j in jobs if j.finished is None]
        else:
            ended = []
        finally:
            for j in jobs:
                j.result.seconds = time.perf_counter() - t0
        return [self._judge(j) for j in jobs if j.finished is not None] + ended

    def _events(self, jobs: list[Job], should_stop: Callable[[], object]) -> Iterator[tuple[int, Event, Path | None]]:
        """The trials' events through the session: one trial with train_and_record, a stacked group with
        train_group_and_record (each member dropped when its pruner says so)."""
        from fmtui.session import train_and_record, train_group_and_record

        if self.dataset is None:
            from fmtui.data import load_dataset

            cfg = jobs[0].cfg
            self.dataset = load_dataset(cfg.dataset, cfg.data_dir)
        resolved = [{STUDY: self._block(j.trial)} for j in jobs]
        if len(jobs) == 1:
            job = jobs[0]
            stop = lambda: job.pruned or should_stop()  # noqa: E731  (the verdict first: it is known already)
            for ev, path in train_and_record(
                job.cfg, folder=self._maker(job), should_stop=stop, dataset=self.dataset, resolved=resolved[0]
            ):
                yield 0, ev, path
            return
        yield from train_group_and_record(
            [j.cfg for j in jobs],
            [self._maker(j) for j in jobs],
            should_stop=should_stop,
            dataset=self.dataset,
            should_drop=lambda i: jobs[i].pruned,
            resolved=resolved,
        )

    def _maker(self, job: Job) -> Callable[[RunConfig], Path]:
        """The trial's folder, made when it starts (a config the engine refuses leaves none)."""

        def make(cfg: RunConfig) -> Path:
            job.result.path = self._folder(job.trial.number)
            job.trial.set_user_attr("run", job.result.path.name)
            return job.result.path

        return make

    def _block(self, trial: Any) -> dict[str, Any]:
        """config.json's resolved.study: the study, the trial, its parameters, its worker."""
        params = {k: _plain(v) for k, v in trial.params.items()}
        return {"name": self.study.study_name, "trial": trial.number, "params": params, "worker": self.worker}

    def _handle(self, job: Job, ev: Event, path: Path | None) -> None:
        if isinstance(ev, Started):
            job.result.path = path
        elif isinstance(ev, EpochEnd):
            job.rows.append(ev.metrics())
            why = None if job.pruned else self._report(job.trial, ev)
            if why:
                job.pruned = Pruned(ev.epoch, why)
        elif isinstance(ev, Finished):
            job.finished = ev

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

    def _judge(self, job: Job) -> TrialResult:
        trial, result, ev = job.trial, job.result, job.finished
        assert ev is not None
        last = job.rows[-1] if job.rows else {}
        result.value, result.test = last.get("val_accuracy"), last.get("test_accuracy")
        if result.test is not None:
            trial.set_user_attr("test_accuracy", result.test)  # reported beside the objective, never ranked on
        if ev.status == Status.COMPLETED:
            self.study.tell(trial, result.value)
            result.state, result.detail = "complete", ev.message
        elif ev.pruned_at is not None and job.pruned is not None:
            self.study.tell(trial, state=_state("PRUNED"))
            result.state, result.detail = "pruned", pruned_line(ev.pruned_at, job.pruned.why)
        elif ev.status == Status.DIVERGED:  # pruned in the epoch where its loss broke: the worst a trial can do
            epoch = len(ev.history) + 1
            trial.report(math.nan, epoch)  # (TPE ranks NaN last)
            self.study.tell(trial, state=_state("PRUNED"))
            result.state, result.detail = "pruned", pruned_line(epoch, ev.message)
        else:  # stopped by a signal: the trial is queued again for the study to reach its count
            return self._requeued(result, trial, ev.message)
        return result

    def _failed(self, job: Job, e: Exception) -> TrialResult:
        """An error ended the trial (its folder says so). Bad data or a disk that cannot be written stop the
        worker too, and the trial is queued again; a device error fails this trial only."""
        result = job.result
        result.detail = error_message(e)
        if isinstance(e, (DataError, RunFolderError, OSError)):  # OSError: the trial's folder cannot be made
            fail_and_retry(self.study, job.trial.number)
            result.stop, result.exit_code = result.detail, 2 if isinstance(e, DataError) else 1
            return result
        self.study.tell(job.trial, state=_state("FAIL"), skip_if_finished=True)
        return result

    def _requeued(self, result: TrialResult, trial: Any, why: str) -> TrialResult:
        """A trial a signal stopped (or kept from starting): failed and queued again; the worker stops."""
        fail_and_retry(self.study, trial.number)
        result.detail = result.stop = why or "stopped"
        return result

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


def _state(name: str) -> Any:
    from optuna.trial import TrialState

    return TrialState[name]


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float)) else format_value(value)

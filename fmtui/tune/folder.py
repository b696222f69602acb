"""A study's folder read back without Optuna or torch: its study.json and its trials' run folders.

    <runs>/<study>/study.json      what the study searches, its planned trials, sampler, pruner, storage
    <runs>/<study>/journal.log     the default storage (Optuna's journal), shared by the study's workers
    <runs>/<study>/trial-0007/     one ordinary run folder per trial; config.json's resolved.study names the
                                   study, the trial number, its parameters and its worker

A trial's state comes from its run folder: running (its writer lives), complete, pruned at epoch k (summary.json's
`pruned_at`, with status stopped; or status diverged: a trial whose loss stopped being finite is pruned in that
epoch), or failed (an error, a stop by a signal, or a worker that died: `interrupted`). The dashboard's study view
and the tests read studies this way; the folder is untrusted input like any run folder (fmtui.runfolder checks
every file), and every string a snapshot holds is made safe to show (fmtui.text.safe_text).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmtui.errors import RunError
from fmtui.runfolder.parse import parse_object
from fmtui.runfolder.read import BrokenRun, FileCache, RunRecord, RunsFolder
from fmtui.runfolder.schema import STUDY, Status
from fmtui.text import safe_text

STUDY_FILE = "study.json"
TRIAL_PREFIX = "trial-"
STATES = ("running", "complete", "pruned", "failed")


def trial_folder_name(number: int) -> str:
    return f"{TRIAL_PREFIX}{number:04d}"


def parse_study_file(file: Path, data: bytes) -> dict:
    """study.json, checked: a name, the planned trials, what is searched."""
    study = parse_object(file, data)
    checks = {
        "name": isinstance(study.get("name"), str),
        "trials": isinstance(study.get("trials"), int) and not isinstance(study.get("trials"), bool),
        "search": isinstance(study.get("search"), dict),
    }
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise RunError(file, f"no valid {', '.join(bad)}")
    return study


@dataclass
class TrialRow:
    """One trial as its run folder tells it."""

    number: int
    state: str
    """One of STATES."""
    detail: str
    """`epoch 3/5` while running, `at epoch 2` when pruned, why it failed."""
    value: float | None = None
    """The validation accuracy of its last complete epoch (the study's objective)."""
    test: float | None = None
    """The test accuracy of that epoch, reported beside it."""
    params: dict[str, Any] = field(default_factory=dict)
    epochs_done: int = 0
    path: Path | None = None


@dataclass
class StudySnapshot:
    """A study folder at one moment: its trials (by number) and the best complete one."""

    name: str
    planned: int | None
    search: dict[str, str]
    trials: list[TrialRow]
    broken: list[str]
    """Trial folders that cannot be read, with why."""
    error: str = ""
    """Why study.json cannot be read ("" when it can)."""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> TrialRow | None:
        done = [t for t in self.trials if t.state == "complete" and t.value is not None]
        return max(done, key=lambda t: (t.value, -t.number)) if done else None

    def count(self, state: str) -> int:
        return sum(t.state == state for t in self.trials)

    @property
    def finished(self) -> int:
        return sum(t.state in ("complete", "pruned") for t in self.trials)

    def best_so_far(self) -> list[tuple[int, float]]:
        """(trial number, best value among the complete trials up to it), at each complete trial."""
        out: list[tuple[int, float]] = []
        for t in self.trials:
            if t.state == "complete" and t.value is not None and (not out or t.value > out[-1][1]):
                out.append((t.number, t.value))
            elif t.state == "complete" and t.value is not None:
                out.append((t.number, out[-1][1]))
        return out


class StudyFolder:
    """A study folder, followed cheaply: `scan()` re-reads only the files that changed (fmtui.runfolder.read)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.runs = RunsFolder(self.path)
        self.files = FileCache()

    def scan(self) -> StudySnapshot:
        try:
            info = self.files.load(self.path / STUDY_FILE, parse_study_file) or {}
            error = "" if info else f"{self.path / STUDY_FILE}: no such file"
        except RunError as e:
            info, error = {}, str(e)
        trials: list[TrialRow] = []
        broken: list[str] = []
        for run in self.runs.scan():
            if not run.name.startswith(TRIAL_PREFIX):
                continue
            if isinstance(run, BrokenRun):
                broken.append(safe_text(f"{run.name}: {run.reason}"))
            else:
                trials.append(trial_row(run))
        trials.sort(key=lambda t: t.number)
        planned = info.get("trials") if info else None
        name = safe_text(info.get("name") if info else self.path.name)
        search = {safe_text(k): safe_text(str(v)) for k, v in info.get("search", {}).items()}
        return StudySnapshot(name, planned, search, trials, broken, safe_text(error or self.runs.error), info)


def trial_row(run: RunRecord) -> TrialRow:
    """A trial's row from its checked run folder."""
    study = run.resolved.get(STUDY)
    study = study if isinstance(study, dict) else {}
    number = study.get("trial")
    if not isinstance(number, int) or isinstance(number, bool):
        digits = run.name[len(TRIAL_PREFIX) :].split("-")[0]
        number = int(digits) if digits.isdigit() else -1
    params = study.get("params")
    params = (
        {safe_text(str(k)): safe_text(v) if isinstance(v, str) else v for k, v in params.items() if _shown(v)}
        if isinstance(params, dict)
        else {}
    )
    last = run.metrics[-1] if run.metrics else {}
    state, detail = trial_state(run)
    return TrialRow(
        number, state, detail, _finite(last.get("val_accuracy")), _finite(last.get("test_accuracy")), params,
        run.epochs_done, run.path,
    )  # fmt: skip


def trial_state(run: RunRecord) -> tuple[str, str]:
    """(state, detail) of a trial's run folder: see the module's docstring."""
    status = run.status
    if status == Status.RUNNING:
        return "running", f"epoch {run.epochs_done + 1}/{run.config.epochs}"
    if run.pruned_at is not None:
        return "pruned", f"at epoch {run.pruned_at}"
    if status == Status.DIVERGED:
        return "pruned", f"at epoch {run.epochs_done + 1} (diverged)"
    if status == Status.COMPLETED:
        return "complete", f"{run.epochs_done} epochs"
    return "failed", run.message or str(status)


def _shown(value: Any) -> bool:
    """A parameter's value that a table shows: text or a number (not a bool, a list, an object)."""
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def study_of(run_path: Path) -> Path | None:
    """The study folder a run folder belongs to, if it is a trial (its parent holds study.json)."""
    parent = Path(run_path).parent
    return parent if (parent / STUDY_FILE).is_file() else None

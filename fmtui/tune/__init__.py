"""Hyperparameter searches with Optuna (`fmtui tune`): a space written like sweep lists, trials as run folders,
workers that share one study through its storage (a journal file in the study's folder, or any SQL URL).

    space.py     the options as a search space: lists, ranges (log scale where it fits), fixed values
    folder.py    a study's folder read back without Optuna or torch: trials, states, the best so far
    study.py     Optuna's side: storage, create or join a study, claim a trial, fail the trials of dead workers
    trial.py     trials: their configs, run folders (through fmtui.session), reports per epoch, pruning,
                 several stacked on one device where that pays
    headless.py  the command's body: workers (one per GPU), signals, the lines it prints

Optuna is an optional extra (the `tune` extra); only study.py and trial.py import it, when they run.
"""

from __future__ import annotations

import importlib.util


def install_hint() -> str:
    """One line: fmtui tune needs Optuna, and the command that adds it to the environment fmtui runs in."""
    from fmtui.install_hint import missing_package

    return missing_package("optuna>=4.0", "fmtui tune")


def optuna_missing() -> bool:
    """Whether Optuna cannot be imported here (checked without importing it)."""
    try:
        return importlib.util.find_spec("optuna") is None
    except (ImportError, ValueError):  # a broken or shadowed installation
        return True

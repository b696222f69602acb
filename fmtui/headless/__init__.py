"""Headless commands: what `fmtui --no-ui ...` runs, one module per command, printing for scripts and logs.

    train.py      train (and train --resume): one run through fmtui.session, errors as one line and exit codes
    sweep.py      sweep: a grid of runs, the ranked table, every run's status in summary.csv
    lr_find.py    lr-find: the learning-rate range test and its curve
    evaluate.py   eval: a saved model evaluated again
    listing.py    runs: the runs of a runs folder
    export.py     export --csv and --tensorboard
    reporters.py  how a run is shown: lines on stdout, a progress bar on stderr (a terminal), or JSON lines
    folders.py    where a command may write, checked before any data is loaded

Signals are fmtui.signals' (128 + the signal, the same in every command); exit codes and the one-line
printer are fmtui.errors'. click is used for printing and usage errors; textual never.
"""

from fmtui.headless.evaluate import run_eval
from fmtui.headless.export import run_export
from fmtui.headless.folders import check_out, folder_problem
from fmtui.headless.listing import run_list
from fmtui.headless.lr_find import run_lr_find
from fmtui.headless.reporters import JsonReporter, Reporter, RichReporter, make_reporter
from fmtui.headless.sweep import run_sweep_cli
from fmtui.headless.train import resume_training, run_training

__all__ = [
    "JsonReporter",
    "Reporter",
    "RichReporter",
    "check_out",
    "folder_problem",
    "make_reporter",
    "resume_training",
    "run_eval",
    "run_export",
    "run_list",
    "run_lr_find",
    "run_sweep_cli",
    "run_training",
]

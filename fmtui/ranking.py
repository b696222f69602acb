"""Which run of a comparison to recommend: a healthy one, by validation accuracy when it can be, else by test.

A sweep's rows (fmtui.sweep.SweepRun.summary_row: `status`, `health`, `best_val_accuracy`,
`best_test_accuracy`, ...) are ranked here for the sweep's table, its summary.json and `--json` summary,
and the dashboard's lecture experiment. The rule:

- a run that is not healthy (diverged, exploding, at chance, unstable: fmtui.health) is never the best,
  however high it scored: the lecture's softmax on raw pixels at lr 0.01 scores 79.5% after 5 epochs at
  batch 1024 with a test loss in the thousands, above z-score's 79.1%, and is the opposite of its lesson;
  the `input scale` note is healthy (a loss coming down from a high start);
- runs are ranked by their best validation accuracy when every run with a result has one, else by their
  best test accuracy, and the choice then says that it was made on the test set;
- when the top score belongs to a run that is not healthy, one line says so (`not_ranked_line`).

Pure functions over plain rows: no torch, no Textual.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

UNHEALTHY = ("unstable", "at chance", "exploding", "diverged")
"""Health states (fmtui.events.HEALTH_STATES) that rule a run out of being the best."""
WHAT_WENT_WRONG = {
    "exploding": "its loss exploded",
    "diverged": "its loss diverged",
    "at chance": "it ended at chance level",
    "unstable": "its accuracy fell back",
}
"""How `not_ranked_line` names each unhealthy state."""
BY_VAL, BY_TEST = "best_val_accuracy", "best_test_accuracy"


def healthy(row: dict) -> bool:
    """A row that may be recommended: not failed, not diverged, and not in an unhealthy state."""
    return row.get("status") not in ("error", "diverged") and row.get("health") not in UNHEALTHY


def ranked_by(rows: list[dict]) -> str:
    """BY_VAL when every run with a result has a validation accuracy, else BY_TEST."""
    done = [r for r in rows if r.get(BY_TEST) is not None]
    return BY_VAL if done and all(r.get(BY_VAL) is not None for r in done) else BY_TEST


def rank(rows: list[dict]) -> tuple[list[dict], str]:
    """(rows best first, the key they are ranked by): healthy runs with a result by score, then unhealthy runs
    with a result by score, then runs without a result (stopped in their first epoch), then failed runs."""
    by = ranked_by(rows)

    def key(r: dict) -> tuple:
        return (r.get("status") != "error", r.get(by) is not None, healthy(r), r.get(by) or 0.0)

    return sorted(rows, key=key, reverse=True), by


@dataclass(frozen=True)
class Verdict:
    """The outcome of a comparison: every row ranked, the one to recommend, and the one it was preferred over."""

    ranked: list[dict]
    by: str
    best: dict | None
    """The best healthy run with a result; None when there is none."""
    passed_over: dict | None
    """The unhealthy run with the top score, when it scored above `best` (or there is no best)."""

    @property
    def on_test(self) -> bool:
        """The choice was made on the test set (no validation split): say so wherever it is shown."""
        return self.by == BY_TEST


def verdict(rows: list[dict]) -> Verdict:
    """Rank rows and pick the best healthy one (see the module docstring)."""
    ranked, by = rank(rows)
    scored = [r for r in ranked if r.get(by) is not None and r.get("status") != "error"]
    best = next((r for r in scored if healthy(r)), None)
    sick = max((r for r in scored if not healthy(r)), key=lambda r: r[by], default=None)
    if sick is not None and best is not None and sick[by] <= best[by]:
        sick = None
    return Verdict(ranked, by, best, sick)


def not_ranked_line(row: dict, by: str, name: str) -> str:
    """`norm=none lr=0.01 scored 79.53% but its loss exploded: not ranked` (name: how the caller names runs)."""
    state = "diverged" if row.get("status") == "diverged" else row.get("health")
    why = WHAT_WENT_WRONG.get(state or "", f"it is {state}")
    split = "validation" if by == BY_VAL else "test"
    return f"{name} scored {row[by]:.2f}% ({split}) but {why}: not ranked"


def run_name(row: dict) -> str:
    """A sweep row as its table names it: what sets it apart (`norm=none lr=0.01`), else its folder."""
    return row.get("varying") or row.get("run") or "the run"


def summary_fields(v: Verdict, name: Callable[[dict], str] = run_name) -> dict:
    """What a sweep's summary.json and `--json` summary add about the choice: `best` (the run's folder name, None
    when no run is healthy) and `not_ranked` (the line about a higher-scoring unhealthy run, or None)."""
    return {
        "best": v.best.get("run") if v.best is not None else None,
        "not_ranked": not_ranked_line(v.passed_over, v.by, name(v.passed_over)) if v.passed_over else None,
    }

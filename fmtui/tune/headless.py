"""`fmtui tune`: the command's body. It opens or joins the study, runs its worker here or starts several (one per
visible GPU by default, each pinned with CUDA_VISIBLE_DEVICES), prints a line per finished trial and, at the
end, the trials ranked by validation accuracy with the best one's command line; with --json, one JSON line per
finished trial (`trial`) and one for the study at the end (`study`), as fmtui.events_schema describes them.

A worker stops like a headless run on Ctrl+C, SIGTERM, SIGHUP or SIGQUIT: its trial stops after the current
batch, its folder says so, the trial is queued again for another worker, and it exits with 128 + the signal.
A command that started several workers passes the signal on to each and exits the same way.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from fmtui.config import OPTIONS, ConfigError, RunConfig, cli_name, format_value, parse_field
from fmtui.errors import ExitCode
from fmtui.report import json_line
from fmtui.runfolder.files import atomic_write
from fmtui.runfolder.read import default_runs_dir
from fmtui.signals import STOP_SIGNALS, stopping
from fmtui.text import plural, safe_text
from fmtui.tune import install_hint, optuna_missing
from fmtui.tune.folder import STUDY_FILE
from fmtui.tune.space import FIXED_ONLY, RANGE, WORKER_LOCAL, Space, differences, parse_space, space_of
from fmtui.tune.study import (
    PRUNERS,
    SAMPLERS,
    Presence,
    StudyError,
    check_name,
    claim,
    create_or_join,
    make_pruner,
    make_sampler,
    open_storage,
    storage_label,
    with_sampling,
)

DEFAULT_TRIALS = 20
MAX_FAILURES = 3
"""A worker whose trials fail this many times in a row (device errors) stops: the next would fail too."""
WORKER_ENV = "FMTUI_TUNE_WORKER"
"""Set for the workers a `--workers N` command starts: their lines start with `w<i> ` (JSON lines name their
worker instead); they print no summary."""


def run_tune(
    texts: dict[str, list[str]],
    *,
    data_dir: str | None = None,
    trials: int | None = None,
    sampler: str | None = None,
    pruner: str | None = None,
    study: str | None = None,
    storage: str | None = None,
    workers: int | None = None,
    runs_dir: Path | None = None,
    json_mode: bool = False,
) -> int:
    """The command: `texts` are the options as typed (field -> items: one value, several, or a range `a..b`).
    Returns the exit code; bad input raises ConfigError (exit 2)."""
    if optuna_missing():
        raise ConfigError(install_hint())
    local = worker_config(texts, data_dir)
    searched = {f: items for f, items in texts.items() if f not in WORKER_LOCAL}
    if not searched and study is None:
        raise ConfigError("nothing to search: give options as lists or ranges (--lr 1e-4..1 --norm unit,zscore)")
    name = check_name(study or f"tune-{time.strftime('%Y%m%d-%H%M%S')}")
    study_dir = (runs_dir or default_runs_dir()) / name
    given = _definition(searched, local, trials, sampler, pruner) if searched else None
    dataset = _load_data(local.replace(dataset=given["fixed"]["dataset"])) if given else None  # before any trial
    try:
        study_dir.mkdir(parents=True, exist_ok=True)
        st, meta, created = create_or_join(open_storage(storage, study_dir), name, given)
    except OSError as e:
        raise ConfigError(f"cannot make the study folder {study_dir}: {e.strerror or e}") from None
    except StudyError as e:
        return _error(str(e), e.exit_code)
    if not created:
        _check_join(meta, given, trials, sampler, pruner, name)
    space = space_of(meta, local)
    _write_study_file(study_dir, name, meta, storage)
    label = storage_label(storage or str(study_dir / "journal.log"))
    count = workers or _default_workers(local.device)
    main = os.environ.get(WORKER_ENV) is None
    if main and not json_mode:
        _say(_header(name, meta, space, label, count, created, st))
    if count > 1:
        code = _spawn(count, name, storage, study_dir.parent, local, json_mode)
    else:
        code = _work(st, meta, space, study_dir, dataset or _load_data(space.base), json_mode)
    if main:
        _say(summary_json(st, meta, space, study_dir) if json_mode else summary(st, meta, space), json_mode)
    return code


def worker_config(texts: dict[str, list[str]], data_dir: str | None) -> RunConfig:
    """This worker's own device, threads, CUDA graphs and data folder (one value each)."""
    local = RunConfig(data_dir=data_dir)
    for field in WORKER_LOCAL:
        items = texts.get(field)
        if items and (len(items) > 1 or RANGE in items[0]):
            raise ConfigError(f"give one value: {FIXED_ONLY[field]}", field)
        if items:
            local = local.replace(**{field: parse_field(field, items[0])})
    return local.validate()


def _definition(searched: dict, local: RunConfig, trials: int | None, sampler: str | None, pruner: str | None) -> dict:
    """The study's definition from the command line (what a new study stores, what a joiner must match)."""
    space = parse_space(searched, RunConfig(**{f: getattr(local, f) for f in WORKER_LOCAL}))
    sampler = sampler or "tpe"
    if sampler == "grid":
        size = space.grid_size()
        if trials is not None and trials > size:
            raise ConfigError(f"the grid has {plural(size, 'point')}, fewer than --trials {trials}", "trials")
        trials = trials or size
    return {"format": 1, **space.definition(), "trials": trials or DEFAULT_TRIALS, "sampler": sampler,
            "pruner": pruner or "asha"}  # fmt: skip


def _check_join(meta: dict, given: dict | None, trials: int | None, sampler: str | None, pruner: str | None, name: str):
    """A joiner's options must be the study's (those it leaves out are taken from the study)."""
    problems = differences(meta, given) if given is not None else []
    for key, value in (("trials", trials), ("sampler", sampler), ("pruner", pruner)):
        if value is not None and value != meta.get(key):
            problems.append(f"--{key} {value} (the study: {meta.get(key)})")
    if problems:
        raise ConfigError(
            f"the study {name} exists with other options: {'; '.join(problems)}. Join it with the study's options "
            f"(or --study {name} alone), or name a new study"
        )
    if (
        meta.get("sampler") not in SAMPLERS
        or meta.get("pruner") not in PRUNERS
        or not isinstance(meta.get("trials"), int)
    ):
        raise ConfigError(f"the study {name} has an unknown sampler, pruner or trial count: {meta}")


def _write_study_file(study_dir: Path, name: str, meta: dict, storage: str | None) -> None:
    """study.json: what the dashboard's study view and people read (the storage holds the truth)."""
    file = study_dir / STUDY_FILE
    if file.exists():
        return
    info = {"name": name, **meta, "storage": storage_label(storage) if storage else "journal.log"}
    try:
        atomic_write(file, json.dumps(info, indent=2))
    except OSError as e:
        raise ConfigError(f"cannot write {file}: {e.strerror}") from None


def _default_workers(device: str) -> int:
    gpus = visible_gpus(device)
    return len(gpus) if len(gpus) > 1 else 1


def visible_gpus(device: str) -> list[str]:
    """The GPUs a worker may be pinned to (CUDA_VISIBLE_DEVICES's ids, or 0..n-1); [] off CUDA."""
    if device not in ("auto", "cuda"):
        return []
    import torch

    n = torch.cuda.device_count()
    listed = [g.strip() for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    return (listed or [str(i) for i in range(n)])[:n]


# --- one worker ---------------------------------------------------------------------------------------------


def _work(study: Any, meta: dict, space: Space, study_dir: Path, dataset: Any, json_mode: bool = False) -> int:
    """Claim and train trials until the study has all it planned, a signal stops this worker, or it must. Where
    its trials can train stacked and that pays on its device (fmtui.tune.trial.stack_size), it claims several at
    once and trains them as one stacked model."""
    from fmtui.tune.trial import TrialRunner, stack_size

    with_sampling(study, make_sampler(meta["sampler"], space), make_pruner(meta["pruner"]))
    stack = stack_size(space, space.base.device)
    failures = 0
    with stopping() as stop:
        try:
            with Presence(study_dir) as me:
                runner = TrialRunner(study, space, study_dir, me.name, meta["pruner"])
                runner.dataset = dataset
                while not stop.is_set():
                    trials = _claim(study, meta["trials"], study_dir, me.name, stack)
                    if not trials:
                        break
                    results = runner.run(trials, stop.reason)
                    for result in results:
                        _say(trial_json(result, study, me.name) if json_mode else trial_line(result, study), json_mode)
                        failures = failures + 1 if result.state == "failed" and not result.stop else 0
                    why = next((r for r in results if r.stop), None)
                    if why is not None:
                        return _error(why.stop, why.exit_code) if why.exit_code else stop.exit_code
                    if failures >= MAX_FAILURES:
                        return _error(f"{failures} trials in a row failed; this worker stops")
        except StudyError as e:
            return _error(str(e), e.exit_code)
        except KeyboardInterrupt:
            return stop.exit_code
    return stop.exit_code if stop.is_set() else ExitCode.OK


def _claim(study: Any, planned: int, study_dir: Path, worker: str, stack: int) -> list[Any]:
    """Up to `stack` trials for this worker (fewer when the study has fewer left to run)."""
    trials: list[Any] = []
    while len(trials) < stack:
        trial = claim(study, planned, study_dir, worker)
        if trial is None:
            break
        trials.append(trial)
    return trials


def _load_data(cfg: RunConfig) -> Any:
    """The dataset, and the device checked: before a new study is made, or before a joiner claims a trial."""
    from fmtui import engine
    from fmtui.data import DataError, load_dataset

    try:
        engine.resolve_device(cfg.device)
        return load_dataset(cfg.dataset, cfg.data_dir)
    except DataError as e:
        raise ConfigError(str(e)) from None


# --- several workers -------------------------------------------------------------------------------------


def _spawn(count: int, name: str, storage: str | None, runs_dir: Path, local: RunConfig, json_mode: bool) -> int:
    """Start `count` workers of the study (processes that join it), one per GPU when there are GPUs; pass the
    stop signals on to them; their exit code (128 + the signal when one came)."""
    gpus = visible_gpus(local.device)
    cmd = [sys.executable, "-m", "fmtui", "tune", "--study", name, "--runs-dir", str(runs_dir), "--workers", "1"]
    cmd += ["--storage", storage] if storage else []
    cmd += ["--data-dir", local.data_dir] if local.data_dir else []
    cmd += ["--json"] if json_mode else []
    for field in ("device", "threads", "graphs"):
        if getattr(local, field) != getattr(RunConfig(), field):
            cmd += [f"--{cli_name(field)}", format_value(getattr(local, field))]
    procs = []
    for i in range(count):
        env = {**os.environ, WORKER_ENV: str(i)}
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
        # a session of its own: a Ctrl+C in the terminal reaches the workers once, passed on by this process
        procs.append(subprocess.Popen(cmd, env=env, start_new_session=True))
    came: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        came.append(signum)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    previous = {}
    for sig in STOP_SIGNALS:
        signum = getattr(signal, sig, None)
        if signum is not None and signal.getsignal(signum) != signal.SIG_IGN:
            previous[signum] = signal.signal(signum, forward)
    try:
        codes = [p.wait() for p in procs]
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if came:
        return ExitCode.of_signal(came[0])
    return next((c for c in codes if c), ExitCode.OK)


# --- lines ---------------------------------------------------------------------------------------------------


def _say(text: str, json_mode: bool = False) -> None:
    """Lines to stdout, each with its worker's `w<i> ` when a --workers command started it (not JSON lines: they
    name their worker, and stay JSON), flushed at once. What a study holds (parameters, names) comes from its
    storage, which other users may write: text lines are shown through safe_text."""
    if not text:
        return
    worker = os.environ.get(WORKER_ENV)
    prefix = f"w{worker} " if worker is not None and not json_mode else ""
    lines = text.splitlines() if json_mode else map(safe_text, text.splitlines())  # (JSON escapes its own)
    _whole("".join(prefix + line + "\n" for line in lines), sys.stdout)


def _error(message: str, code: int = ExitCode.FAILED) -> int:
    worker = os.environ.get(WORKER_ENV)
    _whole(f"{f'w{worker} ' if worker is not None else ''}Error: {safe_text(message)}\n", sys.stderr)
    return code


def _whole(text: str, stream: TextIO) -> None:
    """Text with its newlines in one write, flushed: the workers of one command share its stdout, and print's
    separate write of the newline (unbuffered, as under PYTHONUNBUFFERED=1) let another worker's line in
    between, two lines on one."""
    stream.write(text)
    stream.flush()


def _header(name: str, meta: dict, space: Space, storage: str, workers: int, created: bool, study: Any) -> str:
    cfg = space.base
    what = "Study" if created else "Joined study"
    done = "" if created else f" ({plural(len(study.get_trials(deepcopy=False)), 'trial')} so far)"
    return (
        f"{what} {name}{done}: {plural(meta['trials'], 'trial')} of {space.describe()}, {meta['sampler']} sampler, "
        f"{meta['pruner']} pruner\n"
        f"  {cfg.dataset} {cfg.model}, {plural(cfg.epochs, 'epoch')} a trial, ranked on validation accuracy "
        f"({cfg.val_split:g} of the training split held out)\n"
        f"  storage {storage}; {plural(workers, 'worker')}"
    )


def params_text(params: dict[str, Any]) -> str:
    """`lr 0.0123 weight-decay 1.2e-05 hidden 512`."""
    return " ".join(f"{_param_name(k)} {_param_value(v)}" for k, v in params.items())


def _param_name(param: str) -> str:
    return cli_name(param) if param in OPTIONS else param


def _param_value(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def trial_line(result: Any, study: Any) -> str:
    """One finished trial: `trial 3 complete: val 86.21% test 85.40% · lr 0.0123 hidden 512 · 12.3 s · best ...`."""
    scores = f"val {result.value:.2f}% test {result.test:.2f}%" if result.value is not None else ""
    name = f"trial {result.number}" + (f" (trial {result.retry_of} again)" if result.retry_of is not None else "")
    head = {
        "complete": f"{name} complete: {scores}",
        "pruned": f"{name} {result.detail}",
        "failed": f"{name} failed: {result.detail}",
    }[result.state]
    parts = [safe_text(head), safe_text(params_text(result.params)), f"{result.seconds:.1f} s"]
    best = _best(study)
    if best is not None:
        parts.append(f"best so far: trial {best.number} (val {best.value:.2f}%)")
    return " · ".join(p for p in parts if p)


def _best(study: Any) -> Any:
    try:
        return study.best_trial
    except ValueError:  # no complete trial yet
        return None


def trial_json(result: Any, study: Any, worker: str) -> str:
    """The `trial` line of --json: one finished trial, and the best so far (fmtui.events_schema)."""
    best = _best(study)
    return json_line(
        "trial",
        {
            "study": study.study_name,
            "trial": result.number,
            "state": result.state,
            "detail": result.detail,
            "val_accuracy": _number(result.value),
            "test_accuracy": _number(result.test),
            "params": result.params,
            "run_dir": str(result.path) if result.path is not None else None,
            "seconds": round(result.seconds, 3),
            "retry_of": result.retry_of,
            "worker": worker,
            "best_trial": best.number if best is not None else None,
            "best_val_accuracy": _number(best.value) if best is not None else None,
        },
    )


def summary_json(study: Any, meta: dict, space: Space, study_dir: Path) -> str:
    """The `study` line of --json at the end: the counts, every complete trial best first, the best one's command."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = {s: sum(t.state == s for t in trials) for s in TrialState}
    done = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: -t.value)
    ranked = [
        {
            "trial": t.number,
            "val_accuracy": _number(t.value),
            "test_accuracy": _number(t.user_attrs.get("test_accuracy")),
            "params": t.params,
            "run": t.user_attrs.get("run"),
        }
        for t in done
    ]
    best = {**ranked[0], "command": best_command(space, done[0].params)} if done else None
    return json_line(
        "study",
        {
            "study": study.study_name,
            "study_dir": str(study_dir),
            "planned": meta["trials"],
            "complete": counts[TrialState.COMPLETE],
            "pruned": counts[TrialState.PRUNED],
            "failed": counts[TrialState.FAIL],
            "running": counts[TrialState.RUNNING],
            "queued": counts[TrialState.WAITING],
            "ranked": ranked,
            "best": best,
        },
    )


def _number(value: Any) -> float | None:
    """A number for strict JSON: None for none, NaN or infinity."""
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def summary(study: Any, meta: dict, space: Space) -> str:
    """The study's trials ranked by validation accuracy (the best ten), counts, and the best one's command."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    states = {s: sum(t.state == s for t in trials) for s in TrialState}
    lines = [
        f"Study {study.study_name}: {states[TrialState.COMPLETE]} complete, {states[TrialState.PRUNED]} pruned, "
        f"{states[TrialState.FAIL]} failed, {states[TrialState.RUNNING]} running, {states[TrialState.WAITING]} "
        f"queued; {meta['trials']} planned"
    ]
    done = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: -t.value)
    if not done:
        return "\n".join(lines + ["No trial has completed yet."])
    names = list(done[0].params)
    rows = [["rank", "trial", "val acc", "test acc", *map(_param_name, names)]]
    for i, t in enumerate(done[:10], 1):
        test = t.user_attrs.get("test_accuracy")
        cells = [f"{t.value:.2f}%", f"{test:.2f}%" if isinstance(test, (int, float)) else "-"]
        rows.append([str(i), str(t.number), *cells, *(_param_value(t.params.get(n, "-")) for n in names)])
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    best = done[0]
    run = best.user_attrs.get("run", "?")
    lines.append(
        f"Best: trial {best.number} ({run}): val {best.value:.2f}%, test {_pct(best.user_attrs.get('test_accuracy'))}"
    )
    lines.append(f"  alone: {best_command(space, best.params)}")
    return "\n".join(lines)


def _pct(value: Any) -> str:
    return f"{value:.2f}%" if isinstance(value, (int, float)) else "-"


def best_command(space: Space, params: dict[str, Any]) -> str:
    """The command line that trains the best trial's config on its own (the options that differ from the
    defaults; the searched ones at the trial's values, numbers in full so that it trains the same run)."""
    cfg = space.config(params)
    default = RunConfig()
    parts = ["fmtui train --no-ui"]
    for field in OPTIONS:
        if field in WORKER_LOCAL or getattr(cfg, field) == getattr(default, field):
            continue
        value = getattr(cfg, field)
        parts.append(f"--{cli_name(field)} {repr(value) if isinstance(value, float) else format_value(value)}")
    return " ".join(parts)

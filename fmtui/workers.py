"""What the app's worker threads run: training and the lecture experiment, reported as messages.

These functions only call the engine and `post` (thread-safe, never blocking); no widget is touched
here, so the app's handlers own all UI state. Nothing heavy is imported until a worker starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fmtui.config import RunConfig, format_value
from fmtui.errors import RunError, RunFolderRefused, error_message
from fmtui.events import BatchProgress, EpochEnd, Event, Finished, Started
from fmtui.messages import (
    EpochFinished,
    ExperimentProgress,
    LossCurve,
    LrFindFailed,
    LrFindFinished,
    LrFindProgress,
    ResumeRefused,
    RunOpenFailed,
    SavedResults,
    TrainingFailed,
    TrainingFinished,
    TrainingStarted,
)
from fmtui.registry import MODELS
from fmtui.runfolder.convert import epoch_end
from fmtui.runfolder.schema import MODEL, Status
from fmtui.runfolder.writer import new_sweep_dir
from fmtui.text import safe_text
from fmtui.watch import POLL_INTERVAL, RunFollower

PROGRESS_INTERVAL = 0.5
"""Seconds between BatchProgress events: twice a second, however fast the device. Each one costs the UI
thread a redraw, and UI work holds the GIL that the training thread needs (measured: BENCHMARKS.md)."""


LR_FIND_INTERVAL = 0.2
"""Seconds between the finder's progress messages: its curve grows visibly during a search of a second or two."""


def run_training(
    cfg: RunConfig | None,
    runs_dir: Path,
    post: Callable[[Any], Any],
    should_stop: Callable[[], object],
    *,
    resume: Path | None = None,
    epochs: int | None = None,
) -> None:
    """Train cfg through fmtui.session (the run folder written as the headless mode writes it), posting one
    message per event.

    With `resume` (a run folder), go on training that run in its folder instead (cfg is then unused;
    `epochs` is the total to reach): a folder that cannot be resumed (fmtui.resume; other data than it
    trained on included) is a ResumeRefused with the reason; once training goes on, the epochs it had are
    posted after Started, so the charts show the whole run.
    """
    from fmtui.session import train_and_record

    folder: Path | None = None
    opened = None
    try:
        from fmtui.data import load_dataset
        from fmtui.resume import check_data, open_resume

        if resume is not None:
            try:
                opened = open_resume(resume, epochs)
                cfg = opened.config
                ds = load_dataset(cfg.dataset, cfg.data_dir)
                check_data(opened, ds.files, len(ds.y_train), len(ds.y_test))
            except RunFolderRefused as e:
                post(ResumeRefused(str(e)))
                return
            done, what = opened.checkpoint["metrics"], {"resume": opened}
        else:
            assert cfg is not None
            ds = load_dataset(cfg.dataset, cfg.data_dir)
            done, what = [], {"config": cfg, "folder": runs_dir}
        curve = LossCurve()
        for event, folder in train_and_record(
            **what, dataset=ds, should_stop=should_stop, progress_interval=PROGRESS_INTERVAL
        ):
            post(_message(event, folder, ds, curve))
            if isinstance(event, Started):
                for row in done:
                    post(EpochFinished(epoch_end(row, event.config)))
    except Exception as exc:  # any failure becomes a message on screen, never a crash
        post(TrainingFailed(error_message(exc), folder))
    finally:
        if opened is not None:
            opened.close()


NO_WEIGHTS = "the weights view draws softmax regressions and MLPs (a CNN's first layer is 3x3 filters)"


def saved_weights(run_dir: Path, cfg: RunConfig, shape: tuple[int, int, int], classes: int) -> tuple[Any, str]:
    """What a saved run's model.pt learned, for the weights view: (LearnedWeights, "") or (None, why not)."""
    from fmtui.models import build_model, learned_weights
    from fmtui.runfolder.tensors import load_state_dict

    spec = MODELS.get(cfg.model)
    if spec is None or not spec.weights_view:
        return None, NO_WEIGHTS
    try:
        model = build_model(cfg, shape, classes)
        model.load_state_dict(load_state_dict(Path(run_dir) / MODEL))
    except Exception as exc:  # no model.pt, a broken one, weights of another shape: say why, never crash
        return None, f"no weights to draw: {error_message(exc)}"
    return learned_weights(model, shape), ""


def _message(event: Event, run_dir: Path | None, ds: Any, curve: LossCurve) -> Any:
    """The app's message for one engine event (progress with the run's loss curve so far)."""
    match event:
        case Started():
            return TrainingStarted(event, run_dir, ds.x_test, ds.classes)
        case BatchProgress():
            return curve.progress(event)
        case EpochEnd():
            return EpochFinished(event)
        case Finished():
            return TrainingFinished(event, run_dir)
    raise TypeError(f"not a training event: {type(event).__name__}")


def run_lr_find(cfg: RunConfig, post: Callable[[Any], Any], should_stop: Callable[[], bool]) -> None:
    """The learning-rate finder on cfg (fresh weights; nothing is written), posting one message per event."""
    try:
        from fmtui import lrfind

        for event in lrfind.lr_find(cfg, should_stop=should_stop, progress_interval=LR_FIND_INTERVAL):
            if isinstance(event, lrfind.Progress):
                post(LrFindProgress(event))
            elif isinstance(event, lrfind.Finished):  # (Started: the panel already names the config)
                post(LrFindFinished(event))
    except Exception as exc:  # any failure becomes a message on screen, never a crash
        post(LrFindFailed(error_message(exc)))


def watch_run(
    path: Path,
    post: Callable[[Any], Any],
    should_stop: Callable[[], bool],
    *,
    interval: float = POLL_INTERVAL,
    watch_id: int = 0,
) -> None:
    """Follow a run that another process trains (fmtui.watch.RunFollower) and post the messages a run trained
    here would post, each naming its watch (`watch_id`), so the Train pane shows it as it trains: its history,
    progress, step curve and epoch log, from its files at once. Nothing here imports torch: the Errors pane's
    images, predictions and weights are loaded apart (load_saved), once that pane is shown. Ends quietly when
    should_stop() (no longer watched); a folder that vanishes or cannot be read is a TrainingFailed with the reason,
    a run that ended with an error too. A writer that holds its lock but stopped beating its heartbeat (SIGSTOP) is
    said once, as a note, when it goes quiet; a step curve that cannot be read, once too."""
    follower, curve, tag, quiet, curve_problem = RunFollower(path), LossCurve(watch_id), {"watch_id": watch_id}, "", ""
    try:
        while not should_stop():
            for event in follower.poll():
                if isinstance(event, Started):
                    live = follower.record is not None and follower.record.status == Status.RUNNING
                    writer = follower.writer.describe() if live else ""  # a finished run's process is long gone
                    post(TrainingStarted(event, path, None, event.classes, writer, **tag))
                elif isinstance(event, EpochEnd):
                    post(EpochFinished(event, **tag))
                elif isinstance(event, Finished) and event.status == Status.ERROR:
                    post(TrainingFailed(event.message, path, **tag))
                elif isinstance(event, Finished):
                    post(TrainingFinished(event, path, **tag))
                else:
                    post(curve.progress(event))
            if follower.curve_problem and not curve_problem:
                post(RunOpenFailed(f"no step curve: {safe_text(follower.curve_problem)}", **tag))
            curve_problem = follower.curve_problem
            if follower.finished:
                return
            if follower.quiet and not quiet:
                post(RunOpenFailed(f"{safe_text(path.name)}: {follower.quiet}", **tag))
            quiet = follower.quiet
            _sleep(interval, should_stop)
    except RunError as e:
        post(TrainingFailed(safe_text(str(e)), path, **tag))
    except Exception as exc:  # whatever the folder holds: a message on screen, never a crash
        post(TrainingFailed(safe_text(f"cannot watch {path}: {error_message(exc)}"), path, **tag))


TestSplit = tuple[Any, list[str]]
"""A dataset's test images (N, C, H, W) uint8 and its class names: what the Errors pane draws predictions on."""


def load_saved(
    path: Path,
    cfg: RunConfig,
    post: Callable[[Any], Any],
    *,
    epoch: int,
    data_dir: str | None = None,
    split: TestSplit | None = None,
    watch_id: int = 0,
) -> None:
    """The Errors pane's part of a watched run, loaded with torch (fmtui.app_live runs it in a worker once that
    pane is shown): the test split the run trains on (`split` when an earlier load has it), and the predictions.pt
    and model.pt it saved, those of `epoch` or of a newer one (both are written before an epoch's metrics line).
    Posts one SavedResults; what cannot be loaded is said in it, never raised."""
    try:
        if split is None:
            from fmtui.data import load_dataset

            ds = load_dataset(cfg.dataset, cfg.data_dir or data_dir)
            split = (ds.x_test, ds.classes)
        from fmtui.runfolder.tensors import load_results

        images, classes = split
        try:
            results = load_results(path)
        except RunError:  # a file being replaced, or an older run without predictions: the next epoch brings them
            results = None
        weights, note = saved_weights(path, cfg, tuple(images.shape[1:]), len(classes))
    except Exception as exc:  # another user's data folder, no data here: the run is still watched
        problem = safe_text(f"{path.name}'s mistakes cannot be shown: {error_message(exc)}")
        post(SavedResults(epoch, None, None, [], problem=problem, watch_id=watch_id))
        return
    post(SavedResults(epoch, results, images, classes, weights, note, watch_id=watch_id))


def _sleep(seconds: float, should_stop: Callable[[], bool]) -> None:
    """Sleep, waking up every 0.05 s to see whether to stop (unwatching is then at once)."""
    end = time.monotonic() + seconds
    while not should_stop() and (left := end - time.monotonic()) > 0:
        time.sleep(min(left, 0.05))


def run_experiment(
    configs: list[RunConfig], runs_dir: Path, post: Callable[[Any], Any], should_stop: Callable[[], bool]
) -> None:
    """Train the configs as one sweep (stacked where possible); after every epoch, post what to show.

    An epoch of the experiment has ended when the last of the runs training right now (one run, or a
    stacked group) reports its EpochEnd: the events say so, whatever the grouping.
    """
    from fmtui.sweep import Tally, run_sweep

    paths: dict[int, Path] = {}
    tally = Tally(configs)
    start = time.monotonic()
    try:
        out = new_sweep_dir(runs_dir)
        for i, path, event in run_sweep(configs, out, should_stop=should_stop):
            if path is not None:  # a run that failed before it started has no folder
                paths[i] = path
            tally.add(i, path, event)
            if isinstance(event, EpochEnd) and i == max(tally.training):
                text = f"lecture experiment: epoch {event.epoch}/{event.epochs}, {len(tally.runs)} of {len(configs)}"
                fraction = experiment_fraction(configs, tally)
                eta = (time.monotonic() - start) * (1 - fraction) / fraction if fraction > 0 else None
                group = run_group(configs, sorted(tally.training))
                post(
                    ExperimentProgress(
                        list(paths.values()),
                        text + " runs done",
                        False,
                        group,
                        event.epoch,
                        event.epochs,
                        fraction,
                        eta,
                    )
                )
        text = f"lecture experiment: {len(tally.runs)} of {len(configs)} runs in {out.name}"
        text += experiment_choice([run.summary_row([]) for run in tally.runs])
    except Exception as exc:  # missing data, out of memory...: a message on screen, never a crash
        text = f"lecture experiment failed: {error_message(exc)}"
    post(ExperimentProgress(list(paths.values()), text, True, fraction=1.0))


def experiment_choice(rows: list[dict]) -> str:
    """'; best: zscore lr 0.01, 79.12% test (ranked on the test set: no validation split); none lr 0.01 scored
    79.53% (test) but its loss exploded: not ranked': the experiment's verdict by fmtui.ranking ("" with no result)."""
    from fmtui.ranking import not_ranked_line, verdict

    def name(row: dict) -> str:
        return f"{row['norm']} lr {row['lr']:g}"

    choice = verdict(rows)
    best, text = choice.best, ""
    if best is not None and choice.on_test:
        text = f"; best: {name(best)}, {best['best_test_accuracy']:.2f}% test (ranked on the test set: no validation split)"
    elif best is not None:
        text = f"; best: {name(best)}, {best['best_val_accuracy']:.2f}% validation -> {best['test_accuracy']:.2f}% test"
    elif choice.passed_over is not None:
        text = "; best: none (no run is healthy)"
    if choice.passed_over is not None:
        text += f"; {not_ranked_line(choice.passed_over, choice.by, name(choice.passed_over))}"
    return text


def experiment_fraction(configs: list[RunConfig], tally) -> float:
    """The share of the experiment's epochs done: finished runs count whole (a stopped or diverged run will not
    train more), the runs training now count their finished epochs."""
    total = sum(c.epochs for c in configs) or 1
    done = sum(r.config.epochs for r in tally.runs) + sum(len(tally.epochs.get(i, [])) for i in tally.training)
    return min(done / total, 1.0)


def run_group(configs: list[RunConfig], indices: list[int]) -> str:
    """'runs 3-4 of 8 (norm unit; lr 0.01/1e-05)': which runs train now and what sets them apart."""
    from fmtui.sweep import varying_fields

    if not indices:
        return ""
    first, last = indices[0] + 1, indices[-1] + 1
    which = f"run {first}" if first == last else f"runs {first}-{last}"
    values = []
    for field in varying_fields(configs):
        shown = dict.fromkeys(format_value(getattr(configs[i], field)) for i in indices)
        values.append(f"{field} {'/'.join(shown)}")
    return f"{which} of {len(configs)}" + (f" ({'; '.join(values)})" if values else "")

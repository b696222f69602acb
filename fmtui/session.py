"""One training session: train one run (fresh or resumed), or one stacked group of runs, and record each in its
run folder. The headless `train`, the dashboard's worker, sweeps (and a search that trains trial after
trial) all train through here, so a run is recorded, resumed and stopped the same way wherever it started.

    for event, folder in train_and_record(cfg, folder=runs_dir, should_stop=stop.reason):
        ...   # show the event; the run folder is up to date with it

The engine yields events (fmtui.engine); the recorder writes them (fmtui.recorder) before they are handed on:
what a caller shows is on disk already. An exception that ends training is recorded as the error of every
run that had not finished, then raised (the caller says it in one line). To stop a run, make `should_stop`
return something true: True, or a string naming why ("SIGTERM", "pruned by the search"), which the run's
summary then says; the run finishes as `stopped` with its finished epochs kept. Engine side: no click, no
textual; torch only through the engine, imported when training begins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from fmtui.config import RunConfig
from fmtui.events import Event
from fmtui.recorder import RunRecorder
from fmtui.runfolder.writer import new_run_dir

if TYPE_CHECKING:
    from fmtui.data import Dataset
    from fmtui.resume import Resume

StopCheck = Callable[[], object]
"""Polled between batches: something true stops the run after its current batch (a string says why)."""

T = TypeVar("T")

Folder = Path | Callable[[RunConfig], Path]
"""Where a new run goes: a runs folder (a new dated folder is made in it) or a function that makes the run's
folder from its config (called when the run starts: data and model are ready, so bad input leaves none)."""


class Recorded(NamedTuple):
    """One event of a run, and the run's folder once it has one (the event is written into it already)."""

    event: Event
    folder: Path | None


def _maker(folder: Folder) -> Callable[[RunConfig], Path]:
    if callable(folder):
        return folder
    base = Path(folder)
    return lambda cfg: new_run_dir(base, cfg)


def train_and_record(
    config: RunConfig | None = None,
    *,
    folder: Folder | None = None,
    resume: Resume | None = None,
    should_stop: StopCheck = lambda: False,
    progress_interval: float = 0.1,
    dataset: Dataset | None = None,
) -> Iterator[Recorded]:
    """Train one run and record it; yield each event with the run's folder.

    Fresh: `config` and `folder` (see Folder). Resumed: `resume` (fmtui.resume.open_resume, whose lock it
    holds; closed here when training ends): the run goes on in its own folder with its own config, after the
    data it is given is checked against the data it trained on (RunFolderRefused on a mismatch, before any
    event). `dataset` saves loading the data again (the dashboard has it already).

    Raises ConfigError / DataError for bad input before any event, RunFolderRefused when the folder is
    another writer's, RunFolderError when the folder cannot be written (`began` says whether training had
    begun), and whatever ended training (out of memory, ...), after recording it in the run folder."""
    from fmtui import engine

    if resume is not None:
        try:
            config = resume.config
            dataset = _checked_data(resume, dataset)
            recorder = RunRecorder(lambda cfg: resume.path, resume=resume)
            events = engine.train(
                config,
                dataset=dataset,
                should_stop=should_stop,
                progress_interval=progress_interval,
                resume=resume.checkpoint,
            )
            yield from _record(((0, ev) for ev in events), recorder, lambda i, ev, path: Recorded(ev, path))
        finally:
            resume.close()
        return
    if config is None or folder is None:
        raise TypeError("train_and_record needs a config and a folder, or a resume")
    events = engine.train(config, dataset=dataset, should_stop=should_stop, progress_interval=progress_interval)
    recorder = RunRecorder(_maker(folder))
    yield from _record(((0, ev) for ev in events), recorder, lambda i, ev, path: Recorded(ev, path))


def _checked_data(resume: Resume, dataset: Dataset | None) -> Dataset:
    """The data the resumed run goes on with, once it is known to be the data it trained on."""
    from fmtui.data import load_dataset
    from fmtui.resume import check_data

    cfg = resume.config
    ds = dataset if dataset is not None else load_dataset(cfg.dataset, cfg.data_dir)
    check_data(resume, ds.files, len(ds.y_train), len(ds.y_test))
    return ds


class GroupEvent(NamedTuple):
    """One event of run `index` of a group trained together, and that run's folder once it has one."""

    index: int
    event: Event
    folder: Path | None


def train_group_and_record(
    configs: list[RunConfig],
    folder: Folder,
    *,
    should_stop: StopCheck = lambda: False,
    progress_interval: float = 0.1,
) -> Iterator[GroupEvent]:
    """Train configs that may train together as one stacked model (fmtui.batched; one config: a single run)
    and record each in its own folder; yield (its index in configs, event, its folder). Errors as in
    `train_and_record`: every run of the group that had not finished records it."""
    from fmtui import engine

    if len(configs) > 1:
        from fmtui.batched import train_batched

        events = train_batched(configs, should_stop=should_stop, progress_interval=progress_interval)
    else:
        events = (
            (0, ev) for ev in engine.train(configs[0], should_stop=should_stop, progress_interval=progress_interval)
        )
    yield from _record(events, RunRecorder(_maker(folder)), GroupEvent)


def _record(
    events: Iterator[tuple[int, Event]], recorder: RunRecorder, make: Callable[[int, Event, Path | None], T]
) -> Iterator[T]:
    """Each (index, event) into the recorder, then yielded as make(index, event, the run's folder)."""
    with recorder:
        for i, ev in events:
            path = recorder.handle(ev, i)
            yield make(i, ev, path)

"""One training session: train one run (fresh or resumed), or one stacked group of runs, and record each in its
run folder. The headless `train`, the dashboard's worker, sweeps (and a search that trains trial after
trial) all train through here, so a run is recorded, resumed and stopped the same way wherever it started.

    for event, folder in train_and_record(cfg, folder=runs_dir, should_stop=stop.reason):
        ...   # show the event; the run folder is up to date with it

The engine yields events (fmtui.engine); the recorder writes them (fmtui.recorder) before they are handed on:
what a caller shows is on disk already. An exception that ends training is recorded as the error of every
run that had not finished, then raised (the caller says it in one line). To stop a run, make `should_stop`
return something true: True, or a string naming why ("SIGTERM"), which the run's summary then says; the run
finishes as `stopped` with its finished epochs kept. A search that prunes a run returns a `Pruned` instead
(its words name why; summary.json's `pruned_at` says that the run was pruned, and after which epoch). Runs
trained stacked are dropped one by one the same way, by `should_drop`. A caller's own facts about a run go
into config.json's resolved part with `resolved` (a search's trial: its study), written once, at the start.
Engine side: no click, no textual; torch only through the engine, imported when training begins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from fmtui.config import RunConfig
from fmtui.events import EpochEnd, Event, Finished
from fmtui.recorder import RunRecorder
from fmtui.runfolder.schema import Status
from fmtui.runfolder.writer import new_run_dir

if TYPE_CHECKING:
    from fmtui.data import Dataset
    from fmtui.resume import Resume

StopCheck = Callable[[], object]
"""Polled between batches: something true stops the run after its current batch (a string, or a Pruned, says
why)."""
DropCheck = Callable[[int], object]
"""Asked of each run of a stacked group still training, after each of its epochs but the last: something true
(a string, or a Pruned) stops that run alone; the others go on."""


@dataclass(frozen=True)
class Pruned:
    """A search's verdict on a run after its epoch `epoch`: stop it, pruned, for `why` (the pruner and its
    numbers). The run ends `stopped by <why> ...`, and its summary.json's pruned_at says `epoch`."""

    epoch: int
    why: str


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
    resolved: dict[str, Any] | None = None,
) -> Iterator[Recorded]:
    """Train one run and record it; yield each event with the run's folder.

    Fresh: `config` and `folder` (see Folder). Resumed: `resume` (fmtui.resume.open_resume, whose lock it
    holds; closed here when training ends): the run goes on in its own folder with its own config, after the
    data it is given is checked against the data it trained on (RunFolderRefused on a mismatch, before any
    event). `dataset` saves loading the data again (the dashboard has it already). `resolved`: facts of the
    caller's added to config.json's resolved part (keys of their own: a search's trial names its `study`).

    Raises ConfigError / DataError for bad input before any event, RunFolderRefused when the folder is
    another writer's, RunFolderError when the folder cannot be written (`began` says whether training had
    begun), and whatever ended training (out of memory, ...), after recording it in the run folder."""
    from fmtui import engine

    stops = _Stops(should_stop)
    extra = [resolved] if resolved else []
    if resume is not None:
        try:
            config = resume.config
            dataset = _checked_data(resume, dataset)
            recorder = RunRecorder(lambda cfg: resume.path, resume=resume, resolved=extra)
            events = engine.train(
                config,
                dataset=dataset,
                should_stop=stops.stop,
                progress_interval=progress_interval,
                resume=resume.checkpoint,
            )
            yield from _record(((0, ev) for ev in events), recorder, stops, lambda i, ev, path: Recorded(ev, path))
        finally:
            resume.close()
        return
    if config is None or folder is None:
        raise TypeError("train_and_record needs a config and a folder, or a resume")
    events = engine.train(config, dataset=dataset, should_stop=stops.stop, progress_interval=progress_interval)
    recorder = RunRecorder(_maker(folder), resolved=extra)
    yield from _record(((0, ev) for ev in events), recorder, stops, lambda i, ev, path: Recorded(ev, path))


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
    folder: Folder | Sequence[Folder],
    *,
    should_stop: StopCheck = lambda: False,
    progress_interval: float = 0.1,
    dataset: Dataset | None = None,
    should_drop: DropCheck = lambda i: False,
    resolved: Sequence[dict[str, Any]] = (),
) -> Iterator[GroupEvent]:
    """Train configs that may train together as one stacked model (fmtui.batched; one config: a single run)
    and record each in its own folder; yield (its index in configs, event, its folder). `folder`: one Folder
    for all, or run i's own at i; `resolved[i]`, `should_drop(i)`: see the module's docstring. Errors as in
    `train_and_record`: every run of the group that had not finished records it."""
    from fmtui import engine

    stops = _Stops(should_stop, should_drop, single=len(configs) == 1)
    if len(configs) > 1:
        from fmtui.batched import train_batched

        events = train_batched(
            configs,
            dataset=dataset,
            should_stop=stops.stop,
            progress_interval=progress_interval,
            should_drop=stops.drop,
        )
    else:
        events = (
            (0, ev)
            for ev in engine.train(
                configs[0], dataset=dataset, should_stop=stops.stop, progress_interval=progress_interval
            )
        )
    makers = _maker(folder) if isinstance(folder, (str, Path)) or callable(folder) else [_maker(f) for f in folder]
    yield from _record(events, RunRecorder(makers, resolved=resolved), stops, GroupEvent)


class _Stops:
    """The caller's stop checks as the engine asks them: a Pruned is handed on as its words and remembered, so
    that the run's Finished says pruned_at. The single run of a "group" of one trains outside the stacked loop:
    its should_drop is asked here after each epoch, and a drop stops it before its next batch."""

    def __init__(self, should_stop: StopCheck, should_drop: DropCheck | None = None, single: bool = False) -> None:
        self.should_stop, self.should_drop, self.single = should_stop, should_drop, single
        self.pruned: dict[int | None, Pruned] = {}
        """Runs pruned, by index (None: every run, pruned by should_stop)."""
        self.dropped: object = False
        """Why the single run is to stop (should_drop(0) after an epoch)."""

    def stop(self) -> object:
        return self.dropped or self._said(None, self.should_stop())

    def drop(self, i: int) -> object:
        return self._said(i, self.should_drop(i)) if self.should_drop is not None else False

    def after(self, i: int, ev: Event) -> None:
        """The consumer has handled ev: after a single run's epoch (but the last), ask whether to drop it."""
        if self.single and isinstance(ev, EpochEnd) and ev.epoch < ev.epochs and not self.dropped:
            self.dropped = self.drop(i)

    def _said(self, i: int | None, reason: object) -> object:
        if isinstance(reason, Pruned):
            self.pruned[i] = reason
            return reason.why
        return reason

    def verdict(self, i: int, ev: Finished) -> Finished:
        """A pruned run's Finished, marked so (the recorder writes pruned_at)."""
        pruned = self.pruned.get(i) or self.pruned.get(None)
        if pruned is None or ev.status != Status.STOPPED:
            return ev
        return dataclasses.replace(ev, pruned_at=pruned.epoch)


def _record(
    events: Iterator[tuple[int, Event]],
    recorder: RunRecorder,
    stops: _Stops,
    make: Callable[[int, Event, Path | None], T],
) -> Iterator[T]:
    """Each (index, event) into the recorder, then yielded as make(index, event, the run's folder)."""
    with recorder:
        for i, ev in events:
            if isinstance(ev, Finished):
                ev = stops.verdict(i, ev)
            path = recorder.handle(ev, i)
            yield make(i, ev, path)
            stops.after(i, ev)

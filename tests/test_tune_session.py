"""What fmtui tune asks of the one session path (fmtui.session): a caller's facts in config.json from the start,
a run pruned through its stop check and marked so in its folder, and runs of a stacked group dropped one by one
while the others train on."""

from __future__ import annotations

import pytest

from fmtui.config import RunConfig
from fmtui.events import EpochEnd, Finished
from fmtui.runfolder.read import read_run
from fmtui.session import Pruned, train_and_record, train_group_and_record

pytestmark = pytest.mark.engine


def config(data, **fields) -> RunConfig:
    return RunConfig(data_dir=str(data), epochs=3, batch_size=100, hidden=(16,), device="cpu", **fields)


def test_a_run_pruned_through_its_stop_check_is_marked_pruned_with_the_callers_facts(tiny_data, tmp_path):
    verdict: list[Pruned] = []
    seen = []
    for ev, _ in train_and_record(
        config(tiny_data, lr=0.05),
        folder=lambda cfg: tmp_path / "run",
        should_stop=lambda: verdict[0] if verdict else False,
        resolved={"study": {"name": "s", "trial": 7}},
    ):
        seen.append(ev)
        if isinstance(ev, EpochEnd) and ev.epoch == 1:
            verdict.append(Pruned(1, "the test's pruner"))
    run = read_run(tmp_path / "run")
    assert run.resolved["study"] == {"name": "s", "trial": 7} and run.resolved["params"] > 0  # beside its own facts
    assert (run.status, run.pruned_at, run.epochs_done) == ("stopped", 1, 1)
    assert run.message.startswith("stopped by the test's pruner during epoch 2")
    assert seen[-1].pruned_at == 1  # the Finished handed on says it too


def test_a_stop_that_is_no_prune_leaves_no_mark(tiny_data, tmp_path):
    stop: list[str] = []
    for ev, _ in train_and_record(
        config(tiny_data, lr=0.05), folder=lambda cfg: tmp_path / "run", should_stop=lambda: stop[0] if stop else False
    ):
        if isinstance(ev, EpochEnd):
            stop.append("SIGTERM")
    run = read_run(tmp_path / "run")
    assert run.status == "stopped" and run.pruned_at is None and "pruned_at" not in run.summary
    assert "stopped by SIGTERM" in run.message


def test_a_stacked_group_drops_the_runs_it_is_told_to_and_the_others_train_on(tiny_data, tmp_path):
    configs = [config(tiny_data, lr=lr) for lr in (0.05, 0.1, 0.2)]
    asked: list[tuple[int, int]] = []
    epochs: dict[int, int] = {}

    def should_drop(i: int) -> object:
        asked.append((i, epochs[i]))
        return {1: Pruned(1, "the test's pruner"), 2: "a plain reason"}.get(i) if epochs[i] == 1 else False

    finished: dict[int, Finished] = {}
    folders = {}
    for i, ev, path in train_group_and_record(
        configs,
        [lambda cfg, i=i: tmp_path / f"trial-{i}" for i in range(3)],  # run i's own folder
        should_drop=should_drop,
        resolved=[{"study": {"trial": i}} for i in range(3)],
    ):
        folders[i] = path
        if isinstance(ev, EpochEnd):
            epochs[i] = ev.epoch
        elif isinstance(ev, Finished):
            finished[i] = ev
    assert finished[0].status == "completed" and len(finished[0].history) == 3
    assert finished[0].message.endswith("(3 runs at once)")  # they did train stacked
    assert (finished[1].status, finished[1].pruned_at, len(finished[1].history)) == ("stopped", 1, 1)
    assert (finished[2].status, finished[2].pruned_at, len(finished[2].history)) == ("stopped", None, 1)
    assert "stopped by a plain reason" in finished[2].message
    assert sorted(asked) == [(0, 1), (0, 2), (1, 1), (2, 1)]  # after each epoch but the last, of each run training
    for i in range(3):
        run = read_run(folders[i])
        assert run.path == tmp_path / f"trial-{i}" and run.resolved["study"] == {"trial": i}
        assert (run.epochs_done, run.pruned_at) == ((3, None), (1, 1), (1, None))[i]


def test_a_group_of_one_is_dropped_between_its_epochs_too(tiny_data, tmp_path):
    epochs: list[int] = []
    events = train_group_and_record(
        [config(tiny_data, lr=0.05)],
        [lambda cfg: tmp_path / "one"],
        should_drop=lambda i: Pruned(epochs[-1], "the test's pruner") if epochs[-1] == 2 else False,
    )
    for _, ev, _ in events:
        if isinstance(ev, EpochEnd):
            epochs.append(ev.epoch)
    run = read_run(tmp_path / "one")
    assert epochs == [1, 2] and (run.status, run.pruned_at, run.epochs_done) == ("stopped", 2, 2)

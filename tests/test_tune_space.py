"""fmtui tune's search space: options written like sweep lists (choices), ranges (log scale where it fits), fixed
values; what a study cannot search, said in one line; a study's definition read back as the same space."""

import json

import pytest
from runfolders import write_run

from fmtui.config import ConfigError, RunConfig
from fmtui.report import run_status
from fmtui.runfolder.read import read_run
from fmtui.tune.folder import StudyFolder, trial_state
from fmtui.tune.space import differences, parse_space, space_of, split_items

pytestmark = pytest.mark.engine


def space(**texts):
    return parse_space({f: split_items(f, t) for f, t in texts.items()}, RunConfig())


def test_lists_are_choices_ranges_are_sampled_and_single_values_are_fixed():
    s = space(norm="none,unit,zscore", lr="1e-5..1", weight_decay="1e-6..1e-2", dropout="0..0.5", epochs="3")
    dims = {d.param: d for d in s.dims}
    assert dims["norm"].choices == ("none", "unit", "zscore")
    assert (dims["lr"].low, dims["lr"].high, dims["lr"].log) == (1e-5, 1.0, True)
    assert dims["weight_decay"].log and not dims["dropout"].log and not dims["dropout"].integer
    assert s.base.epochs == 3 and s.base.val_split == 0.1  # ranked on a validation split unless told otherwise
    cfg = s.config({"norm": "zscore", "lr": 0.02, "weight_decay": 1e-4, "dropout": 0.25})
    assert (cfg.norm, cfg.lr, cfg.weight_decay, cfg.dropout, cfg.epochs) == ("zscore", 0.02, 1e-4, 0.25, 3)


def test_hidden_sizes_take_a_log_range_per_layer_and_lists_of_layouts():
    s = space(hidden="64..1024,32")
    (dim,) = s.dims
    assert (dim.param, dim.low, dim.high, dim.integer, dim.log) == ("hidden1", 64, 1024, True, True)
    assert s.config({"hidden1": 300}).hidden == (300, 32)
    assert space(hidden="64..1024").config({"hidden": 77}).hidden == (77,)
    layouts = space(hidden="256;512,256").dims[0]
    assert layouts.choices == ("256", "512,256") and space(hidden="256;512,256").config(
        {"hidden": "512,256"}
    ).hidden == (
        512,
        256,
    )
    assert space(hidden="64..1024,32").searched() == {"hidden": "64..1024,32"}


@pytest.mark.parametrize(
    ("texts", "words"),
    [
        ({"norm": "1..2"}, "--norm: '1..2': only numbers take a range"),
        ({"lr": "1..1e-3"}, "--lr: the range 1..1e-3 is empty"),
        ({"lr": "0.1..0.1"}, "--lr: the range 0.1..0.1 is empty"),
        ({"weight_decay": "0..1e-3"}, "--weight-decay: 0..1e-3: its range is searched on a log scale"),
        ({"lr": "1e-3..1..2"}, "--lr: expected a range like 1e-5..1"),
        ({"lr": "1e-3..200"}, "--lr: must be <= 100"),
        ({"lr": "0.1,1e-3..1"}, "--lr: a range cannot be one of several values"),
        ({"epochs": "3,5"}, "--epochs: give one value: pruning compares trials epoch by epoch"),
        ({"val_split": "0.1,0.2"}, "--val-split: give one value"),
        ({"val_split": "0"}, "--val-split: trials are ranked on a validation split"),
        ({"dataset": "mnist,fashion-mnist"}, "--dataset: give one value"),
        ({"norm": "unit,UNIT"}, "--norm: a value is listed twice"),
    ],
)
def test_what_cannot_be_searched_is_one_line_naming_the_option(texts, words):
    with pytest.raises(ConfigError) as e:
        space(**texts)
    assert str(e.value).startswith(words) and "\n" not in str(e.value)


def test_grid_needs_lists_and_counts_their_combinations():
    assert space(norm="none,unit", lr="0.01,0.1,1").grid_size() == 6
    with pytest.raises(ConfigError, match="the grid sampler needs lists, not ranges"):
        space(lr="1e-3..1").grid()


def test_a_studys_definition_comes_back_as_the_same_space_on_any_worker():
    s = space(lr="1e-4..1", hidden="64..1024", norm="unit,zscore", epochs="3", val_split="0.2")
    worker = RunConfig(device="cpu", threads=2, data_dir="/data")
    again = space_of(s.definition(), worker)
    assert again.dims == s.dims and again.hidden == s.hidden
    assert (again.base.epochs, again.base.val_split, again.base.device, again.base.threads) == (3, 0.2, "cpu", 2)
    assert "device" not in s.definition()["fixed"] and "data_dir" not in s.definition()["fixed"]  # each worker's own
    assert differences(s.definition(), s.definition()) == []
    other = space(lr="1e-3..1", hidden="64..1024", norm="unit,zscore", epochs="3", val_split="0.2").definition()
    assert differences(s.definition(), other) == ["--lr 0.001..1 (the study: 0.0001..1)"]


def test_a_trials_state_comes_from_its_folders_fields_not_from_its_words(tmp_path):
    """summary.json's pruned_at says pruned (and `fmtui runs` says so); a message that only reads like a prune
    does not; a diverged trial was pruned in the epoch where its loss broke."""

    def trial(name: str, status: str, **summary) -> tuple:
        path = write_run(tmp_path / name, epochs=3, done=2, status=status)
        file = path / "summary.json"
        file.write_text(json.dumps({**json.loads(file.read_text()), **summary}))
        run = read_run(path)
        return trial_state(run), run_status(run)

    assert trial("pruned", "stopped", pruned_at=2) == (("pruned", "at epoch 2"), "stopped, pruned at epoch 2")
    words = trial("words", "stopped", message="pruned at epoch 2: the asha pruner")
    assert words == (("failed", "pruned at epoch 2: the asha pruner"), "stopped")
    assert trial("diverged", "diverged")[0] == ("pruned", "at epoch 3 (diverged)")
    assert trial("done", "completed")[0] == ("complete", "2 epochs")


def test_a_study_folders_strings_are_made_safe_to_show(tmp_path):
    """study.json and a trial's config.json are untrusted: no escape sequence reaches the terminal."""
    study = tmp_path / "s"
    bad = "x\x1b]0;owned\x07"
    study.mkdir()
    (study / "study.json").write_text(json.dumps({"name": bad, "trials": 2, "search": {"lr": bad}}))
    write_run(study / "trial-0000", epochs=1, config={"resolved": {"study": {"trial": 0, "params": {bad: bad}}}})
    snap = StudyFolder(study).scan()
    shown = [snap.name, *snap.search.values(), *snap.trials[0].params, *snap.trials[0].params.values()]
    assert all("\x1b" not in text and "\x07" not in text for text in shown), shown
    assert snap.name == "x\\x1b]0;owned\\x07"

"""fmtui tune end to end on small synthetic data: workers sharing one study (a journal file, a sqlite URL), pruning,
a worker killed or stopped mid-trial, storages that cannot be used, and Optuna missing."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli import fmtui

from fmtui.config import RunConfig
from fmtui.events import EpochEnd, Health
from fmtui.install_hint import install_command
from fmtui.runfolder.read import read_run
from fmtui.tune import study as tune_study
from fmtui.tune.study import open_storage
from fmtui.tune.trial import TrialRunner

optuna = pytest.importorskip("optuna")
pytestmark = pytest.mark.cli

SPACE = ("--lr", "0.02..0.3", "--hidden", "16..32")


def tune_args(data: Path, runs: Path, study: str, *extra) -> list[str]:
    return ["tune", "--data-dir", str(data), "--runs-dir", str(runs), "--study", study, *map(str, extra)]


def worker(*args: str, session: bool = False) -> subprocess.Popen:
    """fmtui as a process (session=True: in a process group of its own, as a shell runs a command)."""
    return subprocess.Popen(
        [sys.executable, "-m", "fmtui", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=session,
    )


def finish(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=600)  # a guard against a hang, not a speed limit
    finally:
        proc.kill()


def load(study_dir: Path, storage: str | None = None):
    return optuna.load_study(study_name=study_dir.name, storage=open_storage(storage, study_dir))


def trial_folders(study_dir: Path) -> dict[int, Path]:
    """Trial number (as config.json says) -> its run folder; each number once."""
    folders: dict[int, Path] = {}
    for path in sorted(study_dir.glob("trial-*")):
        number = read_run(path).resolved["study"]["trial"]
        assert number not in folders, f"trial {number} has two folders: {folders[number]} and {path}"
        folders[number] = path
    return folders


def assert_study_of_eight_complete(study_dir: Path, storage: str | None, outputs: list[str]) -> None:
    study = load(study_dir, storage)
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(8))
    assert {t.state for t in trials} == {optuna.trial.TrialState.COMPLETE}
    folders = trial_folders(study_dir)
    assert sorted(folders) == list(range(8))
    for number, path in folders.items():
        run = read_run(path)
        assert run.status == "completed" and run.epochs_done == 2, (path, run.message)
        assert run.resolved["study"]["name"] == study_dir.name
        assert run.metrics[-1]["val_accuracy"] == study.trials[number].value  # the objective: final val accuracy
    best = study.best_trial
    assert best.value == max(t.value for t in trials)
    final = [out for out in outputs if "8 complete" in out]
    assert final and all(f"Best: trial {best.number} (trial-{best.number:04d})" in out for out in final)


def test_two_workers_on_one_journal_share_eight_trials(tiny_data, tmp_path):
    runs = tmp_path / "runs"
    args = tune_args(tiny_data, runs, "two", *SPACE, "--trials", 8, "--epochs", 2, "--pruner", "none")
    procs = [worker(*args), worker(*args)]  # both start at once: one creates the study, the other joins it
    outs = [finish(p) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert (
        sum("Study two: 8 trials of" in out for out, _ in outs) == 1
        and sum("Joined study two" in out for out, _ in outs) == 1
    )
    assert_study_of_eight_complete(runs / "two", None, [out for out, _ in outs])


def test_two_workers_started_by_one_command_share_a_sqlite_study(tiny_data, tmp_path):
    runs, db = tmp_path / "runs", tmp_path / "db" / "studies.db"
    db.parent.mkdir()
    url = f"sqlite:///{db}"
    args = tune_args(tiny_data, runs, "sql", *SPACE, "--trials", 8, "--epochs", 2, "--pruner", "none")
    proc = worker(*args, "--storage", url, "--workers", "2")
    out, err = finish(proc)
    assert proc.returncode == 0, err
    lines = [line for line in out.splitlines() if " trial " in line and line.startswith("w")]
    assert len(lines) == 8 and {line[:3] for line in lines} <= {"w0 ", "w1 "}  # each line names its worker
    assert "2 workers" in out and json.loads((runs / "sql" / "study.json").read_text())["storage"] == url
    assert_study_of_eight_complete(runs / "sql", url, [out])


def test_a_workers_lines_reach_the_shared_stdout_in_one_write_each(monkeypatch):
    """The workers of one command share its stdout: unbuffered (PYTHONUNBUFFERED=1, as the test above runs them),
    print wrote a line and its newline apart, and another worker's line came in between (two lines on one)."""
    from fmtui.tune import headless

    class Recorder:
        def __init__(self) -> None:
            self.writes: list[str] = []

        def write(self, text: str) -> int:
            self.writes.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    out, err = Recorder(), Recorder()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setenv(headless.WORKER_ENV, "1")
    headless._say("trial 3 complete: val 90.00%\nbest so far: trial 3")
    headless._error("the study is gone")
    assert out.writes == ["w1 trial 3 complete: val 90.00%\nw1 best so far: trial 3\n"]
    assert err.writes == ["w1 Error: the study is gone\n"]


def test_diverging_trials_are_pruned_at_their_first_report_and_their_folders_say_so(tiny_data, tmp_path):
    """lr 10 with raw pixels: the loss is no longer finite in epoch 1 (diverged); lr 10 on [-1, 1] inputs:
    the loss explodes in epoch 1. Both are pruned there; lr 0.05 trains its 3 epochs."""
    runs = tmp_path / "runs"
    grid = ("--lr", "0.05,10", "--norm", "symmetric,none", "--hidden", "256,256", "--sampler", "grid")
    result = fmtui(*tune_args(tiny_data, runs, "steep", *grid, "--pruner", "median", "--epochs", 3))
    assert result.exit_code == 0, result.output
    study = load(runs / "steep")
    folders = trial_folders(runs / "steep")
    by_config = {(t.params["lr"], t.params["norm"]): t for t in study.trials}
    assert len(by_config) == 4
    for norm in ("symmetric", "none"):
        trial = by_config["10", norm]
        run = read_run(folders[trial.number])
        assert trial.state == optuna.trial.TrialState.PRUNED and list(trial.intermediate_values) == [1]
        assert run.status == {"none": "diverged", "symmetric": "stopped"}[norm]
        assert run.epochs_done == {"none": 0, "symmetric": 1}[norm]
        assert run.pruned_at == {"none": None, "symmetric": 1}[norm]  # a diverged run says so by its status
    assert math.isnan(by_config["10", "none"].intermediate_values[1])  # ranked below every trial at that epoch
    exploding = read_run(folders[by_config["10", "symmetric"].number])
    assert exploding.message.startswith("stopped by exploding: train loss")
    good = by_config["0.05", "symmetric"]
    assert good.state == optuna.trial.TrialState.COMPLETE and read_run(folders[good.number]).epochs_done == 3
    assert f"trial {by_config['10', 'none'].number} pruned at epoch 1: diverged at epoch 1" in result.stdout
    assert f"trial {by_config['10', 'symmetric'].number} pruned at epoch 1: exploding: train loss" in result.stdout
    listed = fmtui("--no-ui", "runs", runs)  # every trial is a run: the pruned one reads pruned, not just stopped
    (line,) = [line for line in listed.stdout.splitlines() if line.startswith(f"steep/{exploding.name} ")]
    assert "stopped, pruned at epoch 1 " in line and "epoch 1/3" in line


def test_a_worker_trains_its_trials_stacked_where_it_pays_and_drops_each_pruned_one(tiny_data, tmp_path, monkeypatch):
    """Only per-copy options searched: the worker claims the grid's 4 trials at once and trains them as one stacked
    model (the stacking rule says it pays: forced here, as on a GPU). Each reports its own epochs; the exploding one
    is dropped after its first, the diverging one ends itself, the others train on to their third."""
    from fmtui.tune import trial as tune_trial

    monkeypatch.setattr(tune_trial, "stacking_pays", lambda device, cfg=None: True)
    runs = tmp_path / "runs"
    grid = ("--lr", "0.05,10", "--norm", "symmetric,none", "--hidden", "256,256", "--sampler", "grid")
    result = fmtui(*tune_args(tiny_data, runs, "stacked", *grid, "--pruner", "median", "--epochs", 3))
    assert result.exit_code == 0, result.output
    study = load(runs / "stacked")
    folders = trial_folders(runs / "stacked")
    by_config = {(t.params["lr"], t.params["norm"]): t for t in study.trials}
    good, exploding, diverged = by_config["0.05", "symmetric"], by_config["10", "symmetric"], by_config["10", "none"]
    assert good.state == optuna.trial.TrialState.COMPLETE and list(good.intermediate_values) == [1, 2, 3]
    run = read_run(folders[good.number])
    assert run.epochs_done == 3 and run.message.endswith("(4 runs at once)")  # trained stacked, all four
    assert exploding.state == optuna.trial.TrialState.PRUNED and list(exploding.intermediate_values) == [1]
    run = read_run(folders[exploding.number])
    assert (run.status, run.pruned_at, run.epochs_done) == ("stopped", 1, 1)  # dropped from the stack
    assert diverged.state == optuna.trial.TrialState.PRUNED and read_run(folders[diverged.number]).status == "diverged"
    assert sum(line.startswith("trial ") for line in result.stdout.splitlines()) == 4


def test_trials_stack_only_where_every_two_can_and_it_pays(monkeypatch):
    from fmtui.tune import trial as tune_trial
    from fmtui.tune.space import parse_space, split_items

    assert not tune_trial.stacking_pays("cpu")  # on a CPU each trial trains alone

    def size(pays: bool, **texts) -> int:
        monkeypatch.setattr(tune_trial, "stacking_pays", lambda device, cfg=None: pays)
        return tune_trial.stack_size(parse_space({f: split_items(f, t) for f, t in texts.items()}, RunConfig()), "cpu")

    assert size(True, lr="1e-3..1", weight_decay="1e-6..1e-2", norm="unit,zscore") == tune_trial.STACK
    assert size(True, lr="1e-3..1", hidden="64..1024") == 1  # another shape per trial: no stack
    assert size(True, lr="1e-3..1", optimizer="adam") == 1  # the stacked step is SGD's
    assert size(False, lr="1e-3..1") == 1


class FakeTrial:
    """What TrialRunner asks of an Optuna trial after an epoch: report, should_prune."""

    def __init__(self, prune: bool) -> None:
        self.prune, self.reports = prune, []

    def report(self, value: float, step: int) -> None:
        self.reports.append((step, value))

    def should_prune(self) -> bool:
        return self.prune


def epoch(k: int, of: int, health: Health | None = None) -> EpochEnd:
    return EpochEnd(k, of, 0.5, 80.0, 0.6, 79.0, 1.0, 0.1, 1000.0, 0.01, 0.55, 81.5, health=health or Health())


def test_the_pruner_decides_after_each_epoch_but_the_last_and_its_reason_is_recorded():
    runner = TrialRunner(None, None, Path("."), "w", "asha")
    trial = FakeTrial(prune=True)
    assert runner._report(trial, epoch(1, 3)) == "the asha pruner (val accuracy 81.50%)"
    assert runner._report(trial, epoch(3, 3)) is None  # the last epoch: the trial is complete
    assert trial.reports == [(1, 81.5), (3, 81.5)]  # the validation accuracy, by epoch
    exploding = Health("exploding", "train loss 900 is 391x chance level; try --lr 0.1")
    assert runner._report(FakeTrial(prune=False), epoch(1, 3, exploding)).startswith("exploding: train loss 900")
    assert (
        TrialRunner(None, None, Path("."), "w", "none")._report(FakeTrial(prune=True), epoch(1, 3, exploding)) is None
    )


def wait_for_epoch(study_dir: Path, pid: int, proc: subprocess.Popen) -> Path:
    """The trial folder of the worker with this pid once it shows a finished epoch (polled, not slept on)."""
    while True:
        assert proc.poll() is None, proc.communicate()
        for path in study_dir.glob("trial-*"):
            try:
                study = json.loads((path / "config.json").read_text())["resolved"]["study"]
                epochs = (path / "metrics.jsonl").read_text().splitlines()
            except (OSError, KeyError, ValueError):
                continue  # not written yet
            if f"-{pid}-" in study["worker"] and epochs:
                return path
        time.sleep(0.02)


def test_a_worker_killed_mid_trial_leaves_its_trial_failed_and_the_study_reaches_its_count(tiny_data, tmp_path):
    runs = tmp_path / "runs"
    args = tune_args(tiny_data, runs, "kill", *SPACE, "--trials", 3, "--epochs", 30, "--pruner", "none")
    victim = worker(*args)
    doomed = wait_for_epoch(runs / "kill", victim.pid, victim)
    survivor = worker(*args)
    victim.kill()  # SIGKILL: no handler runs; the kernel drops the worker's flock
    victim.communicate()
    out, err = finish(survivor)
    assert survivor.returncode == 0, err
    study = load(runs / "kill")
    number = read_run(doomed).resolved["study"]["trial"]
    states = {t.number: t.state for t in study.trials}
    assert states[number] == optuna.trial.TrialState.FAIL
    assert [n for n, s in states.items() if s == optuna.trial.TrialState.FAIL] == [number]
    assert sum(s == optuna.trial.TrialState.COMPLETE for s in states.values()) == 3  # the planned count
    (retry,) = [t for t in study.trials if t.system_attrs.get("failed_trial") == number]
    assert retry.params == study.trials[number].params and retry.state == optuna.trial.TrialState.COMPLETE
    assert f"trial {retry.number} (trial {number} again) complete" in out
    folders = trial_folders(runs / "kill")  # one folder per trial number: nothing trained twice
    assert sorted(folders) == sorted(states) and read_run(folders[number]).status == "interrupted"


def test_sigterm_stops_a_worker_after_its_batch_with_the_trial_recorded_and_queued_again(tiny_data, tmp_path):
    runs = tmp_path / "runs"
    proc = worker(*tune_args(tiny_data, runs, "term", *SPACE, "--trials", 3, "--epochs", 500, "--pruner", "none"))
    folder = wait_for_epoch(runs / "term", proc.pid, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = finish(proc)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "SIGTERM: stopping after the current batch" in err
    run = read_run(folder)
    assert run.status == "stopped" and "stopped by SIGTERM" in run.message and run.epochs_done >= 1
    study = load(runs / "term")
    number = run.resolved["study"]["trial"]
    assert study.trials[number].state == optuna.trial.TrialState.FAIL
    (queued,) = [t for t in study.trials if t.state == optuna.trial.TrialState.WAITING]
    assert queued.system_attrs["failed_trial"] == number  # the next worker runs it again
    assert f"trial {number} failed: stopped by SIGTERM" in out


def test_without_optuna_tune_says_how_to_install_it(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna fails, as where it is not installed
    result = fmtui(*tune_args(tiny_data, tmp_path / "runs", "none", *SPACE))
    assert result.exit_code == 2
    line = "fmtui tune needs optuna, which is not installed here; add it with: "
    assert result.stderr == f"Error: {line}{install_command('optuna>=4.0')}\n"
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("storage", "words"),
    [
        ("sqlite:///{tmp}/no/such/folder/x.db", "cannot open the storage sqlite:///"),
        ("postgresql://ana:secret@localhost:1/studies", "cannot open the storage postgresql://ana:***@localhost:1"),
    ],
)
def test_a_storage_that_cannot_be_opened_is_one_line_and_exit_1(tiny_data, tmp_path, storage, words):
    result = fmtui(*tune_args(tiny_data, tmp_path / "runs", "s", *SPACE), "--storage", storage.format(tmp=tmp_path))
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: {words}") and result.stderr.count("\n") == 1
    assert "secret" not in result.output


def test_a_locked_journal_is_one_line_and_exit_1(tiny_data, tmp_path, monkeypatch):
    study_dir = tmp_path / "runs" / "locked"
    study_dir.mkdir(parents=True)
    os.symlink(study_dir / "journal.log", study_dir / "journal.log.lock")  # held by a worker that is alive
    monkeypatch.setattr(tune_study, "LOCK_TIMEOUT", 0.5)
    result = fmtui(*tune_args(tiny_data, tmp_path / "runs", "locked", *SPACE))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: the journal {study_dir / 'journal.log'} is locked")
    assert result.stderr.count("\n") == 1


def test_a_journal_lock_left_by_a_dead_worker_is_removed_and_the_study_goes_on(tiny_data, tmp_path):
    study_dir = tmp_path / "runs" / "stale"
    study_dir.mkdir(parents=True)
    (study_dir / "journal.log").write_bytes(b"")
    os.symlink(study_dir / "journal.log", study_dir / "journal.log.lock")  # its writer was killed mid-write
    old = time.time() - 2 * tune_study.LOCK_GRACE
    os.utime(study_dir / "journal.log", (old, old))
    os.utime(study_dir / "journal.log.lock", (old, old), follow_symlinks=False)
    result = fmtui(*tune_args(tiny_data, tmp_path / "runs", "stale", *SPACE, "--trials", 1, "--epochs", 1))
    assert result.exit_code == 0, result.output
    assert load(study_dir).trials[0].state == optuna.trial.TrialState.COMPLETE


def test_joining_a_study_with_other_options_names_them(tiny_data, tmp_path):
    runs = tmp_path / "runs"
    first = fmtui(*tune_args(tiny_data, runs, "j", *SPACE, "--trials", 1, "--epochs", 1))
    assert first.exit_code == 0, first.output
    other = fmtui(*tune_args(tiny_data, runs, "j", "--lr", "0.1..0.3", "--hidden", "16..32", "--trials", 1))
    assert other.exit_code == 2
    assert "--lr 0.1..0.3 (the study: 0.02..0.3)" in other.stderr and other.stderr.count("\n") == 1
    again = fmtui(*tune_args(tiny_data, runs, "j"))  # --study alone joins with the study's own options
    assert again.exit_code == 0 and "Joined study j (1 trial so far)" in again.stdout


class FakeWorker:
    """A worker process as _spawn sees it: started with a command and an environment, it ends with 0."""

    started: list = []

    def __init__(self, cmd, env, start_new_session=False):
        self.cmd, self.env = cmd, env
        FakeWorker.started.append(self)

    def wait(self):
        return 0

    def poll(self):
        return 0


def test_one_worker_per_visible_gpu_each_pinned_to_its_own(tiny_data, tmp_path, monkeypatch):
    from fmtui.tune import headless

    monkeypatch.setattr(headless, "visible_gpus", lambda device: ["2", "5"] if device in ("auto", "cuda") else [])
    monkeypatch.setattr(headless.subprocess, "Popen", FakeWorker)
    FakeWorker.started = []
    result = fmtui(*tune_args(tiny_data, tmp_path / "runs", "gpus", *SPACE, "--trials", 4))
    assert result.exit_code == 0, result.output
    assert "2 workers" in result.stdout
    assert [(w.env["CUDA_VISIBLE_DEVICES"], w.env["FMTUI_TUNE_WORKER"]) for w in FakeWorker.started] == [
        ("2", "0"),
        ("5", "1"),
    ]
    cmd = FakeWorker.started[0].cmd
    assert cmd[1:] == ["-m", "fmtui", "tune", "--study", "gpus", "--runs-dir", str(tmp_path / "runs"), "--workers", "1",
                       "--data-dir", str(tiny_data)]  # fmt: skip
    FakeWorker.started = []
    three = fmtui(*tune_args(tiny_data, tmp_path / "runs", "three", *SPACE, "--workers", 3))  # more workers than GPUs
    assert three.exit_code == 0 and [w.env["CUDA_VISIBLE_DEVICES"] for w in FakeWorker.started] == ["2", "5", "2"]
    FakeWorker.started = []
    cpu = fmtui(*tune_args(tiny_data, tmp_path / "runs", "cpu", *SPACE, "--device", "cpu", "--workers", 2))
    assert cpu.exit_code == 0 and len(FakeWorker.started) == 2
    for w in FakeWorker.started:  # not pinned: the device is the CPU; each worker is told so
        assert w.env.get("CUDA_VISIBLE_DEVICES") == os.environ.get("CUDA_VISIBLE_DEVICES")
        assert w.cmd[-2:] == ["--device", "cpu"]
    FakeWorker.started = []
    js = fmtui(*tune_args(tiny_data, tmp_path / "runs", "js", *SPACE, "--device", "cpu", "--workers", 2, "--json"))
    assert js.exit_code == 0 and all("--json" in w.cmd for w in FakeWorker.started)  # the workers' lines are JSON
    (line,) = js.stdout.splitlines()  # no header: the command's own line is the study's, at the end
    assert json.loads(line)["event"] == "study" and json.loads(line)["planned"] == 20


def test_a_trial_whose_worker_is_gone_is_failed_and_queued_again_once_by_one_worker(tmp_path):
    """A worker's folder tells (its flock); without the folder, a worker of this host is asked by its pid."""
    import socket

    from fmtui.tune.study import Presence, fail_stale

    study = optuna.create_study(direction="maximize")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    trials = [study.ask(), study.ask(), study.ask()]
    for trial in trials:
        trial.suggest_float("lr", 1e-3, 1.0, log=True)
    with Presence(tmp_path) as me:  # a live worker, with its folder
        trials[0].set_user_attr("worker", me.name)
        trials[1].set_user_attr("worker", "elsewhere-1-abc")  # another machine's worker: its folder is not here
        for key, value in (("worker", "gone-2-def"), ("host", socket.gethostname()), ("pid", dead_pid)):
            trials[2].set_user_attr(key, value)
        assert fail_stale(study, tmp_path) == [2]
        assert fail_stale(study, tmp_path) == []  # failed once: a second look finds nothing to do
    states = [t.state for t in study.get_trials()]
    assert states == [optuna.trial.TrialState.RUNNING] * 2 + [
        optuna.trial.TrialState.FAIL,
        optuna.trial.TrialState.WAITING,
    ]
    assert study.get_trials()[3].params == study.get_trials()[2].params


def test_missing_data_is_one_line_before_any_study_is_made(tmp_path):
    (tmp_path / "empty").mkdir()
    result = fmtui(*tune_args(tmp_path / "empty", tmp_path / "runs", "nodata", *SPACE))
    assert result.exit_code == 2 and result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "train-images-idx3-ubyte" in result.stderr and not (tmp_path / "runs" / "nodata").exists()


def test_ctrl_c_to_a_command_with_two_workers_stops_both_once_with_their_trials_recorded(tiny_data, tmp_path):
    runs = tmp_path / "runs"
    args = tune_args(tiny_data, runs, "two", *SPACE, "--trials", 4, "--epochs", 500, "--pruner", "none")
    proc = worker(*args, "--workers", "2", session=True)
    while len([p for p in (runs / "two").glob("trial-*") if (p / "metrics.jsonl").is_file()]) < 2:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)  # polled until both workers train a trial
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl+C in a terminal: to the whole foreground process group
    out, err = finish(proc)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "aborted" not in err  # one Ctrl+C reached each worker once
    study = load(runs / "two")
    failed = [t.number for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    queued = [t.system_attrs["failed_trial"] for t in study.trials if t.state == optuna.trial.TrialState.WAITING]
    assert len(failed) == 2 and sorted(queued) == failed
    for number in failed:
        assert "stopped during epoch" in read_run(trial_folders(runs / "two")[number]).message

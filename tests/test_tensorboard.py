"""`fmtui export --tensorboard`: event files read back record by record (TFRecord framing with its CRCs, then
the Event protos) against the runs' metrics.jsonl; TensorBoard itself (its server, where the `tensorboard`
package is installed) showing the runs in its HParams view; a run followed while it trains, ended by its end
and by Ctrl+C; one clear line for every folder that cannot take the files, and without tensorboardX."""

import json
import os
import queue
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from runfolders import Writer, row, write_run
from test_cli import fmtui, train_tiny

from fmtui.headless.export import QUIET_S, RunSources
from fmtui.install_hint import install_command
from fmtui.tensorboard import EventFile, TensorBoardExport

pytestmark = pytest.mark.cli

HANG = 300.0
"""Seconds after which a wait gives up: a guard against a hang, never a speed check."""


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), bit by bit: slow, but the event files of a test are small."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_events(folder: Path) -> list:
    """Every Event in a run's folder, checked the way TensorBoard's reader checks records."""
    from tensorboardX.proto.event_pb2 import Event

    (path,) = folder.glob("events.out.tfevents.*")
    raw, events, at = path.read_bytes(), [], 0
    while at < len(raw):
        header = raw[at : at + 8]
        (length,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", raw[at + 8 : at + 12])[0] == masked(crc32c(header))
        data = raw[at + 12 : at + 12 + length]
        assert struct.unpack("<I", raw[at + 12 + length : at + 16 + length])[0] == masked(crc32c(data))
        events.append(Event.FromString(data))
        at += 16 + length
    return events


def scalars(folder: Path) -> dict[str, list[tuple[int, float, float]]]:
    """tag -> [(step, value, wall time)] of a run's exported scalars."""
    out: dict[str, list] = {}
    for event in read_events(folder):
        for value in event.summary.value:
            if value.HasField("simple_value"):
                out.setdefault(value.tag, []).append((event.step, value.simple_value, event.wall_time))
    return out


def hparams_data(folder: Path) -> dict[str, object]:
    """The HParams plugin's data in a run's event file, by tag (session_start_info, session_end_info)."""
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

    found = {}
    for event in read_events(folder):
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == "hparams":
                found[value.tag.split("/")[-1]] = HParamsPluginData.FromString(value.metadata.plugin_data.content)
    return found


SCALAR_TAGS = ["loss/train", "loss/val", "loss/test", "accuracy/train", "accuracy/val", "accuracy/test"]


def test_export_writes_each_runs_metrics_options_and_best_epoch(tiny_data, tmp_path):
    pytest.importorskip("tensorboardX")
    runs = tmp_path / "runs"
    assert train_tiny(tiny_data, "--val-split", "0.2", "--out", runs / "one").exit_code == 0
    sweep = fmtui("--no-ui", "sweep", "--data-dir", tiny_data, "--epochs", 1, "--lr", "0.1,0.01", "--out", runs / "s")
    assert sweep.exit_code == 0, sweep.output
    result = fmtui("--no-ui", "export", "--tensorboard", tmp_path / "tb", runs / "one", runs / "s")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 3

    metrics = [json.loads(line) for line in (runs / "one" / "metrics.jsonl").read_text().splitlines()]
    got = scalars(tmp_path / "tb" / "one")
    best = ["best/" + tag for tag in SCALAR_TAGS] + ["best/epoch"]
    assert sorted(got) == sorted(SCALAR_TAGS + ["lr", "seconds/train", "seconds/eval", "samples_per_s"] + best)
    for tag, key in (("loss/train", "train_loss"), ("accuracy/val", "val_accuracy"), ("lr", "lr")):
        assert [(s, v) for s, v, _ in got[tag]] == [(m["epoch"], pytest.approx(m[key], rel=1e-6)) for m in metrics]
    walls = [w for _, _, w in got["loss/test"]]  # when each epoch ended: the run's start + its epochs' times
    epoch_2 = metrics[1]["seconds"] + metrics[1]["eval_seconds"]
    assert walls[0] > 1e9 and walls[1] - walls[0] == pytest.approx(epoch_2, abs=1e-6)  # a double near 1.8e9: 2.4e-7
    text = [v for e in read_events(tmp_path / "tb" / "one") for v in e.summary.value if v.tag.startswith("config")]
    assert text and b'"val_split": 0.2' in text[0].tensor.string_val[0]

    summary = json.loads((runs / "one" / "summary.json").read_text())  # best by validation accuracy
    assert got["best/epoch"][-1][:2] == (summary["best_epoch"], summary["best_epoch"])
    assert got["best/accuracy/val"][-1][1] == pytest.approx(summary["best"]["val_accuracy"], rel=1e-6)
    assert got["best/loss/test"][-1][1] == pytest.approx(summary["best"]["test_loss"], rel=1e-6)
    session = hparams_data(tmp_path / "tb" / "one")
    options = session["session_start_info"].session_start_info.hparams
    assert options["lr"].number_value == 0.05 and options["hidden"].string_value == "256"
    assert options["batch_norm"].bool_value is False and options["norm"].string_value == "symmetric"
    assert session["session_end_info"].session_end_info.status == 1  # STATUS_SUCCESS: completed

    swept = sorted(p.name for p in (tmp_path / "tb" / "s").iterdir())
    assert swept == sorted(p.name for p in (runs / "s").iterdir() if p.is_dir())
    assert all(scalars(tmp_path / "tb" / "s" / name)["accuracy/test"][0][0] == 1 for name in swept)

    again = fmtui("--no-ui", "export", "--tensorboard", tmp_path / "tb", runs / "one")
    assert again.exit_code == 2 and "is not empty" in again.stderr and again.stderr.count("\n") == 1


class TensorBoard:
    """The real `tensorboard` program on a free port, asked over HTTP what its web page asks."""

    def __init__(self, logdir: Path) -> None:
        args = ["--logdir", str(logdir), "--port", "0", "--load_fast", "false", "--reload_interval", "1"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", *args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
        )
        seen = []
        for line in self.proc.stderr:  # "TensorBoard 2.21.0 at http://localhost:PORT/ (Press CTRL+C to quit)"
            seen.append(line.decode(errors="replace"))
            if m := re.search(r"at (http://\S+?)/? ", seen[-1]):
                self.url = m[1]
                return
        raise AssertionError("tensorboard never said where it serves:\n" + "".join(seen))

    def get(self, route: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + route, data, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=HANG) as response:
            return json.load(response)

    def until(self, route: str, ready, body: dict | None = None) -> dict:
        """The route's answer once ready(answer) holds (TensorBoard loads the files in a thread of its own)."""
        deadline = time.monotonic() + HANG
        while not ready(answer := self.get(route, body)):
            assert time.monotonic() < deadline, f"{route} never became ready: {answer}"
            time.sleep(0.2)
        return answer

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()


def test_a_sweep_shows_in_tensorboards_hparams_view(tiny_data, tmp_path):
    """What TensorBoard's own server says: hparams is in its plugin list, its HParams table has each run's
    options (lr differs) and its final and best metrics, and the session's status."""
    pytest.importorskip("tensorboard")
    sweep = tmp_path / "sweep"
    made = fmtui("--no-ui", "sweep", "--data-dir", tiny_data, "--epochs", 2, "--lr", "0.1,0.01", "--out", sweep)
    assert made.exit_code == 0, made.output
    assert fmtui("--no-ui", "export", "--tensorboard", tmp_path / "tb", sweep).exit_code == 0
    board = TensorBoard(tmp_path / "tb")
    try:
        plugins = board.until("/data/plugins_listing", lambda a: a["hparams"]["enabled"] and a["scalars"]["enabled"])
        assert plugins["text"]["enabled"]
        query = {"experimentName": "", "includeMetrics": True}
        experiment = board.until("/data/plugin/hparams/experiment", lambda a: a.get("metricInfos"), query)
        infos = {h["name"]: h for h in experiment["hparamInfos"]}
        assert infos["lr"]["domainInterval"] == {"minValue": 0.01, "maxValue": 0.1} and infos["lr"]["differs"]
        assert infos["optimizer"]["domainDiscrete"] == ["sgd"] and not infos["optimizer"]["differs"]
        metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
        assert {"accuracy/test", "best/accuracy/test", "best/epoch"} <= metrics

        statuses = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
        groups = board.get(
            "/data/plugin/hparams/session_groups",
            {"experimentName": "", "allowedStatuses": statuses, "colParams": [], "startIndex": 0, "sliceSize": 10},
        )["sessionGroups"]
        assert len(groups) == 2
        for group in groups:
            run = sweep / Path(group["name"]).name
            rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
            assert group["hparams"]["lr"] == json.loads((run / "config.json").read_text())["lr"]
            values = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
            assert values["accuracy/test"] == pytest.approx(rows[-1]["test_accuracy"], rel=1e-6)  # final
            assert values["best/accuracy/test"] == pytest.approx(max(r["test_accuracy"] for r in rows), rel=1e-6)
            assert group["sessions"][0]["status"] == "STATUS_SUCCESS"
    finally:
        board.close()


class Follower:
    """`fmtui export ... --follow` in a process of its own; its stdout read line by line in a thread, so that a
    line that never comes fails the test instead of hanging it."""

    def __init__(self, *args) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fmtui", "--no-ui", "export", "--follow", *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue = queue.Queue()
        reader = threading.Thread(target=lambda: [*map(self.lines.put, self.proc.stdout), self.lines.put(None)])
        reader.daemon = True
        reader.start()

    def line(self) -> str | None:
        """The next line of stdout (None at its end)."""
        try:
            line = self.lines.get(timeout=HANG)
        except queue.Empty:
            raise AssertionError("fmtui export --follow printed nothing more") from None
        return line if line is None else line.rstrip("\n")

    def rest(self) -> list[str]:
        return list(iter(self.line, None))

    def end(self) -> int:
        """Its exit code, once it has ended (killed after HANG)."""
        try:
            return self.proc.wait(timeout=HANG)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def test_follow_appends_each_epoch_while_the_run_trains_and_ends_with_it(tmp_path):
    pytest.importorskip("tensorboardX")
    writer = Writer(tmp_path / "run", epochs=3)
    follower = None
    try:
        writer.epoch()
        follower = Follower("--tensorboard", tmp_path / "tb", tmp_path / "run")
        assert follower.line() == f"{tmp_path / 'run'} -> {tmp_path / 'tb' / 'run'} (1 epoch)"
        assert [s for s, _, _ in scalars(tmp_path / "tb" / "run")["accuracy/test"]] == [1]
        assert "session_end_info" not in hparams_data(tmp_path / "tb" / "run")  # still running

        writer.epoch()
        assert follower.line() == f"{tmp_path / 'tb' / 'run'}: epoch 2 of 3"
        got = scalars(tmp_path / "tb" / "run")
        assert [(s, v) for s, v, _ in got["accuracy/test"]] == [(1, 81.0), (2, 82.0)]
        assert [s for s, _, _ in got["best/epoch"]] == [1, 2]  # a new best each epoch: written again

        writer.proc.stdin.close()  # the writer completes its run after 2 of 3 epochs
        assert follower.rest() == [
            f"{tmp_path / 'tb' / 'run'}: completed after 2 epochs",
            "Done: 1 run ended, all exported",
        ]
        assert follower.end() == 0, follower.proc.stderr.read()
    finally:
        writer.close()
        if follower:
            follower.close()
    session = hparams_data(tmp_path / "tb" / "run")
    assert session["session_end_info"].session_end_info.status == 1  # STATUS_SUCCESS
    assert session["session_start_info"].session_start_info.hparams["model"].string_value == "softmax"


def test_ctrl_c_ends_following_with_the_event_file_whole(tmp_path):
    pytest.importorskip("tensorboardX")
    writer = Writer(tmp_path / "run", epochs=3)
    follower = None
    try:
        writer.epoch()
        follower = Follower("--tensorboard", tmp_path / "tb", tmp_path / "run")
        assert follower.line().endswith("(1 epoch)")
        follower.proc.send_signal(signal.SIGINT)
        assert follower.end() == 130
        assert follower.proc.stderr.read() == "Stopped following; 1 run exported up to the epochs shown\n"
    finally:
        writer.close()
        if follower:
            follower.close()
    got = scalars(tmp_path / "tb" / "run")  # every record whole: read_events checks each one's CRCs
    assert [s for s, _, _ in got["accuracy/test"]] == [1]


def test_a_followed_folder_of_runs_ends_once_its_runs_ended_and_none_followed(tmp_path):
    """A sweep starts its next run right after one ends: a folder is done only when no run ended lately."""
    sweep = tmp_path / "sweep"
    write_run(sweep / "a")
    write_run(sweep / "b", done=1, status="running")
    sources = RunSources([sweep])
    runs, _ = sources.scan()
    assert sorted(runs) == ["sweep/a", "sweep/b"] and not sources.done(runs)  # b: no writer, but fresh files
    (sweep / "b" / "summary.json").write_text(json.dumps({"status": "completed", "epochs_done": 1}))
    runs, _ = sources.scan()
    assert not sources.done(runs)  # b ended just now: the sweep may start another run
    old = time.time() - QUIET_S - 1
    for run in ("a", "b"):
        os.utime(sweep / run / "summary.json", (old, old))
    assert sources.done(sources.scan()[0])


def test_a_poll_that_finds_nothing_new_writes_nothing(tmp_path, monkeypatch):
    """Each flush syncs the event file to disk: a followed run that did not change costs none."""
    pytest.importorskip("tensorboardX")
    write_run(tmp_path / "sweep" / "a", epochs=3, done=2, status="running")
    sources, export = RunSources([tmp_path / "sweep"]), TensorBoardExport(tmp_path / "tb")
    flushed = []
    monkeypatch.setattr(EventFile, "flush", lambda self: flushed.append(self))
    assert export.update(sources.scan()[0]) and len(flushed) == 1
    assert export.update(sources.scan()[0]) == [] and len(flushed) == 1
    with open(tmp_path / "sweep" / "a" / "metrics.jsonl", "a") as f:
        f.write(json.dumps(row(3)) + "\n")
    assert export.update(sources.scan()[0]) == [f"{tmp_path / 'tb' / 'sweep' / 'a'}: epoch 3 of 3"]
    assert len(flushed) == 2
    export.close()


def test_folders_that_cannot_take_the_files_are_one_line(tmp_path):
    pytest.importorskip("tensorboardX")
    run = write_run(tmp_path / "run")
    (tmp_path / "file").write_text("")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "tb").mkdir()
    (tmp_path / "tb" / "run").symlink_to(tmp_path / "elsewhere")
    for dest, words in (
        (tmp_path / "file" / "sub", "cannot make the --tensorboard folder"),
        (Path("/proc/fmtui-x"), "cannot make the --tensorboard folder"),
        (tmp_path / "tb", "is a symbolic link"),
    ):
        result = fmtui("--no-ui", "export", "--tensorboard", dest, run)
        assert result.exit_code == 2 and words in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert not any((tmp_path / "elsewhere").iterdir())


def test_without_tensorboardx_export_says_how_to_install_it_here(tmp_path, monkeypatch):
    run = write_run(tmp_path / "run")
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # `import tensorboardX` raises ImportError
    result = fmtui("--no-ui", "export", "--tensorboard", tmp_path / "tb", run)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert install_command("tensorboardX") in result.stderr and "fmtui[" not in result.stderr
    assert not (tmp_path / "tb").exists()


def test_export_refuses_what_is_no_run(tmp_path):
    (tmp_path / "empty").mkdir()
    result = fmtui("--no-ui", "export", "--tensorboard", tmp_path / "tb", tmp_path / "empty")
    assert result.exit_code == 2 and "holds none" in result.stderr and result.stderr.count("\n") == 1

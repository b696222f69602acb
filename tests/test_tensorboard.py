"""`fmtui export --tensorboard`: event files read back record by record (TFRecord framing with its CRCs, then
the Event protos), against the runs' metrics.jsonl; and one clear line without the extra."""

import json
import struct
import sys
from pathlib import Path

import pytest
from test_cli import fmtui, train_tiny

pytestmark = pytest.mark.cli


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


def test_export_writes_each_runs_metrics_as_tensorboard_scalars(tiny_data, tmp_path):
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
    assert sorted(got) == sorted(
        ["loss/train", "loss/val", "loss/test", "accuracy/train", "accuracy/val", "accuracy/test"]
        + ["lr", "seconds/train", "seconds/eval", "samples_per_s"]
    )
    for tag, key in (("loss/train", "train_loss"), ("accuracy/val", "val_accuracy"), ("lr", "lr")):
        assert [(s, v) for s, v, _ in got[tag]] == [(m["epoch"], pytest.approx(m[key], rel=1e-6)) for m in metrics]
    walls = [w for _, _, w in got["loss/test"]]  # when each epoch ended: the run's start + its epochs' times
    epoch_2 = metrics[1]["seconds"] + metrics[1]["eval_seconds"]
    assert walls[0] > 1e9 and walls[1] - walls[0] == pytest.approx(epoch_2, abs=1e-6)  # a double near 1.8e9: 2.4e-7
    text = [v for e in read_events(tmp_path / "tb" / "one") for v in e.summary.value if v.tag.startswith("config")]
    assert text and b'"val_split": 0.2' in text[0].tensor.string_val[0]

    swept = sorted(p.name for p in (tmp_path / "tb" / "s").iterdir())
    assert swept == sorted(p.name for p in (runs / "s").iterdir() if p.is_dir())
    assert all(scalars(tmp_path / "tb" / "s" / name)["accuracy/test"][0][0] == 1 for name in swept)

    again = fmtui("--no-ui", "export", "--tensorboard", tmp_path / "tb", runs / "one")
    assert again.exit_code == 2 and "is not empty" in again.stderr and again.stderr.count("\n") == 1


def test_without_the_extra_export_says_how_to_install_it(tiny_data, tmp_path, monkeypatch):
    assert train_tiny(tiny_data, "--epochs", 1, "--out", tmp_path / "run").exit_code == 0
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # `import tensorboardX` raises ImportError
    result = fmtui("--no-ui", "export", "--tensorboard", tmp_path / "tb", tmp_path / "run")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "pip install 'fmtui[tensorboard]'" in result.stderr and not (tmp_path / "tb").exists()


def test_export_refuses_what_is_no_run(tmp_path):
    (tmp_path / "empty").mkdir()
    result = fmtui("--no-ui", "export", "--tensorboard", tmp_path / "tb", tmp_path / "empty")
    assert result.exit_code == 2 and "holds none" in result.stderr and result.stderr.count("\n") == 1

"""The decoded-dataset cache: equal to parsing bit for bit, never stale, never trusted when damaged, never fatal."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FILES, idx_bytes, synthetic_split

from fmtui import datacache, idx
from fmtui.data import load_dataset
from fmtui.registry import DATASETS

pytestmark = pytest.mark.engine


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache folder of this test's own, a fresh in-process memo and notes not yet given."""
    folder = tmp_path / "decoded"
    monkeypatch.setenv("FMTUI_CACHE_DIR", str(folder))
    monkeypatch.setattr(datacache, "_noted", set())
    idx._load.cache_clear()
    yield folder
    idx._load.cache_clear()


def fresh_load(folder: Path):
    """load_dataset as a new process would: this process's memo forgotten, the cache folder kept."""
    idx._load.cache_clear()
    return load_dataset("fashion-mnist", folder)


def parsed(folder: Path) -> list[np.ndarray]:
    return [idx.read_idx(folder / name).copy() for name in FILES]


def was_cached(folder: Path) -> bool:
    """Whether this process's last load of folder's files mapped them from the cache (the memo's entry)."""
    return idx.load_arrays("fashion-mnist", {name: folder / name for name in FILES}).cached


def cache_files(cache: Path) -> list[Path]:
    return sorted(cache.iterdir()) if cache.exists() else []


def test_cached_tensors_equal_the_parsed_ones_bit_for_bit(tiny_data, cache):
    first = fresh_load(tiny_data)
    assert was_cached(tiny_data) is False  # built now, and written
    assert len(cache_files(cache)) == 1
    again = fresh_load(tiny_data)
    assert was_cached(tiny_data) is True  # mapped from the file
    expected = parsed(tiny_data)
    for a, b, want in zip(
        (first.x_train, first.y_train, first.x_test, first.y_test),
        (again.x_train, again.y_train, again.x_test, again.y_test),
        (expected[0][:, None], expected[1], expected[2][:, None], expected[3]),
    ):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
        assert np.array_equal(b.numpy().astype(want.dtype), want)
    assert again.x_train.dtype == torch.uint8 and again.y_train.dtype == torch.int64


def test_a_cached_dataset_is_writable_in_memory_without_touching_the_file(tiny_data, cache):
    fresh_load(tiny_data)
    (file,) = cache_files(cache)
    before = hashlib.sha256(file.read_bytes()).digest()
    ds = fresh_load(tiny_data)
    arrays = idx.load_arrays("fashion-mnist", {name: tiny_data / name for name in FILES})
    assert arrays.cached and arrays.x_train.flags.writeable and not arrays.x_train.flags.owndata
    assert ds.x_train.data_ptr() == arrays.x_train.ctypes.data  # the tensor is the mapping: no copy
    ds.x_train[0] = 7  # a private mapping: the process's own copy of the page
    assert hashlib.sha256(file.read_bytes()).digest() == before
    assert torch.equal(fresh_load(tiny_data).x_train[0, 0], torch.from_numpy(parsed(tiny_data)[0][0]))


def test_a_warm_start_does_not_hash_the_files_again(tiny_data, cache, monkeypatch):
    fresh_load(tiny_data)
    monkeypatch.setattr(idx, "md5", lambda path: pytest.fail(f"hashed {path} again"))
    assert len(fresh_load(tiny_data).y_train) == 600


@pytest.mark.parametrize(
    "damage,why",
    [
        (lambda raw: raw.__setitem__(len(raw) - 100, raw[len(raw) - 100] ^ 0xFF), "CRC-32"),  # a pixel
        (lambda raw: raw.__setitem__(20, raw[20] ^ 0x01), "header checksum"),  # the header's JSON
        (lambda raw: raw.__setitem__(slice(0, 8), b"NOTFMTUI"), "not a cache file"),
        (lambda raw: raw.__setitem__(slice(8, 12), b"\xff\xff\xff\x7f"), "header length"),
    ],
    ids=["payload", "header", "magic", "length"],
)
def test_a_damaged_cache_is_not_trusted_one_note_then_rebuilt(tiny_data, cache, capsys, damage, why):
    fresh_load(tiny_data)
    (file,) = cache_files(cache)
    raw = bytearray(file.read_bytes())
    damage(raw)
    file.write_bytes(bytes(raw))
    capsys.readouterr()
    ds = fresh_load(tiny_data)
    assert torch.equal(ds.x_train[:, 0], torch.from_numpy(parsed(tiny_data)[0]))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is damaged (" in err and why in err and str(file) in err
    fresh_load(tiny_data)  # rebuilt: read from the cache now, and no second note
    assert was_cached(tiny_data) is True
    assert capsys.readouterr().err == ""


def test_a_truncated_cache_is_not_trusted(tiny_data, cache, capsys):
    fresh_load(tiny_data)
    (file,) = cache_files(cache)
    file.write_bytes(file.read_bytes()[:-1000])
    ds = fresh_load(tiny_data)
    assert torch.equal(ds.y_test, torch.from_numpy(parsed(tiny_data)[3]).long())
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is damaged (" in err and "bytes where its header says" in err


def test_a_changed_source_is_never_served_stale(tiny_data, cache):
    assert len(fresh_load(tiny_data).y_train) == 600
    (old,) = cache_files(cache)
    xtr, ytr = synthetic_split(300, seed=5)
    for name, array in ((FILES[0], xtr), (FILES[1], ytr)):
        with gzip.open(tiny_data / name, "wb") as f:
            f.write(idx_bytes(array))
    ds = fresh_load(tiny_data)
    assert len(ds.y_train) == 300 and torch.equal(ds.x_train[:, 0], torch.from_numpy(xtr))
    (new,) = cache_files(cache)  # the old file was pruned when the new one was written
    assert new != old


def test_an_unwritable_cache_folder_costs_one_note_never_the_load(tiny_data, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("FMTUI_CACHE_DIR", str(blocker / "decoded"))
    monkeypatch.setattr(datacache, "_noted", set())
    for _ in range(2):
        assert len(fresh_load(tiny_data).y_train) == 600
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write the decoded-data cache" in err and str(blocker) in err
    idx._load.cache_clear()


def test_two_processes_writing_the_cache_at_once_both_load_the_same_data(tiny_data, cache, tmp_path):
    go, barrier = tmp_path / "go", tmp_path / "barrier"
    barrier.mkdir()
    code = (  # the torch-free loader (fmtui.idx), as `fmtui train` runs it beside `import torch`
        "import hashlib, os, pathlib, time\n"
        "from fmtui import idx\n"
        f"go, barrier = pathlib.Path({str(go)!r}), pathlib.Path({str(barrier)!r})\n"
        f"folder = pathlib.Path({str(tiny_data)!r})\n"
        "rename = os.replace\n"
        "def replace(a, b):\n"  # both writers have written their file before either renames it into place
        "    (barrier / str(os.getpid())).touch()\n"
        "    while len(list(barrier.iterdir())) < 2: time.sleep(0.005)\n"
        "    rename(a, b)\n"
        "os.replace = replace\n"
        "while not go.exists(): time.sleep(0.005)\n"
        f"a = idx.load_arrays('fashion-mnist', {{n: folder / n for n in {FILES!r}}})\n"
        "print(hashlib.sha256(a.x_train.tobytes() + a.y_train.tobytes()).hexdigest())\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]  # a guard against a hang, not a timing
    assert [p.returncode for p in procs] == [0, 0], outs
    assert outs[0][0] == outs[1][0] and all(err == "" for _, err in outs)  # no note: nothing failed
    assert len(list(barrier.iterdir())) == 2  # both wrote
    (file,) = cache_files(cache)  # one file, no temporary file left behind
    assert file.suffix == ".fmd" and not file.name.startswith(".tmp-")
    ds = fresh_load(tiny_data)
    assert was_cached(tiny_data) is True
    digest = hashlib.sha256(ds.x_train.numpy().tobytes() + ds.y_train.byte().numpy().tobytes()).hexdigest()
    assert outs[0][0].strip() == digest


def test_the_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("FMTUI_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert datacache.cache_dir() == tmp_path / "xdg" / "fmtui" / "decoded"
    monkeypatch.setenv("FMTUI_CACHE_DIR", str(tmp_path / "mine"))
    assert datacache.cache_dir() == tmp_path / "mine"


def test_the_published_md5s_and_classes_are_torchvisions(tmp_path):
    from torchvision import datasets

    for name, cls in (("fashion-mnist", datasets.FashionMNIST), ("mnist", datasets.MNIST), ("kmnist", datasets.KMNIST)):
        assert tuple(md5 for _, md5 in cls.resources) == idx.MD5S[name] == DATASETS[name].md5s
        assert tuple(cls.classes) == DATASETS[name].classes


@pytest.mark.real_data
def test_the_real_dataset_from_the_cache_equals_the_parsed_files(real_data, cache):
    folder = real_data / "fashion-mnist"
    cold = load_dataset("fashion-mnist", real_data)
    warm = fresh_load(real_data)
    assert cold.verified and warm.verified
    expected = parsed(folder)
    assert np.array_equal(warm.x_train[:, 0].numpy(), expected[0]) and np.array_equal(
        warm.x_test[:, 0].numpy(), expected[2]
    )
    assert torch.equal(warm.y_train, torch.from_numpy(expected[1]).long()) and torch.equal(cold.y_test, warm.y_test)

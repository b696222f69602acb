"""Shared fixtures: small learnable IDX datasets written by the tests, and the real data folder.

The app tests' shared Pilot helpers live in tests/pilot.py (imported as `pilot`).
"""

from __future__ import annotations

import functools
import gzip
import os
import signal
import struct
from pathlib import Path

import numpy as np
import pytest

from fmtui.datafiles import default_data_dir, locate
from fmtui.registry import DATASETS

pytest.register_assert_rewrite("pilot")  # the Pilot helpers shared by the app tests (tests/pilot.py)

ROOT = Path(__file__).resolve().parents[1]
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX: magic 0x0000 08 <ndim>, big-endian dims, then the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def synthetic_split(n: int, seed: int, size: int = 28, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is a bright horizontal band at row (label * size / classes), plus noise.

    One label in ten is then replaced by a random class, so a trained model still makes mistakes
    (the error browser has something to show) and accuracy stays below 100%.
    """
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % classes).astype(np.uint8)
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n, size, size)).astype(np.uint8)
    band = size // classes
    for i, y in enumerate(labels):
        images[i, y * band : y * band + band + 1, 2:-2] = rng.integers(180, 256)
    noisy = rng.random(n) < 0.1
    labels[noisy] = rng.integers(0, classes, size=int(noisy.sum()))
    return images, labels


@functools.lru_cache(maxsize=16)
def _idx_files(n_train: int, n_test: int, seed: int) -> tuple[bytes, ...]:
    """The four files' gzip bytes, made once per session for each size (about 20 ms each time otherwise)."""
    xtr, ytr = synthetic_split(n_train, seed)
    xte, yte = synthetic_split(n_test, seed + 1)
    return tuple(gzip.compress(idx_bytes(arr), mtime=0) for arr in (xtr, ytr, xte, yte))


def write_idx_dataset(folder: Path, n_train: int = 600, n_test: int = 200, seed: int = 0) -> Path:
    """Write the four official file names (gzip IDX) with synthetic data into folder (a copy of its own: a test
    may damage it)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in zip(FILES, _idx_files(n_train, n_test, seed)):
        (folder / name).write_bytes(data)
    return folder


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject's addopts): a worker per core this process may use, and one more. Many tests wait on a
    subprocess or the app's event loop, and the extra worker runs meanwhile (2 cores, idle: 295 s with 3 workers,
    337 s with 2; measured)."""
    return len(os.sched_getaffinity(0)) + 1 if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1) + 1


def pytest_configure(config: pytest.Config) -> None:
    """Start as from a terminal: a shell without job control starts a background job with SIGINT and SIGQUIT
    ignored (POSIX), `nohup pytest` ignores SIGHUP, and every child inherits that. fmtui keeps a signal ignored at
    start ignored (as under nohup), so the tests that stop a run with one would wait for a stop that never comes."""
    defaults = (
        (signal.SIGINT, signal.default_int_handler),
        (signal.SIGQUIT, signal.SIG_DFL),
        (signal.SIGHUP, signal.SIG_DFL),
    )
    for signum, default in defaults:
        if signal.getsignal(signum) == signal.SIG_IGN:
            signal.signal(signum, default)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the SVG snapshot tests: their pictures are drawn by one Textual and Rich release, so
    scripts/check_min_versions.sh leaves them out (`-m "not snapshot"`) when it runs the oldest releases.
    Then put the longest test first."""
    for item in items:
        if "snap_compare" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.snapshot)
    # The longest tests first: on pytest-xdist's workers they then run beside the others, not alone at the end.
    first = {name: rank for rank, name in enumerate(FIRST)}
    items.sort(key=lambda item: first.get(item.nodeid.split("::")[0], len(first)))


FIRST = (
    "tests/test_gpu_check.py",
    "tests/test_startup.py",
    "tests/test_tune.py",
    "tests/test_faults_runs.py",
)
"""Test files that hold the longest tests, longest first (the GPU check's dry run: a chain of child processes,
30 s of CPU; the start-up benchmark: a dozen interpreters importing torch; the search's worker processes; the
dashboard on a folder of broken runs), measured with --durations."""


@pytest.fixture(autouse=True)
def _isolate(monkeypatch, tmp_path):
    """No test downloads or writes into the user's folders."""
    monkeypatch.setenv("FMTUI_NO_DOWNLOAD", "1")
    monkeypatch.setenv("FMTUI_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # pinned runs (fmtui.pins)


@pytest.fixture(autouse=True)
def _snapshot_colours(request, monkeypatch):
    """A snapshot is drawn in the colour mode the terminal's environment names: every snapshot test starts from
    the same one (TERM=xterm, no COLORTERM, no NO_COLOR), whatever terminal runs the suite; a test module that
    draws in another mode sets it in its own fixture, which runs after this one."""
    if "snap_compare" in request.fixturenames:
        monkeypatch.setenv("TERM", "xterm")
        monkeypatch.delenv("COLORTERM", raising=False)
        monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture(scope="session")
def session_data(tmp_path_factory) -> Path:
    """A data folder with a small synthetic 'fashion-mnist', shared by the tests of one session."""
    folder = tmp_path_factory.mktemp("data")
    write_idx_dataset(folder / "fashion-mnist")
    return folder


@pytest.fixture(autouse=True)
def _app_data(request, monkeypatch):
    """App tests see a dataset where the app looks by default: the Model pane checks that its files exist
    before it offers Start, and a test with a fake trainer must not depend on the machine's data folder."""
    node = request.node
    if node.get_closest_marker("app") is not None and node.get_closest_marker("real_data") is None:
        monkeypatch.setenv("FMTUI_DATA_DIR", str(request.getfixturevalue("session_data")))


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    """A data folder with a small synthetic 'fashion-mnist' in the official flat layout."""
    return write_idx_dataset(tmp_path / "tiny")


USER_DATA_DIR = default_data_dir()
"""Where the app looks when FMTUI_DATA_DIR is not set (read before the tests point the caches at tmp_path)."""


def in_ci() -> bool:
    """CI=true (or any value but empty, 0, false, no): a missing dataset fails the real-data tests."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def real_data_dir(dataset: str = "fashion-mnist") -> tuple[Path | None, str]:
    """The data folder that holds `dataset` as the app finds it (fmtui.datafiles.locate: the folder itself or
    one of its dataset sub-folders), and where it was looked for.

    $FMTUI_DATA_DIR when it is set, exactly as the app takes it (the folder of dataset folders, or the dataset's
    own folder); else ../shared/data beside the project, else the app's user cache."""
    env = os.environ.get("FMTUI_DATA_DIR")
    if env:
        candidates, where = [Path(env).expanduser()], f"$FMTUI_DATA_DIR={env}"
    else:
        candidates = [ROOT.parent / "shared" / "data", USER_DATA_DIR]
        where = f"{candidates[0]} or {candidates[1]} (FMTUI_DATA_DIR is not set)"
    for candidate in candidates:
        found = locate(dataset, candidate).found
        # The MNIST family shares its file names: a folder with Fashion-MNIST's files at its top (FMTUI_DATA_DIR
        # naming the dataset's own folder) holds no other dataset, though locate finds the names there.
        if found is not None and (dataset == "fashion-mnist" or found != locate("fashion-mnist", candidate).found):
            return candidate, where
    return None, where


@pytest.fixture
def real_files(request):
    """real_files(dataset): the data folder holding that real dataset, for tests marked real_data. Files not
    found: the test is skipped, saying where they were looked for; under CI it fails instead."""
    if request.node.get_closest_marker("real_data") is None:
        pytest.fail("a test that uses real data must be marked @pytest.mark.real_data")

    def find(dataset: str = "fashion-mnist") -> Path:
        path, where = real_data_dir(dataset)
        if path is None:
            subs = ", ".join(f"{s}/" for s in DATASETS[dataset].folders)
            message = f"real {DATASETS[dataset].title} files not found in {where}, nor in its sub-folders {subs}"
            if in_ci():
                pytest.fail(f"{message} (CI is set: real-data tests fail rather than skip)", pytrace=False)
            pytest.skip(f"{message}; set FMTUI_DATA_DIR")
        return path

    return find


@pytest.fixture
def real_data(real_files) -> Path:
    """The data folder of the real Fashion-MNIST, for tests marked real_data (so that `pytest -m real_data` runs
    exactly them); give it to the app as its data folder (`data_dir`), which finds the files the same way."""
    return real_files("fashion-mnist")

"""The MNIST family's IDX files, torch-free: find them, check their md5s, parse them into numpy arrays,
through the per-user cache of decoded data (fmtui.datacache).

fmtui.data wraps the arrays as torch tensors without copying them; `preload` lets `fmtui train` read (or
build) them while torch is still being imported. The files' published md5s and class names are the
registry's (fmtui.registry) rather than torchvision's, whose import alone costs about a second (a test checks
them against torchvision's own; downloads still go through torchvision, see fmtui.data).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmtui import datacache
from fmtui.errors import DataError  # raised here for every problem with the files
from fmtui.registry import DATASETS, IDX_FILES

MD5S = {name: spec.md5s for name, spec in DATASETS.items() if spec.files == IDX_FILES}
"""The published md5 of each of IDX_FILES, per dataset of the MNIST family (fmtui.registry)."""
OFFICIAL = {md5: DATASETS[name].title for name, md5s in MD5S.items() for md5 in md5s}
"""md5 -> dataset title of every official file, to catch a swapped folder."""
MAX_IDX_BYTES = 1 << 30
"""The largest IDX payload read (1 GiB): the biggest official file holds 47 MB, so a header that claims more
belongs to a broken or hostile file, not to a dataset."""


@dataclass
class IdxArrays:
    """The four files' arrays: images (N, H, W) and labels (N,), uint8, possibly mapped from the cache."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    md5s: dict[str, str]
    """Each file's md5 (an extracted file's too, though none is published for it): the check and the fingerprint."""
    files: dict[str, Path]
    cached: bool
    """Mapped from the cache file rather than parsed now."""
    source: str
    """The files and their stat stamps, as one string: equal sources, equal arrays."""


def find_files(name: str, root: Path) -> tuple[dict[str, Path] | None, list[Path]]:
    """Look in root and its dataset sub-folders for all four files (.gz or extracted); also the folders searched."""
    searched = [root] + [root / sub for sub in DATASETS[name].folders]
    for folder in searched:
        found = {}
        for file in IDX_FILES:
            for candidate in (folder / file, folder / file.removesuffix(".gz")):
                if candidate.is_file():
                    found[file] = candidate
                    break
        if len(found) == len(IDX_FILES):
            return found, searched
    return None, searched


def load_arrays(name: str, files: dict[str, Path]) -> IdxArrays:
    """The four files of dataset `name` as arrays: from this process's memo, else the cache, else parsed."""
    key = tuple((file, str(path), *_stamp(path)) for file, path in sorted(files.items()))
    return _load(name, key)


def _stamp(path: Path) -> tuple[int, int, int, int]:
    try:
        st = path.stat()
    except OSError as e:
        raise DataError(f"{path} cannot be read ({e.strerror or e})") from None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


@functools.lru_cache(maxsize=8)
def _load(name: str, key: tuple) -> IdxArrays:
    files = {file: Path(path) for file, path, *_ in key}

    def build():
        md5s = {file: md5(path) for file, path in files.items()}  # hashed once: the cache keeps them
        _check_not_swapped(name, files, md5s)
        return {file: read_idx(path) for file, path in files.items()}, {"md5s": md5s}

    entry = datacache.load_or_build(name, files, build)
    md5s = entry.meta.get("md5s", {})
    if entry.cached:
        _check_not_swapped(name, files, md5s)
    a = entry.arrays
    source = f"{name}:" + "|".join(":".join(map(str, item)) for item in key)
    return IdxArrays(
        a[IDX_FILES[0]], a[IDX_FILES[1]], a[IDX_FILES[2]], a[IDX_FILES[3]], md5s, files, entry.cached, source
    )


def verified(name: str, md5s: dict[str, str]) -> bool:
    """Every file matched its published md5."""
    return [md5s.get(file) for file in IDX_FILES] == list(MD5S[name])


def _check_not_swapped(name: str, files: dict[str, Path], md5s: dict[str, str]) -> None:
    """An official file of another dataset given as this one is an error (its md5 tells)."""
    title = DATASETS[name].title
    for file, actual in md5s.items():
        if OFFICIAL.get(actual, title) != title:
            raise DataError(f"{files[file]} is a {OFFICIAL[actual]} file, not {title}; check --dataset and --data-dir")


def preload(name: str, data_dir: str | os.PathLike | None = None) -> None:
    """Load dataset `name` into this process's memo (and the cache) ahead of time, quietly: the real load
    reports any problem. For `fmtui train`, while torch is imported in another thread."""
    from fmtui.datafiles import default_data_dir

    if name not in MD5S:
        return
    try:
        files, _ = find_files(name, Path(data_dir).expanduser() if data_dir else default_data_dir())
        if files is not None:
            load_arrays(name, files)
    except Exception:  # noqa: BLE001 - anything wrong is found and told again by the load that needs the data
        pass


# --- reading and parsing --------------------------------------------------------------------------


def md5(path: Path) -> str:
    """md5 of a file, hashed once per (path, size, mtime, ctime, inode) in a process (the cache stores it
    for the next processes)."""
    return _md5_of(str(path), *_stamp(path))


@functools.lru_cache(maxsize=64)
def _md5_of(path: str, *stamp: int) -> str:
    h = hashlib.md5()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as e:
        raise DataError(f"{path} cannot be read ({e.strerror or e})") from None
    return h.hexdigest()


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (.gz or extracted) as a uint8 array, checked."""
    return parse_idx_array(read_bytes(path), path)


def read_bytes(path: Path) -> bytes:
    """The IDX header and at most the payload it announces (plus one byte, to tell a file that is too long).

    A .gz file is decompressed only that far: a small gzip bomb cannot make us inflate gigabytes, and a
    header that claims more than MAX_IDX_BYTES is refused before anything is allocated."""
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as f:
            head = f.read(4)
            ndim = head[3] if len(head) == 4 and head[:3] == b"\0\0\x08" else 0
            head += f.read(4 * ndim)
            size = math.prod(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
            if len(head) == 4 + 4 * ndim and size > MAX_IDX_BYTES:
                dims = tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
                raise DataError(
                    f"{path}: its IDX header claims shape {dims} ({size:,} bytes), more than a dataset file holds "
                    f"(at most {MAX_IDX_BYTES:,}); delete it so it can be downloaded again"
                )
            return head + f.read(size + 1)
    except (OSError, EOFError, zlib.error) as e:
        reason = "truncated" if isinstance(e, EOFError) else f"corrupted ({e})"
        raise DataError(f"{path} is {reason}; delete it so it can be downloaded again") from None


def parse_idx_array(raw: bytes, path: Path | str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes (uint8 payload, any rank) into an array, checking header and length."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise DataError(f"{path}: IDX element type 0x{raw[2]:02x} is not supported (only uint8)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path} is truncated (incomplete IDX header)")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + math.prod(dims)
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(f"{path} is {what}: {len(raw)} bytes for shape {tuple(dims)}, expected {expected}")
    if expected == header:  # no pixels at all; the loader says so
        return np.empty(dims, dtype=np.uint8)
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)  # read-only: a view of raw

"""The MNIST family's IDX files, torch-free: find them, check their md5s, parse them into numpy arrays,
through the per-user cache of decoded data (fmtui.datacache).

fmtui.data wraps the arrays as torch tensors without copying them; `preload` lets `fmtui train` read (or
build) them while torch is still being imported. The files' published md5s and class names are kept here
rather than read from torchvision, whose import alone costs about a second (a test checks them against
torchvision's own; downloads still go through torchvision, see fmtui.data).
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
from fmtui.datafiles import FOLDERS, IDX_FILES, TITLES


class DataError(RuntimeError):
    """Dataset files missing, unreadable or inconsistent; the message is one line for the user."""


MD5S = {
    "fashion-mnist": (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "25c81989df183df01b3e8a0aad5dffbe",
        "bef4ecab320f06d8554ea6380940ec79",
        "bb300cfdad3c16e7a12a480ee83cd310",
    ),
    "mnist": (
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "d53e105ee54ea40749a09fcbcd1e9432",
        "9fb629c4189551a2d022fa330f9573f3",
        "ec29112dd5afa0611ce80d1b7f02629c",
    ),
    "kmnist": (
        "bdb82020997e1d708af4cf47b453dcf7",
        "e144d726b3acfaa3e44228e80efcd344",
        "5c965bf0a639b31b8f53240b1b52f4d7",
        "7320c461ea6c1c855c0b718fb2a4b134",
    ),
}
"""The published md5 of each of IDX_FILES, per dataset (as torchvision's `resources` list them)."""
CLASSES = {
    "fashion-mnist": "T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot".split("|"),
    "mnist": [f"{i} - {w}" for i, w in enumerate("zero one two three four five six seven eight nine".split())],
    "kmnist": ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
}
"""Class names as torchvision gives them."""
OFFICIAL = {md5: TITLES[name] for name, md5s in MD5S.items() for md5 in md5s}
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
    md5s: dict[str, str | None]
    """Each file's md5 (None for an extracted file, which has no published md5)."""
    files: dict[str, Path]
    cached: bool
    """Mapped from the cache file rather than parsed now."""
    source: str
    """The files and their stat stamps, as one string: equal sources, equal arrays."""


def find_files(name: str, root: Path) -> tuple[dict[str, Path] | None, list[Path]]:
    """Look in root and its dataset sub-folders for all four files (.gz or extracted); also the folders searched."""
    searched = [root] + [root / sub for sub in FOLDERS[name]]
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
        md5s = {file: md5(path) if path.suffix == ".gz" else None for file, path in files.items()}
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


def verified(name: str, md5s: dict[str, str | None]) -> bool:
    """Every file matched its published md5."""
    return [md5s.get(file) for file in IDX_FILES] == list(MD5S[name])


def _check_not_swapped(name: str, files: dict[str, Path], md5s: dict[str, str | None]) -> None:
    """An official file of another dataset given as this one is an error (its md5 tells)."""
    for file, actual in md5s.items():
        if actual is not None and OFFICIAL.get(actual, TITLES[name]) != TITLES[name]:
            raise DataError(
                f"{files[file]} is a {OFFICIAL[actual]} file, not {TITLES[name]}; check --dataset and --data-dir"
            )


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

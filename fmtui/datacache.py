"""A per-user cache of decoded datasets: parsed uint8 arrays stored once, memory-mapped on later starts.

Parsing Fashion-MNIST's four gzip files (md5, gunzip, IDX checks) took 2.2 s at every start; mapping the
decoded arrays back takes milliseconds. One cache file holds one dataset's arrays and what they were made
from, so a changed source file is never served stale: the caller names the sources by identity (path,
size, mtime, ctime, inode) and a file made from other sources is not used.

File layout (little-endian, every array 64-byte aligned so that numpy maps it in place):

    MAGIC (8 bytes) | header length (u32) | header (JSON) | SHA-256 of the three before (32 bytes) | pad
    | array 0 | pad | array 1 | ...        (offsets in the header count from array 0's start)

The header names the sources, the arrays (dtype, shape, offset, CRC-32) and the payload's size. A file
is trusted only when its header's checksum, its size, its sources and every array's CRC-32 match (CRC-32
of 55 MB: about 20 ms); anything else is treated as damaged: ONE note on stderr, and the caller parses
the sources again (and rewrites the file). Files are written under a temporary name and renamed into
place, so readers (and concurrent writers, in other processes) see a whole file or none. A cache folder
that cannot be written costs one note, never a failure.

Torch-free and numpy-only: `fmtui train` loads (or builds) the cache while `import torch` runs beside it.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"FMTUIDC\x01"
"""The first 8 bytes of a cache file; the last byte is the format's version."""
ALIGN = 64
MAX_HEADER = 1 << 20
"""A header longer than this belongs to a damaged file (real headers are a few hundred bytes)."""
SUFFIX = ".fmd"
STALE_TMP_SECONDS = 600
"""Temporary files of a writer that died are removed by the next writer after this long."""

_noted: set[str] = set()


def cache_dir() -> Path:
    """$FMTUI_CACHE_DIR, else (XDG_CACHE_HOME or ~/.cache)/fmtui/decoded: beside the downloaded data."""
    env = os.environ.get("FMTUI_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fmtui" / "decoded"


def note(kind: str, text: str) -> None:
    """One line on stderr, once per kind and process (the dashboard's stderr is captured by Textual)."""
    if kind in _noted:
        return
    _noted.add(kind)
    try:
        print(f"Note: {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # no stderr to tell: the cache is an optimisation, it goes on without it
        pass


def source_id(path: Path) -> dict[str, Any]:
    """What identifies a source file's content without reading it: a rewrite changes size, mtime or ctime,
    a replacement the inode."""
    st = path.stat()
    return {
        "path": str(path.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "inode": st.st_ino,
        "device": st.st_dev,
    }


@dataclass
class Entry:
    """Arrays and the facts stored with them (e.g. the sources' md5s), as read from or written to the cache."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    cached: bool
    """True when read from a cache file; False when just built by the caller."""


class Damaged(Exception):
    """A cache file that must not be trusted; the message says why, in a few words."""


def entry_path(kind: str, sources: Mapping[str, Path], ids: Mapping[str, dict]) -> Path:
    """cache_dir()/<kind>-<where the sources are>-<their identity>.fmd: a changed source gets another name,
    and the file of the same sources' earlier content is pruned when the new one is written."""
    where = _digest(sorted((name, ids[name]["path"]) for name in sources))
    what = _digest(sorted((name, ids[name]) for name in sources))
    return cache_dir() / f"{kind}-{where}-{what}{SUFFIX}"


def load_or_build(
    kind: str, sources: Mapping[str, Path], build: Callable[[], tuple[dict[str, np.ndarray], dict[str, Any]]]
) -> Entry:
    """The arrays made from `sources` (name -> file): mapped from the cache when a sound file for exactly
    these sources is there, else `build()` (arrays, meta), stored for next time. Errors of `build` propagate;
    cache errors never do."""
    ids = {name: source_id(path) for name, path in sources.items()}
    try:
        path = entry_path(kind, sources, ids)
        return read(path, ids)
    except (FileNotFoundError, NotADirectoryError):  # not cached yet (or no cache folder: writing will say)
        pass
    except Damaged as e:
        note("damaged", f"the decoded-data cache {path} is damaged ({e}); parsing the dataset files instead")
    except (OSError, RuntimeError, ValueError) as e:  # no home folder, an unreadable folder, a failed mmap
        note("unreadable", f"cannot read the decoded-data cache ({_reason(e)}); parsing the dataset files instead")
    arrays, meta = build()
    if ids != {name: source_id(p) for name, p in sources.items()}:  # a source changed while it was parsed
        return Entry(arrays, meta, cached=False)
    try:
        path = entry_path(kind, sources, ids)
        write(path, ids, arrays, meta)
    except (OSError, RuntimeError) as e:
        where = _where()
        note(
            "unwritable", f"cannot write the decoded-data cache{where} ({_reason(e)}); the files are parsed every time"
        )
        return Entry(arrays, meta, cached=False)
    try:  # the file just written, mapped: what later starts will see, and shared memory rather than private
        return Entry(read(path, ids).arrays, meta, cached=False)
    except (OSError, Damaged):  # replaced by another writer's file of other sources, or removed: keep ours
        return Entry(arrays, meta, cached=False)


def _reason(e: BaseException) -> str:
    return (e.strerror if isinstance(e, OSError) and e.strerror else str(e)) or type(e).__name__


def _where() -> str:
    try:
        return f" in {cache_dir()}"
    except RuntimeError:  # no home folder to find it in
        return ""


def read(path: Path, ids: Mapping[str, dict] | None = None) -> Entry:
    """Map a cache file; Damaged unless every check passes (ids: the sources it must have been made from)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(12)
        if len(head) < 12 or head[:8] != MAGIC:
            raise Damaged("not a cache file of this version")
        (length,) = struct.unpack("<I", head[8:])
        if length > MAX_HEADER or 12 + length + 32 > size:
            raise Damaged("its header length is impossible")
        text = f.read(length)
        if hashlib.sha256(head + text).digest() != f.read(32):
            raise Damaged("its header checksum does not match")
        try:
            header = json.loads(text)
            base, payload, specs = _aligned(12 + length + 32), int(header["payload"]), list(header["arrays"])
        except (ValueError, KeyError, TypeError):
            raise Damaged("its header cannot be read") from None
        if base + payload != size:
            raise Damaged(f"{size:,} bytes where its header says {base + payload:,}: truncated or extended")
        if ids is not None and header.get("sources") != dict(ids):
            raise Damaged("it was made from other files")  # a digest collision in its name, or a hand-made file
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)  # private pages: writable, never written back
    try:
        return Entry(_arrays(mapped, base, size, specs), header.get("meta", {}), cached=True)
    except (KeyError, TypeError, ValueError):
        raise Damaged("its array table cannot be read") from None


def _arrays(mapped: mmap.mmap, base: int, size: int, specs: list[dict]) -> dict[str, np.ndarray]:
    """The arrays the header lists, as numpy views of the mapping, each checked against its CRC-32."""
    arrays = {}
    for spec in specs:
        start, end = base + spec["offset"], base + spec["offset"] + spec["nbytes"]
        if end > size or zlib.crc32(memoryview(mapped)[start:end]) != spec["crc32"]:
            raise Damaged(f"array {spec['name']} fails its CRC-32")
        count = spec["nbytes"] // np.dtype(spec["dtype"]).itemsize
        array = np.frombuffer(mapped, dtype=spec["dtype"], count=count, offset=start)
        arrays[spec["name"]] = array.reshape(spec["shape"])
    return arrays


def write(path: Path, ids: Mapping[str, dict], arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Write the file under a temporary name in its folder and rename it into place (atomic on POSIX and
    Windows); then remove the files of these sources' earlier contents and old temporary files."""
    arrays = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    specs, offset = [], 0
    for name, array in arrays.items():
        offset = _aligned(offset)
        crc = zlib.crc32(array.data)
        specs.append({"name": name, "dtype": array.dtype.str, "shape": list(array.shape), "offset": offset})
        specs[-1] |= {"nbytes": array.nbytes, "crc32": crc}
        offset += array.nbytes
    header = {"sources": dict(ids), "meta": dict(meta), "arrays": specs, "payload": offset}
    body = json.dumps(header, sort_keys=True).encode()
    head = MAGIC + struct.pack("<I", len(body)) + body
    head += hashlib.sha256(head).digest()
    base = _aligned(len(head))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            for spec, array in zip(specs, arrays.values()):
                f.write(b"\0" * (base + spec["offset"] - f.tell()))
                f.write(array.data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _prune(path)


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def _prune(path: Path) -> None:
    """Remove older files of the same sources, and temporary files that a dead writer left behind."""
    prefix = path.name.rsplit("-", 1)[0] + "-"
    now = time.time()
    for other in path.parent.iterdir():
        try:
            if other.name.startswith(prefix) and other.name.endswith(SUFFIX) and other != path:
                other.unlink()
            elif other.name.startswith(".tmp-") and now - other.stat().st_mtime > STALE_TMP_SECONDS:
                other.unlink()
        except OSError:  # gone already (another writer pruned it), or not ours to remove
            pass

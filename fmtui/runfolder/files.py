"""Opening, reading and writing the files of a run folder, never through a symbolic link.

A run folder may be someone else's (a shared runs folder): a `.lock` or `metrics.jsonl` replaced by a link
to another file must not get that file overwritten or appended to, and a dangling link must not create its
target. Every run file is opened with O_NOFOLLOW here; a link is refused with one line naming it (RunError
for a reader, an OSError with ELOOP for a writer, which fmtui.recorder words as `refused a symbolic link`).
Replacing a file (atomic_write) renames a new file over the name: that never follows a link either, and a
link found there is refused too. Standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from fmtui.errors import RunError
from fmtui.runfolder.schema import DEFAULT_MAX_BYTES, MAX_BYTES

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)
LINK = "a symbolic link (fmtui never follows one out of a run folder)"
"""A reader's reason for a run file that is a link."""


def link_error(path: Path) -> OSError:
    """What a writer raises for a run file that is a symbolic link."""
    return OSError(errno.ELOOP, "a symbolic link", str(path))


def is_link(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


def stat_file(file: Path) -> os.stat_result | None:
    """A run file's lstat, None when it does not exist; RunError when it is a link, a folder, no regular file
    or larger than its MAX_BYTES."""
    try:
        st = os.lstat(file)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise RunError(file, f"cannot be read ({e.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise RunError(file, LINK)
    if stat.S_ISDIR(st.st_mode):
        raise RunError(file, "a folder, not a file")
    if not stat.S_ISREG(st.st_mode):  # a fifo would block the reader forever
        raise RunError(file, "not a regular file")
    if st.st_size > MAX_BYTES.get(file.name, DEFAULT_MAX_BYTES):
        raise RunError(file, f"too large for a run's file ({st.st_size:,} bytes)")
    return st


@contextlib.contextmanager
def open_read(file: Path) -> Iterator[BinaryIO]:
    """A run file opened for reading without following a link (O_NOFOLLOW; O_NONBLOCK so that a fifo put in
    its place cannot block): RunError when it is missing, a link, a folder or no regular file."""
    try:
        fd = os.open(file, os.O_RDONLY | NOFOLLOW | CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise RunError(file, "no such file") from None
    except OSError as e:
        raise RunError(file, LINK if e.errno == errno.ELOOP else f"cannot be read ({e.strerror})") from None
    f = os.fdopen(fd, "rb")
    with f:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise RunError(file, "a folder, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise RunError(file, "not a regular file")
        yield f


def read_bytes(file: Path) -> bytes:
    """A run file's bytes (see open_read)."""
    try:
        with open_read(file) as f:
            return f.read()
    except OSError as e:
        raise RunError(file, f"cannot be read ({e.strerror})") from None


def atomic_write(path: Path, data: bytes | str, *, sync: bool = True) -> None:
    """Write to a temporary file beside path, then rename over it: readers never see half a file, and a
    failed write (a full disk) leaves the old file as it was. A symbolic link at path is refused (ELOOP).

    The file is created with mode 0666 minus the umask, like any file a program creates (mkstemp's 0600
    would hide run folders from colleagues on a shared machine). sync=True flushes it to the disk before
    the rename, so that after a crash the name holds either the old or the new content.
    """
    raw = data.encode() if isinstance(data, str) else data
    path = Path(path)
    if is_link(path):
        raise link_error(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | CLOEXEC
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}"
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"no free temporary name beside {path}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def append_lines(file: Path, text: str, *, sync: bool = True) -> None:
    """Append whole lines and flush them to the disk (sync=False: leave that to the system), never through a
    link (OSError ELOOP); a failed append is cut off again (no half line)."""
    nonblock = getattr(os, "O_NONBLOCK", 0)  # a fifo in its place fails at once (ENXIO) instead of blocking
    fd = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | NOFOLLOW | CLOEXEC | nonblock, 0o666)
    with os.fdopen(fd, "ab") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(file))
        size = os.fstat(fd).st_size
        try:
            f.write(text.encode())
            f.flush()
            if sync:
                os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise


def truncate(file: Path, size: int) -> None:
    """Cut a run file to `size` bytes, never through a link (OSError ELOOP)."""
    fd = os.open(file, os.O_WRONLY | NOFOLLOW | CLOEXEC)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def sync_folder(folder: Path) -> None:
    """Make the renames in a folder durable (one fsync of the folder); a file system that cannot is no error."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

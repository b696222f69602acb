"""Where a dataset's files are, by file existence alone: no torch, no reading, so the first screen can say it.

fmtui.data loads the files (and downloads missing ones); this module only answers "are they there, and
where would they go?" in a few `stat` calls, cheap enough to ask on every change of the Model pane.
A test checks that the folder names here match fmtui.data's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fmtui.registry import DATASETS, DatasetSpec


def default_data_dir() -> Path:
    """$FMTUI_DATA_DIR, else the per-user cache folder (XDG_CACHE_HOME or ~/.cache)/fmtui/data."""
    env = os.environ.get("FMTUI_DATA_DIR")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "fmtui" / "data"


def downloads_off() -> bool:
    """FMTUI_NO_DOWNLOAD is set: missing files are an error, never fetched."""
    return bool(os.environ.get("FMTUI_NO_DOWNLOAD"))


@dataclass(frozen=True)
class DataFiles:
    """Where a dataset was found (`found`), or where it was looked for and where a download would go."""

    dataset: str
    root: Path
    """The data folder: --data-dir, else $FMTUI_DATA_DIR, else the user cache."""
    found: Path | None
    """The folder holding the files, or None when they are missing."""
    from_env: bool
    """The data folder came from $FMTUI_DATA_DIR."""

    @property
    def spec(self) -> DatasetSpec:
        return DATASETS[self.dataset]

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def target(self) -> Path:
        """Where a download would put the files."""
        return self.root / self.spec.folders[0]

    def summary(self) -> str:
        """One line: where the data is, or that it is missing and what s would do."""
        if self.found is not None:
            return f"data: {self.title} in {self.found}"
        fix = "downloads are off" if downloads_off() else f"s downloads them ({self.spec.size})"
        return f"✗ no {self.title} files in {self.root}: {fix}"

    def help(self) -> str:
        """What to do about missing files, in four short lines (empty when the files are there)."""
        if self.found is not None:
            return ""
        files = self.spec.files
        what = (
            f"the {files[0]}/ folder" if _is_folder(files[0]) else f"{', '.join(files[:2])},\n{' and '.join(files[2:])}"
        )
        where = "$FMTUI_DATA_DIR" if self.from_env else "the data folder"
        download = (
            "or unset FMTUI_NO_DOWNLOAD and press s to download them."
            if downloads_off()
            else f"or press s: it downloads them ({self.spec.size}), then trains."
        )
        return (
            f"No {self.title} files in {self.root} ({where}) or its sub-folders.\n"
            f"Fix: put {what} into {self.target},\n"
            f"or set FMTUI_DATA_DIR (or --data-dir) to a folder that has them,\n{download}"
        )


def locate(dataset: str, data_dir: str | os.PathLike | None = None) -> DataFiles:
    """Find the dataset's files as fmtui.data would (same folders, same names), by existence only."""
    root = Path(data_dir).expanduser() if data_dir else default_data_dir()
    from_env = not data_dir and bool(os.environ.get("FMTUI_DATA_DIR"))
    spec = DATASETS.get(dataset)
    for folder in [root] + [root / sub for sub in (spec.folders if spec else ())]:
        if spec and all(_present(folder / name) for name in spec.files):
            return DataFiles(dataset, root, folder, from_env)
    return DataFiles(dataset, root, None, from_env)


def _is_folder(name: str) -> bool:
    """A dataset's files are .gz files (each may be there extracted too), or the one folder an archive holds."""
    return not name.endswith(".gz")


def _present(path: Path) -> bool:
    if _is_folder(path.name):
        return path.is_dir()
    return path.is_file() or path.with_suffix("").is_file()

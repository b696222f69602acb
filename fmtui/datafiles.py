"""Where a dataset's files are, by file existence alone: no torch, no reading, so the first screen can say it.

fmtui.data loads the files (and downloads missing ones); this module only answers "are they there, and
where would they go?" in a few `stat` calls, cheap enough to ask on every change of the Model pane.
A test checks that the folder names here match fmtui.data's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
"""The four official files of the MNIST family (each may also be there extracted, without .gz)."""
CIFAR_FOLDER = "cifar-10-batches-py"
"""CIFAR-10's extracted folder, as torchvision's archive holds it."""

TITLES = {"fashion-mnist": "Fashion-MNIST", "mnist": "MNIST", "kmnist": "KMNIST", "cifar10": "CIFAR-10"}
FOLDERS = {
    "fashion-mnist": ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw", "FashionMNIST"),
    "mnist": ("mnist", "MNIST/raw", "MNIST"),
    "kmnist": ("kmnist", "KMNIST/raw", "KMNIST"),
    "cifar10": ("cifar10", "cifar-10", "CIFAR10"),
}
"""Sub-folders of the data folder that may hold a dataset (the first is where a download goes)."""
SIZES = {"fashion-mnist": "30 MB", "mnist": "11 MB", "kmnist": "19 MB", "cifar10": "163 MB"}


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
    def title(self) -> str:
        return TITLES.get(self.dataset, self.dataset)

    @property
    def target(self) -> Path:
        """Where a download would put the files."""
        return self.root / FOLDERS[self.dataset][0]

    def summary(self) -> str:
        """One line: where the data is, or that it is missing and what s would do."""
        if self.found is not None:
            return f"data: {self.title} in {self.found}"
        fix = "downloads are off" if downloads_off() else f"s downloads them ({SIZES[self.dataset]})"
        return f"✗ no {self.title} files in {self.root}: {fix}"

    def help(self) -> str:
        """What to do about missing files, in four short lines (empty when the files are there)."""
        if self.found is not None:
            return ""
        what = (
            f"the {CIFAR_FOLDER}/ folder"
            if self.dataset == "cifar10"
            else f"{IDX_FILES[0]}, {IDX_FILES[1]},\n{IDX_FILES[2]} and {IDX_FILES[3]}"
        )
        where = "$FMTUI_DATA_DIR" if self.from_env else "the data folder"
        download = (
            "or unset FMTUI_NO_DOWNLOAD and press s to download them."
            if downloads_off()
            else f"or press s: it downloads them ({SIZES[self.dataset]}), then trains."
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
    for folder in [root] + [root / sub for sub in FOLDERS.get(dataset, ())]:
        if dataset == "cifar10":
            if (folder / CIFAR_FOLDER).is_dir():
                return DataFiles(dataset, root, folder, from_env)
        elif all((folder / n).is_file() or (folder / n.removesuffix(".gz")).is_file() for n in IDX_FILES):
            return DataFiles(dataset, root, folder, from_env)
    return DataFiles(dataset, root, None, from_env)

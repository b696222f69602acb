"""Datasets as uint8 tensors: find or download the official files, parse them, normalize on the device.

Files are looked for in a data folder given by `--data-dir`, else $FMTUI_DATA_DIR, else a per-user cache.
Inside it, the official flat layout (the four `.gz` files), a sub-folder named after the dataset
(`fashion-mnist/`, as in the official download) and torchvision's own layout (`FashionMNIST/raw/`)
all work. Missing files are downloaded through torchvision (its mirrors and md5 checks); with no
network the error names the files and where to put them. Broken files raise `DataError`, never a
numpy/torch crash. The MNIST family's files are read by fmtui.idx (torch-free), through a per-user cache of
the decoded arrays (fmtui.datacache), and wrapped here as tensors without a copy.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from fmtui import idx
from fmtui.config import ConfigError
from fmtui.datafiles import default_data_dir
from fmtui.errors import DataError  # raised here for every dataset problem
from fmtui.events import NormStats
from fmtui.registry import DATASETS, IDX_FILES, DatasetSpec

__all__ = ["DataError", "Dataset", "load_dataset", "norm_stats", "normalize", "parse_idx", "to_device"]

SPECS = DATASETS
"""How to find each dataset: its torchvision class and the folder names it may live under (fmtui.registry)."""


@dataclass
class Dataset:
    """Both splits of a dataset as uint8 images (N, C, H, W) and int64 labels (N,), on the CPU."""

    name: str
    title: str
    classes: list[str]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    verified: bool
    """True when every file matched torchvision's published md5."""
    files: tuple[tuple[str, int, str], ...] = ()
    """(file name, size in bytes, md5) of each file it was read from: its fingerprint, which a run records
    in config.json so that resuming it on other data is refused (fmtui.session)."""
    source: str | None = None
    """What the data was loaded from: its files and their stat stamps (None: made in memory). Equal sources,
    equal data: the engine keeps a placed dataset warm under it (fmtui.engine.warm)."""

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def class_counts(self, split: str = "train") -> list[int]:
        y = self.y_train if split == "train" else self.y_test
        return torch.bincount(y, minlength=len(self.classes)).tolist()


def _tv_class(spec: DatasetSpec):
    return getattr(_torchvision("datasets"), spec.tv_class)


def _torchvision(module: str):
    """torchvision.<module>, imported late (~1 s, only needed for metadata and downloads); DataError when a
    torchvision that does not fit torch fails on import (each must come from the same place as the other)."""
    try:
        return importlib.import_module(f"torchvision.{module}")
    except (ImportError, RuntimeError, OSError) as e:
        first = next(iter(str(e).strip().splitlines()), type(e).__name__)
        raise DataError(f"torchvision cannot be imported ({first}): {_TORCHVISION_FIX}") from None


_TORCHVISION_FIX = (
    "torch and torchvision must be a matching pair from the same place; reinstall both together, e.g. "
    "pip install --force-reinstall torch torchvision (with the same --index-url for a CPU-only install)"
)


# --- IDX files (MNIST family) ---------------------------------------------------------------


def parse_idx(raw: bytes, path: Path | str = "<bytes>") -> torch.Tensor:
    """Parse IDX bytes (uint8 payload, any rank) into a tensor, checking header and length."""
    return _tensor(idx.parse_idx_array(raw, path))


def _tensor(a) -> torch.Tensor:
    """A numpy array as a tensor sharing its memory (a cache file's private mapping: no copy); an array
    over read-only bytes is copied, since torch tensors are writable."""
    return torch.from_numpy(a if a.flags.writeable else a.copy())


def _missing_message(spec: DatasetSpec, root: Path, what: str) -> str:
    """One short line: the dataset is not in root (nor its sub-folders); where to put `what` instead."""
    return (
        f"{spec.title} files not found in {root} or its sub-folders; put {what} into {root / spec.folders[0]}, "
        "set FMTUI_DATA_DIR or pass --data-dir"
    )


def _download_idx(spec: DatasetSpec, root: Path, searched: list[Path]) -> dict[str, Path]:
    """Download the four files with torchvision (mirrors + md5) into root/<dataset>/, or explain.

    The files are fetched into a temporary folder and moved into place only once all four arrived, so a
    failed download leaves nothing behind in the data folder (which may be shared, or read-mostly)."""
    import tempfile

    download_url = _torchvision("datasets.utils").download_url
    cls = _tv_class(spec)
    target = root / spec.folders[0]
    names = [name for name, _ in cls.resources]
    missing_msg = _missing_message(spec, root, f"the four files ({', '.join(names)})")
    if os.environ.get("FMTUI_NO_DOWNLOAD"):
        raise DataError(missing_msg + " (downloads are off: FMTUI_NO_DOWNLOAD)")
    with tempfile.TemporaryDirectory(prefix="fmtui-download-") as tmp:
        for name, md5 in cls.resources:
            errors = []
            for mirror in cls.mirrors:
                try:
                    download_url(f"{mirror}{name}", root=tmp, filename=name, md5=md5)
                    break
                except Exception as e:  # network errors come in many types; all mean "try the next mirror"
                    errors.append(f"{type(e).__name__}: {e}".splitlines()[0])
            else:
                raise DataError(f"{missing_msg}; download failed ({errors[-1] if errors else 'no mirror'})")
        _move_into(Path(tmp), names, target)
    return {name: target / name for name in names}


def _move_into(source: Path, names: list[str], target: Path) -> None:
    """Move downloaded files (or folders) into target; on failure, remove what was moved and a folder made here."""
    import shutil

    made = [p for p in [target, *target.parents] if not p.exists()]
    moved = []
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.move(str(source / name), str(target / name))
            moved.append(target / name)
    except OSError as e:
        for path in moved:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        for folder in made:  # deepest first
            shutil.rmtree(folder, ignore_errors=True)
        raise DataError(f"downloaded, but cannot write into {target} ({e.strerror or e}); set FMTUI_DATA_DIR") from None


def _load_idx_dataset(spec: DatasetSpec, root: Path) -> Dataset:
    files, searched = idx.find_files(spec.name, root)
    if files is None:
        files = _download_idx(spec, root, searched)
    arrays = idx.load_arrays(spec.name, files)
    x_train, y_train = _tensor(arrays.x_train), _tensor(arrays.y_train)
    x_test, y_test = _tensor(arrays.x_test), _tensor(arrays.y_test)
    classes = spec.classes
    splits = (
        (x_train, y_train, "train", "train-images-idx3-ubyte.gz"),
        (x_test, y_test, "test", "t10k-images-idx3-ubyte.gz"),
    )
    for x, y, split, images in splits:
        if x.dim() != 3 or y.dim() != 1:
            raise DataError(
                f"{spec.title} {split} files have shapes {tuple(x.shape)} and {tuple(y.shape)}; expected (N, H, W) and (N,)"
            )
        if x.numel() == 0:  # 0 images, or images of 0x0 pixels: nothing to train or test on
            raise DataError(
                f"{files[images]} holds no pixels: shape {tuple(x.shape)}; delete it so it can be downloaded again"
            )
        if len(x) != len(y):
            raise DataError(f"{spec.title} {split} split has {len(x)} images but {len(y)} labels")
        if len(y) and int(y.max()) >= len(classes):
            raise DataError(f"{spec.title} {split} labels go up to {int(y.max())}; expected 0..{len(classes) - 1}")
    return Dataset(
        spec.name,
        spec.title,
        list(classes),
        x_train.unsqueeze(1),
        y_train.long(),
        x_test.unsqueeze(1),
        y_test.long(),
        idx.verified(spec.name, arrays.md5s),
        tuple((files[f].name, files[f].stat().st_size, arrays.md5s[f]) for f in IDX_FILES),
        source=arrays.source,
    )


# --- CIFAR-10 (python pickles via torchvision) ------------------------------------------------


def _load_cifar(spec: DatasetSpec, root: Path) -> Dataset:
    cls = _tv_class(spec)
    candidates = [root] + [root / sub for sub in spec.folders]
    base = next((c for c in candidates if (c / cls.base_folder).is_dir()), None)
    if base is None:
        base = _download_cifar(spec, root)
    try:
        train = cls(str(base), train=True, download=False)
        test = cls(str(base), train=False, download=False)
    except Exception as e:  # torchvision raises RuntimeError/URLError/pickle errors; all mean "not usable"
        raise DataError(
            f"CIFAR-10 not usable in {base} ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
            f"put the extracted {cls.base_folder}/ folder there or pass --data-dir"
        ) from None

    def to_tensor(a):
        return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()  # (N,H,W,C) -> (N,C,H,W)

    folder = base / cls.base_folder
    source = "cifar10:" + "|".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(folder.iterdir()))

    return Dataset(
        spec.name,
        spec.title,
        list(spec.classes),
        to_tensor(train.data),
        torch.tensor(train.targets),
        to_tensor(test.data),
        torch.tensor(test.targets),
        True,
        _cifar_files(cls, base),
        source=source,
    )


def _cifar_files(cls, base: Path) -> tuple[tuple[str, int, str], ...]:
    """CIFAR-10's fingerprint: torchvision has checked each batch file against its published md5 (no second hash)."""
    folder = base / cls.base_folder
    return tuple((name, (folder / name).stat().st_size, md5) for name, md5 in [*cls.train_list, *cls.test_list])


def _download_cifar(spec: DatasetSpec, root: Path) -> Path:
    """Download and extract CIFAR-10 in a temporary folder, then move its folder into root/cifar10/.

    As for the MNIST family, a failed download leaves nothing in the data folder."""
    import tempfile

    cls = _tv_class(spec)
    target = root / spec.folders[0]
    missing_msg = _missing_message(spec, root, f"the extracted {cls.base_folder}/ folder")
    if os.environ.get("FMTUI_NO_DOWNLOAD"):
        raise DataError(missing_msg + " (downloads are off: FMTUI_NO_DOWNLOAD)")
    with tempfile.TemporaryDirectory(prefix="fmtui-download-") as tmp:
        try:
            cls(tmp, train=True, download=True)
        except Exception as e:  # network, md5 or archive errors: all mean "no dataset"
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise DataError(f"{missing_msg}; download failed ({reason})") from None
        _move_into(Path(tmp), [cls.base_folder], target)
    return target


def load_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Load both splits of a dataset by name from data_dir (see module docstring for the lookup)."""
    if name not in SPECS:
        raise ConfigError(f"--dataset: unknown value {name!r}; choose from {', '.join(SPECS)}")
    root = Path(data_dir).expanduser() if data_dir else default_data_dir()
    spec = SPECS[name]
    return _load_cifar(spec, root) if name == "cifar10" else _load_idx_dataset(spec, root)


# --- normalization ----------------------------------------------------------------------------


def norm_stats(norm: str, x_train: torch.Tensor) -> NormStats:
    """The shift and scale of a normalization; zscore measures them on x_train (uint8, N,C,H,W)."""
    c = x_train.shape[1]
    fixed = {"none": (0.0, 1.0), "unit": (0.0, 255.0), "symmetric": (127.5, 127.5), "per-image": (0.0, 1.0)}
    if norm in fixed:
        shift, scale = fixed[norm]
        return NormStats(norm, (shift,) * c, (scale,) * c)
    if norm != "zscore":
        raise ConfigError(f"--norm: unknown value {norm!r}")
    mean, std = channel_mean_std(x_train)
    return NormStats(norm, tuple(mean), tuple(max(s, 1e-6) for s in std))


def channel_mean_std(x: torch.Tensor, chunk: int = 8192) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of (N, C, H, W) data in float64, chunked to bound memory."""
    c = x.shape[1]
    s = torch.zeros(c, dtype=torch.float64, device=x.device)
    s2 = torch.zeros(c, dtype=torch.float64, device=x.device)
    for part in x.split(chunk):
        p = part.to(torch.float64).transpose(0, 1).reshape(c, -1)
        s += p.sum(1)
        s2 += (p * p).sum(1)
    n = x.numel() // c
    mean = s / n
    var = (s2 / n - mean * mean).clamp_min(0)
    return mean.tolist(), var.sqrt().tolist()


def normalize(x: torch.Tensor, stats: NormStats) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 normalized, on x's device."""
    x = x.float()
    if stats.norm == "per-image":
        flat = x.flatten(1)
        mean = flat.mean(1).view(-1, 1, 1, 1)
        std = flat.std(1, unbiased=False).clamp_min(1e-6).view(-1, 1, 1, 1)
        return (x - mean) / std
    if stats.norm == "none":
        return x
    shift, inv_scale = _affine(stats, x.device)
    return (x - shift) * inv_scale


@functools.lru_cache(maxsize=32)
def _affine(stats: NormStats, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift and 1/scale as (1, C, 1, 1) tensors on the device, made once rather than every batch."""
    shift = torch.tensor(stats.shift, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    scale = torch.tensor(stats.scale, dtype=torch.float64).view(1, -1, 1, 1)
    return shift, (1.0 / scale).to(torch.float32).to(device)


def pixel_stats(
    x: torch.Tensor, stats: NormStats | None = None, chunk: int = 8192
) -> tuple[float, float, float, float]:
    """(mean, std, min, max) of uint8 images (N, C, H, W), after the normalization `stats` when given.

    Affine normalizations map each of the 256 pixel values to one number per channel, so a histogram
    per channel gives the exact statistics in one cheap pass; per-image normalization is computed.
    """
    if stats is not None and stats.norm == "per-image":
        return _moments(normalize(part, stats).double() for part in x.split(chunk))
    c = x.shape[1]
    shift = stats.shift if stats else (0.0,) * c
    scale = stats.scale if stats else (1.0,) * c
    values, counts = [], []
    for ch in range(c):
        counts.append(torch.bincount(x[:, ch].flatten(), minlength=256).double())
        values.append((torch.arange(256, dtype=torch.float64) - shift[ch]) / scale[ch])
    v, n = torch.cat(values), torch.cat(counts)
    total = n.sum()
    mean = float((v * n).sum() / total)
    var = float((v * v * n).sum() / total) - mean * mean
    present = v[n > 0]
    return mean, max(var, 0.0) ** 0.5, float(present.min()), float(present.max())


def _moments(parts) -> tuple[float, float, float, float]:
    total = sq = count = 0.0
    lo, hi = float("inf"), float("-inf")
    for p in parts:
        total += p.sum().item()
        sq += (p * p).sum().item()
        count += p.numel()
        lo, hi = min(lo, p.min().item()), max(hi, p.max().item())
    mean = total / count
    return mean, max(sq / count - mean * mean, 0.0) ** 0.5, lo, hi


# --- device-side splits and batches -------------------------------------------------------------


@dataclass
class DeviceSplits:
    """uint8 images and int64 labels of train / val / test, all on the training device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor | None
    y_val: torch.Tensor | None
    x_test: torch.Tensor
    y_test: torch.Tensor


def to_device(ds: Dataset, device: torch.device, val_split: float = 0.0, seed: int = 0) -> DeviceSplits:
    """Move the splits to the device once; hold out val_split of train (a seeded permutation)."""
    n = len(ds.y_train)
    index = torch.arange(n)
    x_val = y_val = None
    if val_split > 0:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        n_val = max(1, int(round(n * val_split)))
        val_index, index = perm[:n_val].sort().values, perm[n_val:].sort().values
        x_val, y_val = ds.x_train[val_index].to(device), ds.y_train[val_index].to(device)
    x_train = ds.x_train[index] if val_split > 0 else ds.x_train
    return DeviceSplits(
        x_train.to(device),
        ds.y_train[index].to(device),
        x_val,
        y_val,
        ds.x_test.to(device),
        ds.y_test.to(device),
    )


def batch_indices(n: int, batch_size: int, generator: torch.Generator, device: torch.device) -> Iterator[torch.Tensor]:
    """A fresh device-side permutation of range(n), split into batches (the last may be short)."""
    return iter(torch.randperm(n, generator=generator, device=device).split(batch_size))

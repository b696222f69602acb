"""A run folder's tensor files, loaded safely: model.pt, predictions.pt and checkpoint.pt are opened without
following a link and read with `torch.load(weights_only=True)`, so nothing in them is ever unpickled but
tensors and plain values; each file is then checked field by field. A file that is missing, a link, truncated
or not what it should be is refused with one line naming it. Torch is imported only when one is loaded.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from fmtui.errors import RunError, RunFolderRefused
from fmtui.runfolder import files
from fmtui.runfolder.schema import PREDICTIONS


def _torch_load(file: Path) -> Any:
    """torch.load(weights_only=True) of a run file opened without following a link (RunError if it cannot be)."""
    import torch

    with files.open_read(file) as f, warnings.catch_warnings():  # torch warns of pickles it then refuses
        warnings.simplefilter("ignore")
        return torch.load(f, map_location="cpu", weights_only=True)


def load_results(path: Path):
    """The saved test predictions of a run folder as Results."""
    from fmtui.results import Results

    file = Path(path) / PREDICTIONS
    try:
        saved = _torch_load(file)
        return Results.from_probs(saved["probs"], saved["labels"])
    except RunError:
        raise
    except Exception as e:  # unpickling, a truncated file, missing keys: all mean "not usable predictions"
        raise RunError(file, f"no readable predictions ({type(e).__name__})") from None


def load_state_dict(file: Path) -> dict:
    """A saved model's state_dict: RunError naming the file when it is missing, a link, a folder, or not a
    state_dict of tensors."""
    import torch

    file = Path(file)
    if not file.exists() and not file.is_symlink():
        raise RunError(file, "no such file (the run saved no model)")
    if file.is_dir() and not file.is_symlink():
        raise RunError(file, "a folder, not a file")
    try:
        with files.open_read(file) as f:
            empty = not f.read(1)
    except OSError as e:
        raise RunError(file, f"cannot be read ({e.strerror})") from None
    if empty:
        raise RunError(file, "empty file")
    try:
        state = _torch_load(file)
    except RunError:
        raise
    except Exception as e:  # UnpicklingError (refused or garbage), EOFError, a zip error: not a saved model
        raise RunError(file, f"not a saved model ({type(e).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RunError(file, "not a saved model (not a state_dict of tensors)")
    return state


def load_checkpoint(file: Path) -> dict[str, Any]:
    """A run's checkpoint.pt, loaded and checked: RunFolderRefused when it is missing, a link, truncated, not
    a checkpoint, or one of a stacked sweep."""
    file = Path(file)
    if files.is_link(file):
        raise RunFolderRefused(f"{file} is {files.LINK}")
    if not file.is_file():
        raise RunFolderRefused(f"{file.parent} has no checkpoint.pt (it ended before its first epoch, or is older)")
    try:
        checkpoint = _torch_load(file)
    except RunError as e:
        raise RunFolderRefused(str(e)) from None
    except Exception as e:  # a truncated zip, a pickle of anything: never unpickled, always refused
        reason = next(iter(str(e).strip().splitlines()), type(e).__name__)[:120]
        raise RunFolderRefused(f"{file} is not a readable checkpoint (truncated or not one: {reason})") from None
    problem = checkpoint_problem(checkpoint)
    if problem:
        raise RunFolderRefused(f"{file} is not a fmtui checkpoint ({problem})")
    if checkpoint.get("stacked") is not None:
        raise RunFolderRefused(
            f"{file.parent} was trained in a stacked sweep; only single runs resume (its weights are in model.pt)"
        )
    return checkpoint


def checkpoint_problem(c: Any) -> str | None:
    """What makes c no checkpoint that `engine.train(resume=...)` can go on from (None: nothing)."""
    import torch

    def tensors(d: Any) -> bool:
        return isinstance(d, dict) and bool(d) and all(isinstance(v, torch.Tensor) for v in d.values())

    if not isinstance(c, dict):
        return f"a {type(c).__name__}, not a dict"
    if c.get("format") != 1:
        return f"format {c.get('format')!r}, expected 1"
    epoch = c.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        return f"epoch {epoch!r}"
    if not tensors(c.get("model")):
        return "no model weights"
    rows = c.get("metrics")
    if not isinstance(rows, list) or [r.get("epoch") if isinstance(r, dict) else None for r in rows] != list(
        range(1, epoch + 1)
    ):
        return f"its metrics are not those of epochs 1 to {epoch}"
    if not all(isinstance(r.get("seconds"), (int, float)) for r in rows):
        return "its metrics have no times"
    rng = c.get("rng")
    if not isinstance(rng, dict) or not all(isinstance(rng.get(k), torch.Tensor) for k in ("torch", "generator")):
        return "no random number generator states"
    if c.get("stacked") is None and not (isinstance(c.get("optimizer"), dict) and "param_groups" in c["optimizer"]):
        return "no optimizer state"
    if c.get("scheduler") is not None and not isinstance(c["scheduler"], dict):
        return "a schedule that is not a state dict"
    return None

"""Pinned runs: the runs a user keeps at the top of the Runs pane, remembered per user and per runs folder.

Pins are a view of one person, not a fact of the runs: they live in the user's state folder
($XDG_STATE_HOME/fmtui/pins.json, else ~/.local/state/fmtui/pins.json), never in a runs folder that others
may share or that may be read-only. The file maps each runs folder (its absolute path) to its pinned runs
(their folders relative to it, as the Runs pane keys them). A file that cannot be read counts as no pins; one
that cannot be written leaves the pins for the session (the caller says so). No torch, no UI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fmtui.runfolder.files import atomic_write

MAX_FOLDERS = 100
"""Runs folders remembered; the ones pinned longest ago are forgotten first (the file stays small)."""
MAX_PINS = 1000
"""Pins kept per runs folder."""


def pins_file() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "fmtui" / "pins.json"


def _folder_key(runs_dir: Path) -> str:
    return str(Path(runs_dir).expanduser().absolute())


def _read(file: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: [p for p in v if isinstance(p, str)] for k, v in data.items() if isinstance(v, list)}


def load_pins(runs_dir: Path) -> list[str]:
    """The pinned runs of runs_dir, first pinned first ([] when none or the file cannot be read)."""
    return _read(pins_file()).get(_folder_key(runs_dir), [])[:MAX_PINS]


def save_pins(runs_dir: Path, pins: list[str]) -> None:
    """Remember runs_dir's pins (the newest folder last); OSError when the file cannot be written."""
    file = pins_file()
    data = _read(file)
    key = _folder_key(runs_dir)
    data.pop(key, None)
    if pins:
        data[key] = list(dict.fromkeys(pins))[:MAX_PINS]
    data = dict(list(data.items())[-MAX_FOLDERS:])
    file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(file, json.dumps(data, indent=1), sync=False)

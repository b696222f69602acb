"""How to add an optional package (tensorboardX, optuna, ...) to the environment this fmtui runs in, as one
command built from how fmtui was installed: pipx, uv tool, or a virtual environment with pip or uv.

fmtui is not on the package index, so `pip install 'fmtui[extra]'` could fetch someone else's package;
the command names the optional package itself. Standard library only (no torch, no click).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import shlex
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

PIPX_METADATA = "pipx_metadata.json"
"""What pipx writes at the root of each environment it makes (pipx 0.15 on; checked with pipx 1.18)."""
UV_RECEIPT = "uv-receipt.toml"
"""What `uv tool install` writes at the root of each tool's environment (checked with uv 0.13)."""


def install_command(requirement: str, prefix: Path | None = None, executable: str | None = None) -> str:
    """The shell command that installs `requirement` into fmtui's environment: this interpreter's, or the one
    at `prefix` (whose python is `executable`)."""
    env = Environment(prefix, executable)
    req = shlex.quote(requirement)
    if (env.prefix / PIPX_METADATA).is_file():  # the environment's folder is named as pipx names it
        return f"pipx inject {shlex.quote(env.prefix.name)} {req}"
    if (env.prefix / UV_RECEIPT).is_file():
        return uv_tool_command(requirement, env)
    python = shlex.quote(env.python)
    if env.installer() == "uv" and not env.has_pip():  # `uv venv` makes environments without pip
        return f"uv pip install --python {python} {req}"
    return f"{python} -m pip install {req}"


def missing_package(requirement: str, needed_for: str) -> str:
    """One line for a missing optional package: what needs it, and the command that adds it here."""
    name = re.match(r"[A-Za-z0-9._-]*", requirement)[0] or requirement  # the name before any version or extra
    return f"{needed_for} needs {name}, which is not installed here; add it with: {install_command(requirement)}"


class Environment:
    """A Python environment: this interpreter's (prefix None), or the one at prefix, whose python is executable."""

    def __init__(self, prefix: Path | None = None, executable: str | None = None) -> None:
        self.here = prefix is None
        self.prefix = Path(sys.prefix if prefix is None else prefix)
        self.python = executable or (sys.executable if self.here else str(self.prefix / "bin" / "python"))
        self.site = sorted(self.prefix.glob("lib/python3*/site-packages"))

    def distribution(self) -> importlib.metadata.Distribution | None:
        """fmtui's installed metadata; None when fmtui runs from a source tree without being installed."""
        if self.here:
            try:
                return importlib.metadata.distribution("fmtui")
            except importlib.metadata.PackageNotFoundError:
                return None
        return next(iter(importlib.metadata.distributions(name="fmtui", path=[str(p) for p in self.site])), None)

    def installer(self) -> str:
        """The tool that installed fmtui, from its INSTALLER file ("pip", "uv", ...; "" when unknown)."""
        dist = self.distribution()
        return ((dist.read_text("INSTALLER") if dist else None) or "").strip()

    def has_pip(self) -> bool:
        if self.here:
            return importlib.util.find_spec("pip") is not None
        return any((site / "pip").is_dir() for site in self.site)


def uv_tool_command(requirement: str, env: Environment) -> str:
    """`uv tool install` again from the same source with one more `--with`: uv replaces a tool whose
    requirements changed, and keeps only the `--with` packages given, so those of the receipt are repeated."""
    withs = [*_receipt_withs(env.prefix / UV_RECEIPT), requirement]
    args = [arg for w in dict.fromkeys(withs) for arg in ("--with", shlex.quote(w))]
    return " ".join(["uv tool install", *args, _source(env.distribution())])


def _receipt_withs(receipt: Path) -> list[str]:
    """The receipt's requirements other than fmtui itself (`--with` packages given at install), as typed."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the receipt's other packages cannot be read; the command still adds ours
        return []
    try:
        requirements = tomllib.loads(receipt.read_text())["tool"]["requirements"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return []
    return [
        r["name"] + r.get("specifier", "")
        for r in requirements
        if isinstance(r, dict) and isinstance(r.get("name"), str) and r["name"] != "fmtui"
    ]


def _source(dist: importlib.metadata.Distribution | None) -> str:
    """Where fmtui was installed from, as `uv tool install` takes it (PEP 610's direct_url.json): a folder
    (editable or not), a git URL, an archive's URL; `fmtui` when there is none (installed by name)."""
    try:
        direct = json.loads((dist.read_text("direct_url.json") if dist else None) or "{}")
    except ValueError:
        direct = {}
    url = direct.get("url") if isinstance(direct, dict) else None
    if not isinstance(url, str):
        return "fmtui"
    if isinstance(vcs := direct.get("vcs_info"), dict):
        rev = vcs.get("requested_revision")
        return shlex.quote(f"{vcs.get('vcs', 'git')}+{url}" + (f"@{rev}" if rev else ""))
    if url.startswith("file:"):
        path = shlex.quote(unquote(urlsplit(url).path))
        dir_info = direct.get("dir_info")
        return f"--editable {path}" if isinstance(dir_info, dict) and dir_info.get("editable") else path
    return shlex.quote(url)

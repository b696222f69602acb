"""The command that adds an optional package where fmtui is installed, for each way to install it: the
environments are laid out as pipx 1.18, uv 0.13 (`uv tool install`, `uv venv` + `uv pip`) and pip leave them
(the files below are theirs, trimmed), and the commands were run against such environments by hand."""

import json
import shlex
import sys
from pathlib import Path

import pytest

from fmtui.install_hint import install_command, missing_package

pytestmark = pytest.mark.engine

PIPX_METADATA = {  # what pipx writes at the environment's root (its other fields left out)
    "main_package": {"package": "fmtui", "package_or_url": "/src/fmtui", "pip_args": [], "suffix": ""},
    "injected_packages": {},
    "pipx_metadata_version": "0.12",
}

UV_RECEIPT = """\
[tool]
requirements = [
    { name = "fmtui", directory = "/src/fmtui" },
    { name = "six" },
    { name = "rich", specifier = ">=13" },
]
entrypoints = [
    { name = "fmtui", install-path = "/home/u/.local/bin/fmtui", from = "fmtui" },
]
"""


def environment(root: Path, installer: str, direct_url: dict | None = None, pip: bool = True) -> Path:
    """A venv at root with fmtui installed: its dist-info (INSTALLER, direct_url.json) and maybe pip."""
    site = root / "lib" / "python3.11" / "site-packages"
    dist = site / "fmtui-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.4\nName: fmtui\nVersion: 0.1.0\n")
    (dist / "INSTALLER").write_text(installer + "\n")
    if direct_url is not None:
        (dist / "direct_url.json").write_text(json.dumps(direct_url))
    if pip:
        (site / "pip").mkdir()
    return root


def test_pipx_injects_into_fmtuis_own_environment(tmp_path):
    env = environment(tmp_path / "pipx" / "venvs" / "fmtui", "uv", pip=False)  # pipx may install with uv
    (env / "pipx_metadata.json").write_text(json.dumps(PIPX_METADATA))
    assert install_command("tensorboardX", env) == "pipx inject fmtui tensorboardX"


@pytest.mark.parametrize(
    "direct_url,source",
    [
        ({"url": "file:///src/fm%20tui", "dir_info": {}}, "'/src/fm tui'"),
        ({"url": "file:///src/fmtui", "dir_info": {"editable": True}}, "--editable /src/fmtui"),
        (
            {"url": "https://example.org/fmtui.git", "vcs_info": {"vcs": "git", "requested_revision": "v0.1"}},
            "git+https://example.org/fmtui.git@v0.1",
        ),
        (None, "fmtui"),
    ],
)
def test_uv_tool_is_installed_again_from_its_source_with_its_packages_and_the_new_one(tmp_path, direct_url, source):
    """uv replaces a tool whose requirements changed and keeps only the --with packages given."""
    env = environment(tmp_path / "tools" / "fmtui", "uv", direct_url, pip=False)
    (env / "uv-receipt.toml").write_text(UV_RECEIPT)
    withs = "--with six --with 'rich>=13'" if sys.version_info >= (3, 11) else ""  # 3.10 has no TOML reader
    expected = " ".join(["uv tool install", withs, "--with 'optuna>=4'", source]).replace("  ", " ")
    assert install_command("optuna>=4", env) == expected


def test_a_venv_made_by_uv_without_pip_gets_uv_pip(tmp_path):
    env = environment(tmp_path / "venv", "uv", pip=False)
    python = str(env / "bin" / "python")
    assert install_command("tensorboardX", env) == f"uv pip install --python {python} tensorboardX"


@pytest.mark.parametrize("installer,pip", [("pip", True), ("uv", True), ("pip", False)])
def test_a_venv_with_pip_or_from_pip_gets_its_own_pythons_pip(tmp_path, installer, pip):
    env = environment(tmp_path / "my venv", installer, pip=pip)
    python = shlex.quote(str(env / "bin" / "python"))
    assert install_command("tensorboardX", env) == f"{python} -m pip install tensorboardX"


def test_this_interpreter_and_the_one_line_message():
    """The tests run from the source tree (fmtui not installed) in a venv with pip: this python's pip."""
    command = install_command("tensorboardX")
    assert command == f"{shlex.quote(sys.executable)} -m pip install tensorboardX"
    line = missing_package("optuna>=4", "fmtui tune")
    assert line == f"fmtui tune needs optuna, which is not installed here; add it with: {install_command('optuna>=4')}"
    assert "\n" not in line and "fmtui[" not in line

"""fmtui's own options (--data-dir, --runs-dir, --no-download, --debug, --no-ui) mean the same before a command's
name and after it, for every command in click's command tree (a new command that forgets them fails here)."""

import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from test_cli import fmtui

from fmtui import cli
from fmtui.cli import SHARED_OPTIONS, Common

pytestmark = pytest.mark.cli

GIVEN = {"--data-dir": Path("d"), "--runs-dir": Path("r"), "--no-download": True, "--debug": True, "--no-ui": True}
"""Each shared option and what a command sees when it is given (folders as typed, flags as on)."""
NONE_GIVEN = {"--data-dir": None, "--runs-dir": None, "--no-download": False, "--debug": False, "--no-ui": False}
ENVIRONMENT = {"--no-download": "FMTUI_NO_DOWNLOAD", "--debug": "FMTUI_DEBUG"}
WITHOUT_JSON = {
    "watch": "it opens the dashboard",
    "export": "it writes files; its lines name them",
}


def commands() -> list[str]:
    return sorted(cli.cli.commands)


def required_args(command: click.Command, folder: Path) -> list[str]:
    """The least a command needs to run: a folder for each required option and argument."""
    options = [arg for p in command.params if p.required and isinstance(p, click.Option) for arg in (p.opts[0], folder)]
    return [*map(str, options), *[str(folder) for p in command.params if p.required and isinstance(p, click.Argument)]]


def seen_by(name: str, args: list[str], folder: Path, monkeypatch) -> dict:
    """Run `fmtui ARGS` with the command's body replaced by one that records what fmtui's options say to it:
    its own parameter when given, else fmtui's (Common), and the environment for the flags."""
    seen: dict = {}

    def record(**params):
        shared = click.get_current_context().find_object(Common)
        seen["--data-dir"] = params.get("data_dir") or shared.data_dir
        seen["--runs-dir"] = (params.get("runs_dir") if name != "runs" else params["runs_dir"]) or shared.runs_dir
        seen["--no-ui"] = bool(params.get("no_ui") or shared.no_ui)
        seen.update({flag: os.environ.get(var) == "1" for flag, var in ENVIRONMENT.items()})

    for var in ENVIRONMENT.values():  # recorded first, so that what the CLI sets is undone after the test
        monkeypatch.setenv(var, "0")
        monkeypatch.delenv(var)
    monkeypatch.setattr(cli.cli.commands[name], "callback", record)
    args = [*args, *required_args(cli.cli.commands[name], folder)]
    result = CliRunner().invoke(cli.cli, args, catch_exceptions=False)
    assert result.exit_code == 0, f"fmtui {' '.join(args)}: {result.output}"
    return seen


@pytest.mark.parametrize("name", commands())
def test_every_command_takes_fmtuis_own_options_before_and_after_its_name(name, tmp_path, monkeypatch):
    assert seen_by(name, [name], tmp_path, monkeypatch) == NONE_GIVEN
    for flag, value in GIVEN.items():
        typed = [flag] if value is True else [flag, str(value)]
        expected = {**NONE_GIVEN, flag: value}
        assert seen_by(name, [*typed, name], tmp_path, monkeypatch) == expected, f"fmtui {flag} {name}"
        assert seen_by(name, [name, *typed], tmp_path, monkeypatch) == expected, f"fmtui {name} {flag}"


@pytest.mark.parametrize("name", commands())
def test_every_command_that_prints_results_has_json(name):
    options = {opt for p in cli.cli.commands[name].params for opt in p.opts}
    assert ("--json" in options) != (name in WITHOUT_JSON), f"{name}: --json, or a reason in WITHOUT_JSON"


def test_shared_options_after_the_name_are_listed_where_the_command_uses_them():
    def listed(name: str) -> set[str]:
        options = [p for p in cli.cli.commands[name].params if isinstance(p, click.Option) and not p.hidden]
        return {o for p in options for o in p.opts if o in SHARED_OPTIONS}

    assert listed("lr-find") == {"--data-dir", "--runs-dir", "--no-download", "--debug"}
    assert listed("runs") == {"--runs-dir", "--debug"} and listed("export") == {"--debug"}


def test_lr_find_writes_its_curve_into_the_runs_dir_given_after_its_name(tiny_data, tmp_path, monkeypatch):
    """The reported case: `fmtui lr-find --runs-dir X` was refused ("Did you mean '--data-dir'?")."""
    monkeypatch.chdir(tmp_path)
    search = ["--steps", 60, "--batch-size", 32, "--device", "cpu", "--data-dir", tiny_data]
    result = fmtui("lr-find", "--runs-dir", tmp_path / "elsewhere", *search)
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "elsewhere" / "lr-find").iterdir())) == 1 and not (tmp_path / "runs").exists()

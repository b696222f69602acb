"""The fault suite for input and output: what an adversary broke (issue 10) and must stay fixed.

Unicode digits and edge values, degenerate and hostile dataset files, --out and runs folders that cannot be
written, a sweep with a failing run, resources that cannot fit, a closed or broken stdout, and Ctrl+C at the
earliest moments. Each case must end in one clear line, the right exit code, no traceback and nothing lost.
Tests carry their own tier marker (engine, cli or app), so `pytest -m cli` and friends still pick by tier.
"""

from __future__ import annotations

import pytest
from test_cli import fmtui, train_tiny

engine, cli, app = pytest.mark.engine, pytest.mark.cli, pytest.mark.app


def one_line_error(result, code: int = 2) -> str:
    """The error line of a command that failed as bad input must: exit code, one line, no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("Error: ")
    return result.stderr.strip()


# --- 8. Unicode digits: ASCII only, in every numeric option ----------------------------------------------

UNICODE_DIGITS = [
    (["--hidden", "²"], "'²' is not a positive integer"),
    (["--hidden", "2,³"], "'³' is not a positive integer"),
    (["--hidden", "٢٥٦"], "'٢٥٦' is not a positive integer"),
    (["--batch-size", "１２８"], "'１２８' is not an integer"),
    (["--epochs", "٢"], "'٢' is not an integer"),
    (["--lr", "０.１"], "'０.１' is not a number"),  # float('０.１') is 0.1 in Python
    (["--val-split", "٠.١"], "'٠.١' is not a number"),
]


@cli
@pytest.mark.parametrize("args,needle", UNICODE_DIGITS, ids=lambda v: v if isinstance(v, str) else v[0])
def test_unicode_digits_are_refused_in_one_line(tiny_data, args, needle):
    line = one_line_error(train_tiny(tiny_data, *args))
    assert needle in line and "only the digits 0-9 count" in line


@cli
@pytest.mark.parametrize(
    "args", [["--hidden", "256;2,³"], ["--lr", "0.1,１２８"], ["--batch-size", "64", "--seed", "١"]]
)
def test_unicode_digits_in_a_sweep_are_refused_before_anything_is_made(tiny_data, tmp_path, args):
    result = fmtui("--no-ui", "sweep", "--data-dir", tiny_data, "--out", tmp_path / "s", *args)
    assert "only the digits 0-9 count" in one_line_error(result)
    assert not (tmp_path / "s").exists()


@app
def test_the_dashboard_form_shows_a_field_error_for_unicode_digits():
    import asyncio

    from textual.events import Paste
    from textual.widgets import Button, Input, Static

    from fmtui.app import make_app

    async def scenario() -> None:
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            hidden = app.query_one("#f-hidden", Input)
            hidden.focus()
            hidden.value = ""
            hidden.post_message(Paste("2,³"))  # as a terminal delivers a paste
            await pilot.pause()
            assert hidden.value == "2,³"
            note = str(app.query_one("#note-hidden", Static).render())
            assert "'³' is not a positive integer" in note
            assert app.query_one("#start", Button).disabled and app.form.config is None
            await pilot.press("end", "backspace", "5")
            await pilot.pause()
            assert (
                hidden.value == "2,5"
                and app.form.config.hidden == (2, 5)
                and not app.query_one("#start", Button).disabled
            )

    asyncio.run(scenario())


# --- 9 and 13. Edge values and how limits are printed ------------------------------------------------------


@cli
@pytest.mark.parametrize(
    "args,line",
    [
        (["--batch-size", "9999999"], "must be <= 1048576, got 9999999"),
        (["--seed", "99999999999999999999"], "must be <= 9223372036854775807, got 99999999999999999999"),
        (["--weight-decay", "1e39"], "must be <= 1, got 1e39"),
        (["--val-split", "0.95"], "must be <= 0.9, got 0.95"),
    ],
)
def test_limits_are_printed_as_users_type_them(tiny_data, args, line):
    assert line in one_line_error(train_tiny(tiny_data, *args))


@cli
def test_a_sweep_with_an_absurd_weight_decay_is_refused_up_front(tiny_data, tmp_path):
    result = fmtui("--no-ui", "sweep", "--data-dir", tiny_data, "--weight-decay", "0,1e39", "--out", tmp_path / "s")
    assert "--weight-decay" in one_line_error(result) and not (tmp_path / "s").exists()

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


# --- 9. Degenerate and hostile dataset files ----------------------------------------------------------------


def write_images(folder, name: str, header: bytes, payload: bytes = b"", members: int = 0) -> None:
    """Replace one images file with an IDX header and payload, followed by `members` gzip members of 1 MiB of
    zeros each (a multi-member gzip file decompresses to their concatenation: a cheap gzip bomb)."""
    import gzip

    zeros = gzip.compress(bytes(1 << 20))
    (folder / name).write_bytes(gzip.compress(header + payload) + zeros * members)


def idx_header(*dims: int) -> bytes:
    import struct

    return bytes([0, 0, 0x08, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)


@cli
@pytest.mark.parametrize(
    "name,dims,labels",
    [
        ("train-images-idx3-ubyte.gz", (0, 28, 28), "train-labels-idx1-ubyte.gz"),  # 0 images
        ("t10k-images-idx3-ubyte.gz", (200, 0, 0), None),  # images of 0x0 pixels
        ("t10k-images-idx3-ubyte.gz", (200, 28, 0), None),
    ],
)
def test_an_idx_file_without_pixels_is_a_data_error_naming_the_file(tiny_data, name, dims, labels):
    import gzip

    write_images(tiny_data, name, idx_header(*dims))
    if labels:  # as many labels as images, so that only the emptiness is wrong
        (tiny_data / labels).write_bytes(gzip.compress(idx_header(0)))
    line = one_line_error(train_tiny(tiny_data))
    assert f"{tiny_data / name} holds no pixels: shape {dims}" in line


@engine
def test_a_gzip_bomb_is_never_decompressed_beyond_what_its_header_announces(tiny_data):
    import tracemalloc

    from conftest import synthetic_split

    from fmtui.data import DataError, load_dataset

    images, _ = synthetic_split(600, 0)
    name = "train-images-idx3-ubyte.gz"
    write_images(tiny_data, name, idx_header(600, 28, 28), images.tobytes(), members=256)  # + 256 MiB of zeros
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as info:
            load_dataset("fashion-mnist", tiny_data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(info.value).startswith(f"{tiny_data / name} is longer than its header says")
    assert peak < 32 << 20, f"{peak:,} bytes allocated while reading a 256 MiB gzip bomb"


@cli
def test_a_header_that_claims_gigabytes_is_refused_before_reading(tiny_data):
    name = "train-images-idx3-ubyte.gz"
    write_images(tiny_data, name, idx_header(4_000_000_000, 28, 28), members=4)
    line = one_line_error(train_tiny(tiny_data))
    assert f"{tiny_data / name}: its IDX header claims shape (4000000000, 28, 28)" in line


@cli
def test_a_truncated_file_is_a_data_error_naming_the_file(tiny_data):
    name = "t10k-labels-idx1-ubyte.gz"
    raw = (tiny_data / name).read_bytes()
    (tiny_data / name).write_bytes(raw[: len(raw) // 2])
    assert f"{tiny_data / name} is truncated" in one_line_error(train_tiny(tiny_data))

"""The suite's own set-up (tests/conftest.py): the real data is found where the app finds it, CI turns a missing
dataset into a failure, and the signals the live-run tests send are not ignored by the suite's processes."""

from __future__ import annotations

import signal

import pytest
from conftest import in_ci, real_data_dir, write_idx_dataset

from fmtui.datafiles import locate

pytestmark = pytest.mark.engine


def test_real_data_is_found_where_the_app_finds_it(tmp_path, monkeypatch):
    """FMTUI_DATA_DIR may name the folder of dataset folders or the dataset's own folder, as for the app."""
    root = tmp_path / "data"
    fashion = write_idx_dataset(root / "fashion-mnist", n_train=20, n_test=10)
    for given in (root, fashion):
        monkeypatch.setenv("FMTUI_DATA_DIR", str(given))
        assert real_data_dir()[0] == given and locate("fashion-mnist").found == fashion  # the app's own lookup
        assert real_data_dir("mnist")[0] is None  # the folders hold Fashion-MNIST alone
    write_idx_dataset(root / "mnist", n_train=20, n_test=10)
    monkeypatch.setenv("FMTUI_DATA_DIR", str(root))
    assert real_data_dir("mnist")[0] == root
    monkeypatch.setenv("FMTUI_DATA_DIR", str(tmp_path / "elsewhere"))  # set: the only place looked at
    assert real_data_dir() == (None, f"$FMTUI_DATA_DIR={tmp_path / 'elsewhere'}")


@pytest.mark.parametrize(("value", "ci"), [("", False), ("0", False), ("false", False), ("true", True), ("1", True)])
def test_ci_is_read_as_ci_services_set_it(monkeypatch, value, ci):
    monkeypatch.setenv("CI", value)
    assert in_ci() is ci


def test_the_signals_the_live_run_tests_send_are_not_ignored_here():
    """A shell without job control starts a background job with SIGINT and SIGQUIT ignored, and fmtui keeps an
    ignored signal ignored (nohup): conftest puts them back, or `pytest &` would hang in the signal tests."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGQUIT) == signal.SIG_DFL

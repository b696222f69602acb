"""The small things a new user found (issue 22): class names cut to 5 letters, `to filter` in the footer, `s start`
offered while Start is disabled, export only under ?, and `w` on a finished run saying `watching pid N`."""

from __future__ import annotations

import asyncio
import json
import os
import socket

import pytest
from pilot import run, text_of, wait_for
from runfolders import write_run
from test_data_errors_panes import Host, fake_results, show
from textual.app import ComposeResult
from textual.widgets import Button, DataTable, Input

from fmtui.app import make_app
from fmtui.config import RunConfig
from fmtui.data import load_dataset
from fmtui.widgets.errors_pane import ErrorsPane
from fmtui.widgets.footer import KeysFooter

pytestmark = pytest.mark.app

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.fixture
def fashion(tiny_data):
    """The tiny split under Fashion-MNIST's class names."""
    ds = load_dataset("fashion-mnist", tiny_data)
    ds.classes = list(FASHION)
    return ds


SHORT = {"T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle"}
"""The names at 80 columns: whole, or their first word whole (T-shirt/top, Ankle boot); never Sneak or T-shi."""


@pytest.mark.parametrize("size,names", [((80, 24), SHORT), ((120, 40), set(FASHION)), ((200, 60), set(FASHION))])
def test_the_errors_list_cuts_class_names_only_where_it_must(fashion, size, names):
    app = Host(ErrorsPane())

    async def interact(pilot):
        pane = app.pane
        show(pane, fake_results(fashion.y_test), fashion)
        await pilot.pause()
        table = pane.query_one("#err-list", DataTable)
        shown = {str(table.get_row_at(r)[c]) for r in range(table.row_count) for c in (1, 2)}
        assert shown <= names and len(shown) >= 8  # (the mistakes of a tiny split name most classes)
        assert table.virtual_size.width <= table.size.width  # and they fit

    run(app, interact, size=size)


def footer_text(app) -> str:
    """The footer's keys and labels as drawn: side by side where they touch, else a space apart."""
    parts = sorted(app.screen.query_one(KeysFooter).query("FooterKey, FooterLabel"), key=lambda w: w.region.x)
    text, right = "", None
    for part in parts:
        text += ("" if part.region.x == right else " ") + str(part.render()).strip()
        right = part.region.right
    return text.strip()


class KeysHost(Host):
    def compose(self) -> ComposeResult:
        yield self.pane
        yield KeysFooter(compact=True)


def test_the_errors_filter_keys_read_t_o_not_the_word_to(fashion):
    app = KeysHost(ErrorsPane())

    async def interact(pilot):
        show(app.pane, fake_results(fashion.y_test), fashion)
        await wait_for(pilot, lambda: "t/o filter" in footer_text(app))  # (the footer recomposes when keys change)
        assert "to filter" not in footer_text(app)
        await pilot.press("t")  # a filter: a (all samples) joins the group
        await wait_for(pilot, lambda: "t/o/a filter" in footer_text(app))

    run(app, interact, size=(80, 24))


def test_the_runs_footer_offers_export_at_80_columns(tmp_path):
    write_run(tmp_path / "runs" / "r1")
    app = make_app(runs_dir=tmp_path / "runs")

    async def main():
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("5")
            await wait_for(pilot, lambda: app.focused is not None and app.focused.id == "runs-table")
            await wait_for(pilot, lambda: all(k in footer_text(app) for k in ("e export", "f filter", "h hparams")))
            keys = app.screen.query_one(KeysFooter).query("FooterKey")
            assert all(k.region.right <= 80 for k in keys) and len({k.region.y for k in keys}) == 1  # all in view

    asyncio.run(main())


def test_s_start_is_offered_only_while_start_can_start(tmp_path):
    app = make_app(RunConfig())

    async def main():
        async with app.run_test(size=(100, 32)) as pilot:
            await wait_for(pilot, lambda: not app.query_one("#start", Button).disabled)
            await wait_for(pilot, lambda: "s start" in footer_text(app))  # (the footer recomposes: wait)
            app.query_one("#f-lr", Input).value = "0"  # no learning rate: Start is disabled
            await wait_for(pilot, lambda: app.query_one("#start", Button).disabled)
            await wait_for(pilot, lambda: footer_text(app) and "s start" not in footer_text(app))
            assert " s " not in f" {footer_text(app)} "
            app.query_one("#f-lr", Input).value = "0.01"
            await wait_for(pilot, lambda: not app.query_one("#start", Button).disabled)
            await wait_for(pilot, lambda: "s start" in footer_text(app))

    asyncio.run(main())


def test_w_on_a_finished_run_shows_it_without_naming_its_long_gone_process(tmp_path):
    """A sweep's run keeps its live.json (pid, host) after it ends: w shows it as it went, watching nobody."""
    runs = tmp_path / "runs"
    path = write_run(runs / "sweep-1" / "01-run", epochs=2)
    live = {"status": "completed", "heartbeat": 1.0, "pid": os.getpid() + 100000, "host": socket.gethostname()}
    (path / "live.json").write_text(json.dumps(live))
    app = make_app(runs_dir=runs)

    async def main():
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.press("5")
            await wait_for(pilot, lambda: app.focused is not None and app.focused.id == "runs-table")
            await pilot.press("w")
            await wait_for(pilot, lambda: app.train_pane.phase == "finished")
            state = text_of(app, "#train-state")
            assert "watching" not in state and "pid" not in state
            assert app.activity.watched is None and not app.activity.busy

    asyncio.run(main())

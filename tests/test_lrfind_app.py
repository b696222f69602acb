"""The learning-rate finder in the dashboard: `l` in the Model pane runs it in a worker, its plot and suggestion
appear under the form, `a` copies the suggestion into the learning-rate field, `x` stops it."""

from __future__ import annotations

import re
import time

import pytest
from pilot import sync, text_of, until_stopped, wait_for
from test_snapshots import wait_for_params
from textual.app import App
from textual.widgets import Input

from fmtui import lrfind
from fmtui.app import make_app
from fmtui.config import RunConfig
from fmtui.lrfind import Finished, Progress, lr_at
from fmtui.messages import LrFindFinished
from fmtui.widgets.lr_finder import LrFinder, LrPlot, changed_options, decade_label

pytestmark = pytest.mark.app

SIZE = (100, 32)


def footer_keys(app) -> set[str]:
    """The keys the footer offers now (the bindings active for the focused widget and the app)."""
    return {key for key, active in app.screen.active_bindings.items() if active.binding.show and active.enabled}


async def form_has_its_keys(pilot) -> None:
    """Wait until the Model pane's form holds the focus (it takes it a refresh after its pane is shown: under
    load, later than one pause), so that `l` and `a` reach it."""
    await wait_for(pilot, lambda: "l" in footer_keys(pilot.app))


def test_decades_read_as_people_write_them():
    assert [decade_label(k) for k in (-7, -4, -3, -1, 0, 1, 4)] == ["1e-7", "1e-4", "0.001", "0.1", "1", "10", "1e4"]


@sync
async def test_l_runs_the_finder_and_a_applies_its_suggestion(tiny_data, tmp_path):
    app = make_app(RunConfig(data_dir=str(tiny_data), batch_size=32, device="cpu"), runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await form_has_its_keys(pilot)
        panel = app.query_one(LrFinder)
        assert not panel.display and "a" not in footer_keys(app)
        await pilot.press("l")
        await wait_for(pilot, lambda: panel.display)
        assert app.activity.busy or panel.suggested is not None  # one job at a time: Start is off while it runs
        await wait_for(pilot, lambda: not app.activity.busy)
        await pilot.pause()
        suggested = panel.suggested
        assert suggested is not None and 1e-4 < suggested < 10
        status = text_of(app, "#lr-status")
        assert status.startswith(f"Suggested lr {suggested:.2g} (steepest fall: red line) · min/10 ")
        plot = app.query_one(LrPlot)
        assert len(plot.lrs) == len(plot.smoothed) > 20 and plot.suggested == suggested
        assert "a" in footer_keys(app)
        await pilot.press("a")
        assert app.query_one("#f-lr", Input).value == f"{suggested:.2g}"
        await wait_for(pilot, lambda: app.valid_config.lr == float(f"{suggested:.2g}"))
        assert not (tmp_path / "runs").exists()  # the finder writes no run


def endless(cfg, *, should_stop, progress_interval, **kw):
    """A finder that reports one step, waits until it is stopped, then ends as stopped (as lr_find does). One
    progress message, not one every 20 ms: a busy machine's app would never catch up with them (see pilot.until_stopped)."""
    lrs = [lr_at(0, 300)]
    yield Progress(1, 300, lrs, [2.3], [2.3])
    while not should_stop():
        time.sleep(0.02)  # the worker's cancellation is a flag to poll: nothing posted meanwhile
    yield Finished("stopped", "stopped after 1 step", lrs, [2.3], [2.3], None, None, 1)


@sync
async def test_x_stops_the_finder(tiny_data, monkeypatch):
    monkeypatch.setattr(lrfind, "lr_find", endless)
    app = make_app(RunConfig(data_dir=str(tiny_data)))
    async with app.run_test(size=SIZE) as pilot:
        await form_has_its_keys(pilot)
        await pilot.press("l")
        await wait_for(pilot, lambda: text_of(app, "#lr-status").startswith("lr finder: step"))
        await pilot.press("x")
        await wait_for(pilot, lambda: not app.activity.busy)
        await pilot.pause()
        assert text_of(app, "#lr-status") == "Stopped · No suggestion: the smoothed loss never fell"
        assert app.query_one(LrFinder).suggested is None and "a" not in footer_keys(app)


@sync
async def test_the_finder_waits_for_training_and_for_a_valid_form(tiny_data):
    app = make_app(RunConfig(data_dir=str(tiny_data)), trainer=until_stopped)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        app.query_one("#f-lr", Input).value = "0"
        await wait_for(pilot, lambda: app.valid_config is None)  # the form is read once typing pauses
        await form_has_its_keys(pilot)
        await pilot.press("l")
        await pilot.pause()
        assert not app.activity.busy and not app.query_one(LrFinder).display
        assert [n.title for n in app._notifications] == ["fix the Model pane first"]
        app.query_one("#f-lr", Input).value = "0.01"
        await wait_for(pilot, lambda: app.valid_config is not None)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.train_pane.phase == "running")
        await pilot.press("2")
        await form_has_its_keys(pilot)
        await pilot.press("l")
        await pilot.pause()
        assert not app.query_one(LrFinder).display
        assert "cannot run the lr finder" in [n.title for n in app._notifications]
        await pilot.press("x")
        await wait_for(pilot, lambda: not app.activity.busy)


def made_up_finish() -> Finished:
    """A finished search with a smooth made-up curve (the picture must not depend on the machine)."""
    lrs = [lr_at(i, 300) for i in range(260)]
    smoothed = [0.9 + 1.4 / (1 + 10 ** (2 * (i / 37.4 - 5.4))) + max(0.0, i / 37.4 - 6.3) ** 2 for i in range(260)]
    return Finished("completed", "the smoothed loss blew up at lr 0.9 (step 260); 260 steps in 1.2s", lrs, smoothed,
                    smoothed, 0.042, 0.21, 1.2)  # fmt: skip


@sync
async def test_the_finder_panel_shows_a_finished_search(tiny_data):
    app = make_app(RunConfig(data_dir=str(tiny_data)))
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.query_one(LrFinder)
        panel.show_starting(app.form.config)  # measured on the form's config: current
        done = made_up_finish()
        panel.show_progress(Progress(260, 300, done.lrs, done.losses, done.smoothed))
        app.post_message(LrFindFinished(done))
        await pilot.pause()
        assert text_of(app, "#lr-status") == "Suggested lr 0.042 (steepest fall: red line) · min/10 0.021 · a: apply"
        assert panel.region.height >= 12 and app.query_one(LrPlot).chart_title.endswith("260 steps, 1.2s")


def test_model_pane_with_the_finder_at_80x24(snap_compare, tiny_data, monkeypatch):
    """The form above, the finder's curve and suggestion below, the footer offering `a`: at the smallest size.
    Drawn with conftest's colour environment (TERM=xterm): under TERM=xterm-256color the same screen draws other
    colours, which made this snapshot fail in one terminal and pass in another."""

    async def finished_search(pilot) -> None:
        await wait_for_params(pilot)
        app = pilot.app
        app.query_one(LrFinder).show_starting(app.form.config)
        app.post_message(LrFindFinished(made_up_finish()))
        await pilot.pause()
        app.query_one(LrPlot).replot()
        await pilot.pause()

    monkeypatch.chdir(tiny_data.parent)  # a relative name: the picture must not name a temporary folder
    app = make_app(RunConfig(data_dir=tiny_data.name))
    assert snap_compare(app, terminal_size=(80, 24), run_before=finished_search)


@sync
async def test_a_log_scaled_plot_renders_again_the_same():
    """plotext takes the log of a log axis's data in place: a second render (a resize) must not take it twice."""

    class Host(App):
        def compose(self):
            yield LrPlot("loss vs lr", id="plot")

    app = Host()
    async with app.run_test(size=(80, 16)) as pilot:
        plot = app.query_one(LrPlot)
        done = made_up_finish()
        plot.show(done.lrs, done.smoothed, done.suggested_lr)
        plot.replot()
        await pilot.pause()
        first, second = str(plot.render()), str(plot.render())
        assert first == second and "1e-7" in first and "0.01" in first


@sync
async def test_the_loss_axis_has_round_ticks_linear_or_in_decades():
    """The y axis uses the charts' round ticks (fmtui.ticks): 0.5 apart for a curve around 1 to 2.3, whole decades
    for a raw-pixel curve that starts thousands of times above its minimum (not plotext's 2.36 2.14 1.92 ...)."""

    class Host(App):
        def compose(self):
            yield LrPlot("loss vs lr", id="plot")

    done = made_up_finish()
    raw = [2000 * 0.95**i + 0.5 for i in range(200)]
    for ys, labels in (
        (done.smoothed, ["2.5", "2.0", "1.5", "1.0", "0.5"]),
        (raw, ["10k", "1k", "100", "10", "1", "0.1"]),
    ):
        async with Host().run_test(size=(80, 16)) as pilot:
            plot = pilot.app.query_one(LrPlot)
            plot.show(done.lrs[: len(ys)], ys, done.suggested_lr)
            plot.replot()
            await pilot.pause()
            assert re.findall(r"^ *(\S+)┤", str(plot.render()), re.M) == labels


@sync
async def test_leaving_a_field_with_escape_keeps_the_model_panes_keys(tiny_data):
    """esc leaves the field for the form itself: l (and the footer's l lr finder) still work."""
    app = make_app(RunConfig(data_dir=str(tiny_data)))
    async with app.run_test(size=SIZE) as pilot:
        app.query_one("#f-lr", Input).focus()
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.focused, Input) and "l" in footer_keys(app)


def visible_fields(app) -> int:
    """How many of the form's field rows are on screen, whole, in the form's scrolling region."""
    box = app.query_one("#form-fields").region
    return sum(1 for row in app.query(".field-row") if row.region.height and box.contains_region(row.region))


@sync
async def test_a_suggestion_goes_stale_when_the_form_leaves_its_config(tiny_data):
    """The issue's story: `l` on softmax/z-score, then the lecture-MLP preset: the old suggestion is withdrawn (the
    footer drops `a`, and `a` applies nothing), the panel folds to one line naming what changed, and at 80x24 the
    form gets its fields back. Back on the measured config, the suggestion is current again."""
    cfg = RunConfig(data_dir=str(tiny_data), model="softmax", norm="zscore", batch_size=32, device="cpu")
    app = make_app(cfg)
    async with app.run_test(size=(80, 24)) as pilot:
        await form_has_its_keys(pilot)
        panel = app.query_one(LrFinder)
        alone = visible_fields(app)
        await pilot.press("l")
        await wait_for(pilot, lambda: panel.display and not app.activity.busy)
        await pilot.pause()
        suggested = panel.applicable
        assert suggested is not None and "a" in footer_keys(app)
        assert text_of(app, "#lr-status").startswith(f"Suggested lr {suggested:.2g}")
        squeezed = visible_fields(app)
        await pilot.press("p", "end", "enter")  # the preset list: its last item, the lecture's MLP
        await wait_for(pilot, lambda: app.form.config is not None and app.form.config.model == "mlp")
        await pilot.pause()
        assert app.form.config.lr == 0.01 and panel.applicable is None and panel.suggested == suggested
        assert "a" not in footer_keys(app)
        status = text_of(app, "#lr-status")
        assert status.startswith(f"lr finder: lr {suggested:.2g} was measured on softmax · zscore · sgd · batch 32;")
        assert "model" in status and "normalization" in status and status.endswith("l measures again")
        assert panel.has_class("-stale") and not app.query_one(LrPlot).display
        app.form.action_apply_lr()  # the key is gone from the footer; the action itself refuses too
        await pilot.pause()
        assert app.query_one("#f-lr", Input).value == "0.01"
        assert visible_fields(app) > squeezed and visible_fields(app) >= alone - 2, (alone, squeezed)
        app.form.set_config(cfg)  # back on the config the finder measured
        await pilot.pause()
        assert panel.applicable == suggested and "a" in footer_keys(app) and not panel.has_class("-stale")
        assert text_of(app, "#lr-status").startswith(f"Suggested lr {suggested:.2g}")


def test_every_option_the_curve_depends_on_makes_it_stale():
    base = RunConfig(model="softmax", norm="zscore")
    assert changed_options(base, base.replace(lr=3.0, epochs=9, schedule="cosine", device="cpu", threads=2)) == []
    for change, label in [
        (dict(model="mlp"), "model"),
        (dict(norm="none"), "normalization"),
        (dict(batch_size=128), "batch size"),
        (dict(optimizer="adam"), "optimizer"),
        (dict(dataset="mnist"), "dataset"),
        (dict(data_dir="elsewhere"), "data dir"),
        (dict(momentum=0.9), "momentum"),
        (dict(weight_decay=0.1), "weight decay"),
        (dict(seed=1), "seed"),
        (dict(val_split=0.1), "validation"),
    ]:
        assert changed_options(base, base.replace(**change)) == [label]

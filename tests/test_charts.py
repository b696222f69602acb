"""Charts and the weights view in the app: log scale, chance line, the per-step curve, ANSI themes, what a model learned."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from pilot import replay, sync, synthetic_run, wait_for
from textual.app import App, ComposeResult
from textual.widgets import Footer, TabbedContent
from textual.widgets._footer import FooterKey

from fmtui.app import make_app
from fmtui.config import RunConfig
from fmtui.events import BatchProgress, EpochEnd
from fmtui.weights import LearnedWeights, from_matrices
from fmtui.widgets import charts
from fmtui.widgets.charts import BatchLossChart, EpochChart, LegendPlace, ThrottledPlot, legend_place
from fmtui.widgets.errors_pane import ErrorsPane
from fmtui.widgets.weights_view import SHADES, WeightsView
from fmtui.workers import saved_weights

pytestmark = pytest.mark.app

SIZE = (120, 40)
LEGEND_ENTRY = re.compile(r"(⠒⠒ train|▀▀ test)")
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.fixture(autouse=True)
def _colours(monkeypatch):
    """Same colours on every machine: the app's console detects them from the environment."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLORTERM", "truecolor")


def epoch(n: int, train_loss: float, test_loss: float, train_acc: float, test_acc: float) -> EpochEnd:
    return EpochEnd(n, 3, train_loss, train_acc, test_loss, test_acc, 1.0, 0.1, 1000.0, 0.01)


def progress(points: list[tuple[int, float]], every: int = 1) -> BatchProgress:
    step = points[-1][0]
    return BatchProgress(1, 3, step, 59, points[-1][1], 10.0, 1000.0, 1.0, 9.0, step, 0, points, every)


def rows(chart: ThrottledPlot) -> list[str]:
    chart.replot()
    return str(chart.render()).splitlines()


async def started_train_pane(pilot):
    """The Train pane on screen, told that a 10-class run started."""
    await pilot.press("3")
    pane = pilot.app.train_pane
    pane.show_started(synthetic_run(RunConfig())[0].event, Path("run"))
    await pilot.pause()
    return pane


# --- the Train pane's charts ------------------------------------------------------------------------


@sync
async def test_an_exploding_loss_is_drawn_on_a_log_scale_and_l_toggles_it():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        pane = await started_train_pane(pilot)
        for n, (train, test) in enumerate([(1870.4, 902.7), (1.2, 0.9), (0.6, 0.5)], 1):  # spans three decades
            pane.show_epoch(epoch(n, train, test, 80.0, 81.0))
        pane.show_progress(progress([(1, 2.3), (2, 950.0), (3, 4.0), (4, 0.4)]))
        loss, batch = pane.query_one("#loss-chart", EpochChart), pane.query_one(BatchLossChart)
        assert "loss per epoch · log" in rows(loss)[0] and "train loss by step · log" in rows(batch)[0]
        assert any(row.lstrip().startswith("1k┤") for row in rows(loss))  # labelled with the values, compactly
        assert any("─chance 2.30─" in row for row in rows(loss))  # the loss of guessing, ln 10, drawn below
        await pilot.press("l")
        assert not loss.drawn_log and not batch.drawn_log and "log" not in rows(loss)[0]
        await pilot.press("l")
        assert loss.drawn_log and batch.drawn_log
        assert "l" in app.active_bindings and "a" in app.active_bindings  # in the footer


@sync
async def test_a_loss_within_two_decades_stays_linear_with_round_ticks():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        pane = await started_train_pane(pilot)
        for n, loss in enumerate([0.79, 0.52, 0.47], 1):
            pane.show_epoch(epoch(n, loss, loss + 0.05, 80.0, 81.0))
        chart = pane.query_one("#loss-chart", EpochChart)
        drawn = rows(chart)
        assert not chart.drawn_log and drawn[0].split() == ["loss", "per", "epoch", "·", "chance", "2.30"]
        labels = [row.split("┤")[0].strip() for row in drawn if "┤" in row]
        assert labels == ["0.9", "0.8", "0.7", "0.6", "0.5", "0.4"]  # round, evenly spaced, top to bottom
        x_labels = drawn[drawn.index(next(r for r in drawn if "└" in r)) + 1].split()
        assert x_labels == ["1", "2", "3"]  # whole epochs


def test_a_legend_goes_where_the_curves_are_not():
    canvas, limits, entries = (40, 10), ((0.0, 10.0), (0.0, 10.0)), [8, 7]
    rising, falling = ([0, 10], [0, 10]), ([0, 10], [10, 0])
    assert legend_place([rising], *limits, canvas, entries) == LegendPlace(top=True, left=True)
    assert legend_place([falling], *limits, canvas, entries) == LegendPlace(top=True, left=False)
    assert legend_place([rising, falling], *limits, canvas, entries).across  # every corner crossed: one row
    # at 80x24 a chart has three rows: a flat test curve through the middle one, a rising train curve
    flat, train = ([1, 5], [8.0, 8.0]), ([1, 2, 3, 5], [7.0, 8.0, 9.0, 9.0])
    assert legend_place([flat, train], (0.9, 5.1), (6.5, 9.5), (33, 3), [8, 7]) == LegendPlace(False, False, True)
    # after epoch 1 the axis ends on the train loss: a point on the top limit is in the top row, not off it
    assert legend_place([([1], [0.6]), ([1], [0.5])], (0.9, 2.1), (0.5, 0.6), (33, 5), [8, 7]).left is False
    # three entries on a two-row canvas: side by side, never a column running off the bottom; nowhere: none
    assert legend_place([rising], *limits, (40, 2), [8, 6, 7]).across
    assert legend_place([rising], *limits, (12, 2), [8, 6, 7]) is None


@sync
async def test_the_train_panes_legends_keep_off_their_curves_at_80x24(monkeypatch):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await started_train_pane(pilot)
        for n in range(1, 6):  # the lecture's MLP: accuracies rise, losses fall
            pane.show_epoch(epoch(n, 0.8 - 0.08 * n, 0.6 - 0.03 * n, 74 + 2.2 * n, 79 + 1.0 * n))
        for key in ("#loss-chart", "#accuracy-chart"):
            chart = pane.query_one(key, EpochChart)
            drawn = rows(chart)
            with monkeypatch.context() as m:
                m.setattr(charts, "draw_legend", lambda *a, **kw: None)
                bare = rows(chart)  # the same chart without its legend
            entries = [(y, e.start(), e.end()) for y, row in enumerate(drawn) for e in LEGEND_ENTRY.finditer(row)]
            assert len(entries) == 2, drawn
            for y, start, end in entries:  # where the legend is, the chart without it has nothing
                assert not bare[y][start:end].strip(), (drawn, bare)


@sync
async def test_the_accuracy_axis_shows_chance_level_and_a_can_pin_it():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        pane = await started_train_pane(pilot)
        for n, acc in enumerate([9.828, 10.027, 9.91], 1):  # at chance: noise must look flat
            pane.show_epoch(epoch(n, 2.3, 2.3, acc, acc))
        chart = pane.query_one("#accuracy-chart", EpochChart)
        drawn = rows(chart)
        assert chart.chance == 10 and any("─chance 10%─" in row for row in drawn)  # a labelled line at 100/10
        labels = [float(m.group(1)) for m in (re.match(r"\s*([\d.]+)[┤├]", row) for row in drawn) if m]
        assert max(labels) - min(labels) >= 10  # not 9.828 to 10.027
        chart.clear()
        pane.show_epoch(epoch(1, 0.5, 0.5, 85.0, 84.0))
        pane.show_epoch(epoch(2, 0.4, 0.4, 87.0, 85.5))
        drawn = rows(chart)
        assert "chance 10%" in drawn[0] and not any("chance" in row for row in drawn[1:])  # far above: the title
        await pilot.press("a")
        drawn = rows(chart)
        assert chart.pinned and any("─chance 10%─" in row for row in drawn)
        assert {"0", "100"} <= {m.group(1) for m in (re.match(r"\s*([\d.]+)[┤├]", row) for row in drawn) if m}


@sync
async def test_the_step_chart_plots_the_engines_points_up_to_a_divergence():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        pane = await started_train_pane(pilot)
        pane.show_progress(progress([(5, 2.3), (10, 1.9), (15, 1.4)], every=5))
        pane.show_progress(progress([(20, 1.1), (25, float("nan"))], every=5))  # diverged at the last point
        chart = pane.query_one(BatchLossChart)
        assert chart.series.points()[0] == [5, 10, 15, 20, 25]
        drawn = rows(chart)
        assert "train loss by step · mean of 5" in drawn[0] and any("─chance 2.30" in row for row in drawn[1:])
        assert any(set(row) & set("⠁⠂⠄⡀⠈⠐⠠⢀⣀⠉⠒⠤") for row in drawn)  # the finite points are drawn
        assert drawn[-1].split() == ["loss", "step"]  # the axes are named


@sync
async def test_charts_draw_without_chance_level_when_the_classes_are_unknown():
    """A watched run's folder may not name its classes: no chance line then, and no crash (it raised on the
    first epoch, in the accuracy chart's label)."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        pane = pilot.app.train_pane
        started = synthetic_run(RunConfig())[0].event
        started.classes = []
        pane.show_started(started, Path("run"), "pid 4242 on another-box")
        pane.show_epoch(epoch(1, 0.5, 0.5, 80.0, 81.0))
        pane.show_epoch(epoch(2, 0.4, 0.4, 82.0, 83.0))
        for chart in pane.query(EpochChart):
            assert chart.chance is None and not any("chance" in row for row in rows(chart))


@sync
async def test_a_watched_runs_empty_step_chart_says_none_is_recorded_yet():
    """A watched run's step curve comes from its losses.jsonl: until it has a point (or for a folder written before
    there was one), the chart says so; a run trained here says nothing of the kind."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        pane = pilot.app.train_pane
        pane.show_started(synthetic_run(RunConfig())[0].event, Path("run"), "pid 4242 on gpu-box")
        chart = pane.query_one(BatchLossChart)
        assert "train loss by step · none recorded yet" in rows(chart)[0]
        pane.show_started(synthetic_run(RunConfig())[0].event, Path("run"))
        assert "recorded" not in rows(chart)[0]


@pytest.mark.parametrize("theme", ["ansi-dark", "ansi-light"])
@sync
async def test_charts_are_readable_under_ansi_themes(theme):
    """ANSI themes give no RGB colours: plotext's auto theme drew black text on a black canvas."""
    app = make_app(RunConfig(epochs=4), trainer=replay)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: app.train_pane.phase == "finished")
        if theme not in app.available_themes:
            pytest.skip(f"this Textual has no {theme} theme")
        app.theme = theme
        await pilot.pause()
        for chart in app.query(ThrottledPlot):
            chart.replot()
            text = chart.render()
            unreadable = [
                text.plain[s.start : s.end]
                for s in text.spans
                if not isinstance(s.style, str) and s.style.color is not None and s.style.color == s.style.bgcolor
            ]
            assert not unreadable, f"{chart.id}: drawn in its own background colour: {unreadable[:3]}"
            assert not [s for s in text.spans if not isinstance(s.style, str) and s.style.bgcolor is not None]


# --- the weights view -----------------------------------------------------------------------------


def templates(classes: int = 10, size: int = 28) -> np.ndarray:
    """Made-up class templates: a positive blob at a different place per class, a negative one opposite it."""
    yy, xx = np.mgrid[0:size, 0:size]
    out = []
    for k in range(classes):
        cy, cx = 6 + 16 * (k // 5), 4 + 5 * (k % 5)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)
        out.append(blob - 0.8 * blob[::-1, ::-1] - 0.1 * np.cos(xx / 4.0 + k))
    return np.stack(out).reshape(classes, -1).astype(np.float32)


def softmax_weights() -> LearnedWeights:
    return from_matrices([templates()], (1, 28, 28))


def mlp_weights() -> LearnedWeights:
    """12 first-layer units, a second layer that swaps units 3 and 5, and an output layer that favours second-layer
    units c and c + 2 for class c: through both, class 3's strongest units are 5, then 3."""
    units = np.concatenate([templates(), -templates(2)])
    swap = np.eye(12, dtype=np.float32)[[0, 1, 2, 5, 4, 3, 6, 7, 8, 9, 10, 11]]
    out = np.full((10, 12), -0.1, dtype=np.float32)
    for c in range(10):
        out[c, c], out[c, c + 2] = 0.9, 0.5
    return from_matrices([units, swap, out], (1, 28, 28))


class Host(App):
    """The Errors pane alone, showing these weights in its weights view."""

    def __init__(self, weights: LearnedWeights | None) -> None:
        super().__init__()
        self.weights = weights

    def compose(self) -> ComposeResult:
        yield ErrorsPane()
        yield Footer()

    def on_mount(self) -> None:
        pane = self.query_one(ErrorsPane)
        pane.set_test_split(None, CLASSES)
        pane.show_weights(self.weights)
        pane.focus()


def test_an_mlps_units_for_a_class_come_through_the_later_layers():
    w = mlp_weights()
    assert not w.per_class and w.classes == 10 and w.inputs.shape == (12, 784)
    assert [u for u, _ in w.top_units(3, 2)] == [5, 3] and w.top_units(3, 1)[0][1] == pytest.approx(0.9)
    assert [u for u, _ in w.top_units(1, 2)] == [1, 5]
    assert softmax_weights().per_class and softmax_weights().top_units(4, 3) == [(4, 1.0)]


def test_weights_view_snapshot_softmax_templates(snap_compare):
    async def weights(pilot):
        await pilot.press("w")

    assert snap_compare(Host(softmax_weights()), terminal_size=(100, 32), run_before=weights)


def test_weights_view_snapshot_mlp_units_at_80x24_without_colour(snap_compare, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")

    async def weights(pilot):
        await pilot.press("w", "c")  # class 1: its units

    assert snap_compare(Host(mlp_weights()), terminal_size=(80, 24), run_before=weights)


@sync
async def test_w_switches_between_mistakes_and_weights_and_c_picks_the_class():
    app = Host(mlp_weights())
    async with app.run_test(size=(100, 32)) as pilot:
        view = app.query_one(WeightsView)
        keys = lambda: {b.binding.key for b in app.active_bindings.values()}  # noqa: E731
        assert not view.display and {"t", "w"} <= keys()
        await pilot.press("w")
        assert view.display and view.has_focus and "c" in keys() and "t" not in keys()  # mistake keys hidden
        assert "class 0 T-shirt/top" in str(view.render())
        await pilot.press("c")
        assert view.chosen == 1 and "class 1 Trouser" in str(view.render())
        await pilot.press("C", "C")
        assert view.chosen == 9
        await pilot.press("w")
        assert not view.display and "t" in keys()


@sync
async def test_each_epochs_weights_leave_the_footer_alone_until_c_comes_or_goes():
    """Every rebuild of the footer's keys cost memory (fmtui.widgets.footer): new weights of the same kind, once an
    epoch, must not rebuild it; weights that bring c (an MLP's) must."""
    app = Host(softmax_weights())
    async with app.run_test(size=(100, 32)) as pilot:
        pane = app.query_one(ErrorsPane)
        await pilot.press("w")
        keys = list(app.query(FooterKey))
        for _ in range(5):
            pane.show_weights(softmax_weights())
            await pilot.pause()
        assert keys and list(app.query(FooterKey)) == keys  # the same widgets: not rebuilt
        pane.show_weights(mlp_weights())
        await pilot.pause()
        assert "c" in {key.key for key in app.query(FooterKey)}


@sync
async def test_without_colour_the_weights_are_signed_shades(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = Host(softmax_weights())
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("w")
        text = str(app.query_one(WeightsView).render())
        assert "▀" not in text and "#" in text and "=" in text.split("\n", 2)[2]  # positive and negative marks
        assert set(text.split("\n", 3)[3]) <= set(SHADES.values()) | set("".join(CLASSES) + " #+-0123456789.±\n")


@sync
async def test_the_weights_view_updates_each_epoch_and_opens_saved_runs(tiny_data, tmp_path):
    from fmtui.headless import Reporter
    from fmtui.headless import run_training as headless_training

    runs = tmp_path / "runs"
    cfg = RunConfig(data_dir=str(tiny_data), model="softmax", epochs=2, batch_size=32, device="cpu")
    assert headless_training(cfg, out=runs / "past", reporter=Reporter(open("/dev/null", "w"))) == 0
    saved, note = saved_weights(runs / "past", cfg, (1, 28, 28), 10)
    assert note == "" and saved.per_class and saved.inputs.shape == (10, 784)
    app = make_app(cfg.replace(seed=1), runs_dir=runs)  # another seed: other weights than the saved run's
    async with app.run_test(size=(100, 32)) as pilot:
        view = app.query_one(WeightsView)
        await pilot.press("s")  # a live run: each epoch's weights
        await wait_for(pilot, lambda: not app.activity.busy)
        assert view.weights is not None and not np.array_equal(view.weights.inputs, saved.inputs)
        await pilot.press("5")
        await pilot.pause()
        records = app.query_one("RunsPane").records
        app.query_one("#runs-table").move_cursor(row=[r.name for r in records].index("past"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.query_one(TabbedContent).active == "errors")
        await wait_for(pilot, lambda: view.weights is not None and np.array_equal(view.weights.inputs, saved.inputs))


def test_a_run_without_weights_says_why(tmp_path):
    weights, note = saved_weights(tmp_path, RunConfig(model="softmax"), (1, 28, 28), 10)
    assert weights is None and note.startswith("no weights to draw: ") and "model.pt: no such file" in note
    weights, note = saved_weights(tmp_path, RunConfig(model="cnn"), (1, 28, 28), 10)
    assert weights is None and "CNN" in note

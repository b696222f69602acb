"""The Data and Errors panes, each mounted alone in a tiny host app: Pilot interactions and SVG snapshots."""

from __future__ import annotations

import pytest
import torch
from pilot import run, settle
from textual.app import App, ComposeResult
from textual.binding import BindingsMap
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Input

from fmtui.app import FmtuiApp
from fmtui.config import RunConfig
from fmtui.data import load_dataset, norm_stats, pixel_stats
from fmtui.results import Results
from fmtui.widgets.data_pane import DataPane, JumpInput, ThumbGrid
from fmtui.widgets.errors_pane import LIST_CAP, ErrorsPane, MatrixTable

pytestmark = pytest.mark.app

SIZE = (100, 32)


@pytest.fixture(autouse=True)
def _truecolor(monkeypatch):
    """Same colours on every machine: the app's console detects them from the environment."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLORTERM", "truecolor")


class Host(App):
    """Mounts one pane with a footer; gives a DataPane its config on mount, as the real app does."""

    def __init__(self, pane: Widget, cfg: RunConfig | None = None) -> None:
        super().__init__()
        self.pane, self.cfg = pane, cfg

    def compose(self) -> ComposeResult:
        yield self.pane
        yield Footer()

    def on_mount(self) -> None:
        if self.cfg is not None:
            self.pane.show_config(self.cfg)
        self.pane.focus()


def fake_logits(labels: torch.Tensor, seed: int = 0, noise: float = 1.5) -> torch.Tensor:
    """Deterministic scores: the true class gets a head start, noise makes mistakes."""
    g = torch.Generator().manual_seed(seed)
    return 3 * torch.nn.functional.one_hot(labels, 10) + noise * torch.randn(len(labels), 10, generator=g)


def results_of(logits: torch.Tensor, labels: torch.Tensor) -> Results:
    probs = logits.softmax(1)
    preds = probs.argmax(1)
    confusion = torch.bincount(labels * 10 + preds, minlength=100).view(10, 10)
    return Results(probs, labels, preds, confusion, 1.0, 100.0 * float((preds == labels).float().mean()))


def fake_results(labels: torch.Tensor, seed: int = 0, noise: float = 1.5) -> Results:
    return results_of(fake_logits(labels, seed, noise), labels)


def show(pane: ErrorsPane, results: Results, tiny, run: str | None = None) -> None:
    pane.set_test_split(tiny.x_test, tiny.classes)
    pane.show_results(results, run)


@pytest.fixture
def tiny(tiny_data):
    return load_dataset("fashion-mnist", tiny_data)


# --- Data pane ----------------------------------------------------------------------------------


def test_data_pane_loads_in_a_worker_and_shows_stats_before_and_after_normalization(tiny_data, tiny):
    app = Host(DataPane(), RunConfig(data_dir=str(tiny_data), norm="zscore"))

    async def interact(pilot):
        pane = app.pane
        assert "loading" in str(pane.query_one("#data-message").render())
        await settle(pilot)
        assert pane.has_class("-ready") and pane.selected_index == 0
        assert pane.data.raw["train"] == pytest.approx(pixel_stats(tiny.x_train))
        zscore = pane.data.normalized["train"]
        assert zscore == pytest.approx(pixel_stats(tiny.x_train, norm_stats("zscore", tiny.x_train)))
        assert zscore[0] == pytest.approx(0, abs=1e-4) and zscore[1] == pytest.approx(1, abs=1e-4)
        assert "zscore" in str(pane.query_one("#data-stats").render())
        assert pane.dataset.classes == tiny.classes

    run(app, interact)


def test_arrows_move_the_selection_through_the_grid(tiny_data):
    app = Host(DataPane(), RunConfig(data_dir=str(tiny_data)))

    async def interact(pilot):
        await settle(pilot)
        pane = app.pane
        await pilot.press("left")
        assert pane.position == 0
        await pilot.press("right", "right")
        assert pane.selected_index == 2
        cols = pane.query_one(ThumbGrid).grid_shape()[0]
        await pilot.press("down")
        assert pane.selected_index == 2 + cols
        grid = pane.query_one(ThumbGrid)
        await pilot.click(grid, offset=(grid.cell_size()[0] + 2, 1))  # the second thumbnail of the page
        assert pane.position == grid.page_start() + 1 and pane.has_focus
        await pilot.press("end")
        assert pane.selected_index == len(pane.dataset.y_train) - 1
        caption = str(pane.query_one("#data-caption").render())
        last_class = pane.dataset.classes[int(pane.dataset.y_train[-1])]
        assert caption.startswith(f"#{pane.selected_index}") and last_class in caption

    run(app, interact)


def test_class_filter_and_split_switch(tiny_data):
    app = Host(DataPane(), RunConfig(data_dir=str(tiny_data)))

    async def interact(pilot):
        await settle(pilot)
        pane, ds = app.pane, app.pane.dataset
        await pilot.press("c", "c", "c")
        assert pane.class_filter == 2
        shown = [int(i) for i in pane.indices]
        assert shown == (ds.y_train == 2).nonzero().flatten().tolist()
        await pilot.press("right")
        assert int(ds.y_train[pane.selected_index]) == 2 and pane.selected_index == shown[1]
        await pilot.press("C", "C", "C")
        assert pane.class_filter is None
        await pilot.press("t")
        assert pane.split == "test" and len(pane.indices) == len(ds.y_test)
        assert "test split" in str(pane.query_one("#data-bar").render())

    run(app, interact)


def test_go_to_index_clears_a_filter_it_does_not_pass_and_rejects_bad_input(tiny_data):
    app = Host(DataPane(), RunConfig(data_dir=str(tiny_data)))

    async def interact(pilot):
        await settle(pilot)
        pane, box = app.pane, app.pane.query_one(JumpInput)
        target = int((pane.dataset.y_train != 0).nonzero()[5])
        await pilot.press("c", "g")
        assert box.display and box.has_focus
        await pilot.press(*"99999", "enter")
        assert box.display and pane.class_filter == 0  # out of range: the box stays open, and says why
        assert str(box.border_title) == "✗ '99999' is not an index from 0 to 599" and box.has_class("-invalid")
        box.value = ""
        await pilot.press(*str(target), "enter")
        assert not box.display and pane.has_focus
        assert pane.selected_index == target and pane.class_filter is None
        bar = str(pane.query_one("#data-bar").render())  # 0-based, as the caption and g: one way to count
        assert f"#{target} of #0-#599" in bar and str(pane.query_one("#data-caption").render()).startswith(f"#{target}")
        await pilot.press("g", "escape")
        assert not box.display and pane.selected_index == target

    run(app, interact)


def test_no_color_draws_the_grid_with_the_ascii_ramp(monkeypatch, tiny_data):
    monkeypatch.setenv("NO_COLOR", "1")
    app = Host(DataPane(), RunConfig(data_dir=str(tiny_data)))

    async def interact(pilot):
        await settle(pilot)
        grid = app.pane.query_one(ThumbGrid).render().plain
        assert "▀" not in grid and any(c in grid for c in "+*#%@")  # the bright bands are dense shades

    run(app, interact)


def test_missing_files_show_a_message_not_a_crash(tmp_path):
    app = Host(DataPane(), RunConfig(data_dir=str(tmp_path / "empty")))

    async def interact(pilot):
        await settle(pilot)
        assert app.pane.has_class("-error") and not app.pane.has_class("-ready")
        assert "No Fashion-MNIST files in" in str(app.pane.query_one("#data-message").render())
        await pilot.press("right", "c", "t", "g")  # keys on an empty pane do nothing
        assert app.pane.data is None

    run(app, interact)


def test_changing_only_the_normalization_reuses_the_loaded_dataset(tiny_data):
    app = Host(DataPane(), RunConfig(data_dir=str(tiny_data)))

    async def interact(pilot):
        await settle(pilot)
        pane = app.pane
        await pilot.press("right", "right")
        first = pane.dataset
        pane.show_config(RunConfig(data_dir=str(tiny_data), norm="unit"))
        await settle(pilot)
        assert pane.dataset is first and pane.selected_index == 2
        assert pane.data.normalized["train"][3] == pytest.approx(1.0)  # max pixel 255 -> 1

    run(app, interact)


def test_data_pane_snapshot(snap_compare, tiny_data):
    app = Host(DataPane(), RunConfig(data_dir=str(tiny_data)))
    assert snap_compare(app, press=["right", "down"], terminal_size=SIZE, run_before=settle)


def test_data_pane_snapshot_80x24_filtered(snap_compare, tiny_data):
    app = Host(DataPane(), RunConfig(data_dir=str(tiny_data)))
    assert snap_compare(app, press=["c", "c", "right"], terminal_size=(80, 24), run_before=settle)


# --- Errors pane --------------------------------------------------------------------------------


def test_errors_pane_lists_mistakes_most_confident_first(tiny):
    results = fake_results(tiny.y_test)
    app = Host(ErrorsPane())

    async def interact(pilot):
        pane = app.pane
        assert "train a model" in str(pane.query_one("#err-placeholder").render())
        show(pane, results, tiny)
        await pilot.pause()
        table = pane.query_one("#err-list", DataTable)
        assert pane.rows == results.mislabeled() and table.row_count == len(pane.rows)
        confidences = results.confidence[pane.rows]
        assert torch.all(confidences[:-1] >= confidences[1:])
        top = pane.rows[0]
        assert pane.selected_index == top
        true, pred = tiny.classes[int(tiny.y_test[top])], tiny.classes[int(results.preds[top])]
        assert f"true {true}" in str(pane.query_one("#err-caption").render())
        top3 = str(pane.query_one("#err-top3").render()).splitlines()
        assert len(top3) == 3 and pred in top3[0]
        await pilot.press("down")
        assert pane.selected_index == pane.rows[1]

    run(app, interact)


def test_true_and_pred_filters_and_clear(tiny):
    results = fake_results(tiny.y_test)
    app = Host(ErrorsPane())

    async def interact(pilot):
        pane = app.pane
        show(pane, results, tiny)
        pane.focus()
        await pilot.press("t", "t")
        assert pane.true_filter == 1 and pane.rows == results.mislabeled(true=1)
        await pilot.press("o", "O", "O")
        assert pane.pred_filter == 9 and pane.rows == results.mislabeled(true=1, pred=9)
        await pilot.press("a")
        assert (pane.true_filter, pane.pred_filter) == (None, None) and pane.rows == results.mislabeled()

    run(app, interact)


def test_selecting_a_matrix_cell_lists_exactly_its_samples(tiny):
    results = fake_results(tiny.y_test)
    r, c = divmod(int((results.confusion - torch.diag(results.confusion.diagonal())).argmax()), 10)
    app = Host(ErrorsPane())

    async def interact(pilot):
        pane = app.pane
        show(pane, results, tiny)
        pane.focus()
        await pilot.press("m")
        matrix = pane.query_one(MatrixTable)
        assert matrix.has_focus and pane.has_class("-matrix")
        matrix.move_cursor(row=r, column=c)
        await pilot.press("enter")
        expected = ((results.labels == r) & (results.preds == c)).nonzero().flatten().tolist()
        assert sorted(pane.rows) == expected and len(pane.rows) == int(results.confusion[r, c]) > 0
        assert pane.query_one("#err-list").has_focus and not pane.has_class("-matrix")
        await pilot.press("m")
        matrix.move_cursor(row=r, column=r)
        await pilot.press("enter")
        correct = ((results.labels == r) & (results.preds == r)).nonzero().flatten().tolist()
        assert sorted(pane.rows) == correct and len(correct) == int(results.confusion[r, r])
        assert "correct" in str(pane.query_one("#err-bar").render())

    run(app, interact)


def test_a_new_epoch_keeps_the_filter_and_the_selected_sample(tiny):
    labels = tiny.y_test
    logits = fake_logits(labels)
    app = Host(ErrorsPane())

    async def interact(pilot):
        pane = app.pane
        show(pane, results_of(logits, labels), tiny)
        pane.focus()
        await pilot.press("t", "down", "down")
        chosen, table = pane.selected_index, pane.query_one("#err-list", DataTable)
        assert pane.true_filter == 0 and table.cursor_row == 2
        later = logits.clone()  # a later epoch: the chosen mistake became the most confident one
        later[chosen, int(later[chosen].argmax())] += 10
        show(pane, results_of(later, labels), tiny)
        await pilot.pause()
        assert pane.true_filter == 0 and pane.rows == pane.results.mislabeled(true=0)
        assert pane.rows.index(chosen) == 0  # the sample moved to the first row...
        assert pane.selected_index == chosen and table.cursor_row == 0  # ...and the cursor moved with it

    run(app, interact)


def test_the_list_shows_a_page_at_a_time_and_every_page_can_be_reached():
    labels = torch.arange(3000) % 10
    results = fake_results(labels, noise=4.0)
    images = torch.zeros(3000, 1, 28, 28, dtype=torch.uint8)
    app = Host(ErrorsPane())

    async def interact(pilot):
        pane = app.pane
        pane.set_test_split(images, [f"class {k}" for k in range(10)])
        pane.show_results(results)
        await pilot.pause()
        table, n = pane.query_one("#err-list", DataTable), len(pane.rows)
        assert n > 2 * LIST_CAP and table.row_count == LIST_CAP
        assert f"{n:,} mislabeled (1-{LIST_CAP} listed: ] more, [ back)" in str(pane.query_one("#err-bar").render())
        assert n >= 1000  # so the count is written 2,700 as the Train pane writes its mistakes
        last = (n - 1) // LIST_CAP
        await pilot.press(*["right_square_bracket"] * (last + 2))  # past the last page: a bell, no move
        assert pane.page == last and table.row_count == n - last * LIST_CAP
        assert pane.selected_index == pane.rows[last * LIST_CAP]
        assert f"({last * LIST_CAP + 1:,}-{n:,} listed" in str(pane.query_one("#err-bar").render())
        pane.show_results(results)  # a new epoch keeps the page of the selected sample
        await pilot.pause()
        assert pane.page == last and pane.selected_index == pane.rows[last * LIST_CAP]
        await pilot.press("left_square_bracket", "t")  # back a page; a filter starts again at its first
        assert pane.page == 0 and pane.true_filter == 0

    run(app, interact)


def test_errors_pane_snapshot(snap_compare, tiny):
    app = Host(ErrorsPane())

    async def before(pilot):
        show(app.pane, fake_results(tiny.y_test), tiny, "run 20250101-120000-fashion-mnist-mlp · epoch 4/5")
        app.pane.focus()
        await pilot.pause()

    assert snap_compare(app, press=["down"], terminal_size=SIZE, run_before=before)


def test_errors_pane_matrix_snapshot(snap_compare, tiny):
    app = Host(ErrorsPane())

    async def before(pilot):
        show(app.pane, fake_results(tiny.y_test), tiny)
        app.pane.focus()
        await pilot.pause()

    assert snap_compare(app, press=["m", "down", "right"], terminal_size=SIZE, run_before=before)


def shell_keys() -> set[str]:
    """Every key the app shell binds: its own bindings (panes 1-5, s, x, p, escape, q), Textual's, the palette."""
    keys = set(BindingsMap(FmtuiApp.BINDINGS).key_to_bindings) | set(BindingsMap(App.BINDINGS).key_to_bindings)
    return keys | {App.COMMAND_PALETTE_BINDING}


@pytest.mark.parametrize("pane", [DataPane, ErrorsPane, JumpInput, MatrixTable])
def test_pane_keys_leave_the_shell_keys_alone(pane):
    """Panes must not shadow the shell's keys; a text box may take escape, which leaves it as the shell's does."""
    shell = shell_keys() - ({"escape"} if issubclass(pane, Input) else set())
    assert {"1", "5", "s", "x", "q", "escape", "ctrl+q", "ctrl+p"} <= shell_keys()
    keys = set(BindingsMap(pane.BINDINGS).key_to_bindings)
    assert not keys & shell


def test_the_errors_header_says_which_run_and_the_empty_pane_how_to_open_one(tiny):
    app = Host(ErrorsPane())

    async def interact(pilot):
        pane = app.pane
        placeholder = str(pane.query_one("#err-placeholder").render())
        assert "train a model (s)" in placeholder and "pane 5, a run, enter" in placeholder
        results = fake_results(tiny.y_test)
        show(pane, results, tiny, "epoch 2/5 · run 20250101-mlp")
        await pilot.pause()
        header = str(pane.query_one("#err-run").render())
        assert header == f"test accuracy {results.accuracy:.2f}% · epoch 2/5 · run 20250101-mlp"
        show(pane, results, tiny)  # the next epoch of the same run, without a new label: the label stays
        await pilot.pause()
        assert str(pane.query_one("#err-run").render()).endswith("run 20250101-mlp")
        name = "20261208-025520-fashion-mnist-mlp-symmetric-lr0.01" + "-and-on" * 20
        show(pane, results, tiny, f"completed · epoch 5/5 · run {name}")
        await pilot.pause()
        shown = pane.query_one("#err-run").render_line(0).text.rstrip()
        assert shown.endswith("…") and "· run 20261208-025520" in shown  # cut where it is seen to be, one line

    run(app, interact)


def test_the_true_class_is_shown_with_its_probability_when_not_in_the_top_3(tiny, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")  # and the predicted class is marked by more than a colour
    labels = tiny.y_test
    logits = fake_logits(labels)
    logits[0] = torch.arange(10.0) * 3  # sample 0: class 9 first, then 8 and 7; its true class further down
    logits[0, labels[0]] = -5.0 if int(labels[0]) < 7 else logits[0, labels[0]]
    app = Host(ErrorsPane())

    async def interact(pilot):
        pane = app.pane
        show(pane, results_of(logits, labels), tiny)
        await pilot.pause()
        true = int(labels[0])
        pane.set_filter(true, None)
        if 0 not in pane.rows or true >= 7:
            pytest.skip("sample 0 is not a mistake outside the top 3 in this split")
        pane.query_one("#err-list", DataTable).move_cursor(row=pane.rows.index(0))
        await pilot.pause()
        lines = str(pane.query_one("#err-top3").render()).splitlines()
        assert len(lines) == 4 and lines[3].startswith(f"✓ {tiny.classes[true][:11]}") and "0.0%" in lines[3]
        caption = pane.query_one("#err-caption").render()
        assert "Style(bold=True, reverse=True)" in [repr(span.style) for span in caption.spans]  # not dark-grey red

    run(app, interact, size=(100, 32))


def test_class_names_are_whole_when_there_is_room(tiny):
    app = Host(ErrorsPane())

    async def interact(pilot):
        pane = app.pane
        show(pane, fake_results(tiny.y_test), tiny)
        await pilot.pause()
        table = pane.query_one("#err-list", DataTable)
        names = {str(table.get_row_at(r)[1]) for r in range(table.row_count)}
        assert pane.has_class("-roomy") and names & {"T-shirt/top", "Ankle boot", "Sneaker", "Trouser"}

    run(app, interact, size=(200, 60))


def test_a_tall_data_pane_has_no_gap_between_image_and_counts(tiny_data):
    app = Host(DataPane(), RunConfig(data_dir=str(tiny_data)))

    async def interact(pilot):
        await settle(pilot)
        pane = app.pane
        assert pane.has_class("-tall")  # the counts go under the image's statistics; the thumbnails get the height
        stats, counts = pane.query_one("#data-stats"), pane.query_one("#data-counts-left")
        assert counts.display and counts.region.y - stats.region.bottom <= 1
        assert not pane.query_one("#data-counts").display

    run(app, interact, size=(120, 40))

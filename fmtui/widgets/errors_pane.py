"""The Errors pane: mislabeled test samples ranked by confidence, their images, and the confusion matrix;
`w` switches to what the model learned (fmtui.widgets.weights_view)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Static

from fmtui.text import safe_text
from fmtui.widgets.image import ASCII, ImageView, image_mode, short_names
from fmtui.widgets.weights_view import WeightsView

LIST_CAP = 200
"""Rows in one page of the sample list: rebuilding it every epoch must stay cheap (a DataTable row costs
~0.4 ms), so a page holds the 200 next most confident; ] and [ turn the pages."""
WIDE = 140
"""From this width on, the samples and the matrix are shown side by side; below, `m` switches."""
LIST_WIDTH, ROOMY_WIDTH = 36, 46
"""The sample list's width: enough for class names of 8 letters ("Sneaker", "Pullover"), or, when the pane has
room (ROOMY_DETAIL beside it and the matrix), of 11 ("T-shirt/top", "Ankle boot")."""
ROOMY_DETAIL = 40
MATRIX_WIDTH = 72
"""About what the confusion matrix of 10 classes takes beside the list (from WIDE columns on)."""
BAR = "█"
FILTER_KEYS = Binding.Group("filter", compact=True)
"""t, o and a share one footer entry ("to filter", "toa filter" while one is set): at 80 columns there is no room
for three; ? names each key."""


def samples(results, true: int | None, pred: int | None) -> list[int]:
    """Test indices with this true/pred class, most confident first: mistakes, or hits on the diagonal."""
    if true is None or true != pred:
        return results.mislabeled(true, pred)
    idx = ((results.labels == true) & (results.preds == true)).nonzero().flatten()
    return idx[results.confidence[idx].argsort(descending=True, stable=True)].tolist()


def _cycle(value: int | None, step: int, n: int) -> int | None:
    """None -> 0 -> 1 ... -> n-1 -> None; a negative step goes the other way."""
    order = [None, *range(n)]
    return order[(order.index(value) + step) % len(order)]


class MatrixTable(DataTable):
    """The confusion matrix; enter (or a click) on a cell lists exactly that cell's samples."""

    BINDINGS = [Binding("enter", "select_cursor", "cell")]


class ErrorsPane(Widget):
    """Mislabeled test samples ranked by confidence, the selected one's image and top-3, the confusion matrix.

    The app hands down the test split (`set_test_split`) and then each evaluation's predictions
    (`show_results`); the pane draws them when it is on screen, so a hidden pane costs nothing per epoch.
    Filters and the selected sample survive an update. `focus()` focuses the list (or the matrix).
    """

    DEFAULT_CSS = """
    ErrorsPane { height: 1fr; }
    ErrorsPane #err-placeholder { padding: 1 2; color: $text-muted; }
    ErrorsPane #err-run, ErrorsPane #err-bar, ErrorsPane #err-main { display: none; }
    ErrorsPane.-ready #err-run, ErrorsPane.-ready #err-bar, ErrorsPane.-ready #err-main { display: block; }
    ErrorsPane.-ready #err-placeholder { display: none; }
    ErrorsPane #err-run { height: 1; padding: 0 1; text-style: bold; text-wrap: nowrap; text-overflow: ellipsis; }
    ErrorsPane #err-bar { height: 1; background: $boost; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    ErrorsPane #err-list { width: 36; height: 1fr; }
    ErrorsPane.-roomy #err-list { width: 46; }
    ErrorsPane #err-detail { width: 1fr; min-width: 30; padding: 0 1; }
    ErrorsPane #err-image { min-height: 7; }
    ErrorsPane #err-caption { height: auto; }
    ErrorsPane #err-top3 { height: auto; margin-bottom: 1; }
    ErrorsPane #err-matrix-box { width: auto; padding: 0 1; }
    ErrorsPane #err-matrix { width: auto; height: auto; max-height: 1fr; }
    ErrorsPane #err-matrix-title { width: auto; text-style: bold; }
    ErrorsPane #err-matrix-hint { width: 100%; max-width: 72; color: $text-muted; margin-top: 1; }
    ErrorsPane.-narrow #err-matrix-box { display: none; }
    ErrorsPane.-narrow.-matrix #err-matrix-box { display: block; width: 1fr; }
    ErrorsPane.-narrow.-matrix #err-samples { display: none; }
    ErrorsPane #err-weights { display: none; }
    ErrorsPane.-weights #err-weights { display: block; }
    ErrorsPane.-weights #err-bar, ErrorsPane.-weights #err-main, ErrorsPane.-weights #err-placeholder {
        display: none;
    }
    """

    BINDINGS = [
        # s, x, p, q, escape and 1-5 belong to the app shell (start, stop, presets, quit, panes)
        Binding("t", "cycle_true(1)", "next true class", group=FILTER_KEYS),
        Binding("T", "cycle_true(-1)", "previous true class", show=False),
        Binding("o", "cycle_pred(1)", "next predicted class", group=FILTER_KEYS),
        Binding("O", "cycle_pred(-1)", "previous pred class", show=False),
        Binding("a", "clear_filter", "all samples (no filter)", group=FILTER_KEYS),
        Binding("m", "toggle_matrix", "matrix"),
        Binding("right_square_bracket", "page(1)", "more"),
        Binding("left_square_bracket", "page(-1)", "previous page", show=False),
        Binding("w", "toggle_weights", "weights"),
    ]
    MISTAKE_ACTIONS = {"cycle_true", "cycle_pred", "clear_filter", "toggle_matrix", "page"}
    """Keys of the mistakes view, hidden while the weights are shown."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.results = self.images = None
        """What the pane shows: predictions and the test images (N, C, H, W) uint8 they index into."""
        self.class_names: list[str] = []
        self._split: tuple[Any, list[str]] | None = None
        self._pending: Any = None
        """The newest predictions handed down and not yet drawn (the pane was hidden)."""
        self.true_filter: int | None = None
        self.pred_filter: int | None = None
        self.rows: list[int] = []
        """All test indices that pass the filter, most confident first (the list shows one page of LIST_CAP)."""
        self.page = 0
        """Which LIST_CAP rows of `rows` the list shows: rows[page * LIST_CAP :][:LIST_CAP]."""
        self.run_label = ""
        """Which run the predictions are of (its folder, and the epoch), for the header line."""

    def compose(self) -> ComposeResult:
        yield Static(
            "No predictions yet: train a model (s), or open a past run's saved predictions: pane 5, a run, enter.",
            id="err-placeholder",
        )
        yield Static(id="err-run")
        yield Static(id="err-bar")
        with Horizontal(id="err-main"):
            with Horizontal(id="err-samples"):
                yield DataTable(cursor_type="row", id="err-list")
                with Vertical(id="err-detail"):
                    yield Static(id="err-caption")
                    yield Static(id="err-top3")
                    yield ImageView(fit=True, id="err-image")
            with Vertical(id="err-matrix-box"):
                yield Static("confusion: rows true, columns predicted", id="err-matrix-title")
                yield MatrixTable(cursor_type="cell", id="err-matrix")
                yield Static(
                    "enter on a cell lists exactly its samples; on acc%, all mistakes of that class",
                    id="err-matrix-hint",
                )
        yield WeightsView(id="err-weights")

    def on_mount(self) -> None:
        self.query_one("#err-list", DataTable).add_columns("#", "true", "pred", "conf")

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < WIDE, "-narrow")
        beside = MATRIX_WIDTH if event.size.width >= WIDE else 0
        roomy = event.size.width - beside - ROOMY_WIDTH >= ROOMY_DETAIL
        if roomy != self.has_class("-roomy"):
            self.set_class(roomy, "-roomy")
            if self.results is not None:
                self._fill_list(keep=True)  # whole class names, or cut ones

    # --- data in ------------------------------------------------------------------------------

    def set_test_split(self, images, classes: list[str]) -> None:
        """The test images, uint8 (N, C, H, W), and class names that the next predictions index into."""
        self._split = None if images is None else (images, list(classes))
        self.query_one(WeightsView).class_names = list(classes)

    def show_weights(self, weights, note: str = "") -> None:
        """What the model learned (fmtui.weights.LearnedWeights), or None and why there is nothing to draw."""
        self.query_one(WeightsView).show(weights, note)

    def show_results(self, results, run: str | None = None) -> None:
        """Show one evaluation's test predictions (None: nothing new), now if the pane is on screen, else
        when it next is: filling the list costs ~85 ms of UI time that training would wait for.

        `run` says whose predictions these are (a run folder's name and epoch), for the header line."""
        if results is not None:
            self._pending = results
        if run is not None:
            self.run_label = safe_text(run)  # a run folder's name is data from the folder
        if self.is_on_screen:
            self._draw_pending()

    def on_show(self) -> None:
        self._draw_pending()

    def _draw_pending(self) -> None:
        if self._pending is None or self._split is None:
            return
        self.results, (self.images, self.class_names) = self._pending, self._split
        self._pending = None
        self.add_class("-ready")
        run = f" · {self.run_label}" if self.run_label else ""  # its name last: cut first at 80 columns
        header = f"test accuracy {self.results.accuracy:.2f}%{run}"
        self.query_one("#err-run", Static).update(Text(header))  # one line, … where cut: the CSS
        self._fill_matrix()
        self._fill_list(keep=True)

    def _fill_matrix(self) -> None:
        """Rebuild the 10x10 table (cheap), keeping the cursor on the same cell."""
        table = self.query_one(MatrixTable)
        cursor = table.cursor_coordinate
        table.clear(columns=True)
        names = short_names(self.class_names, 4)
        table.add_columns(*names, "acc%")
        confusion = self.results.confusion.tolist()
        few = image_mode(self.app) == ASCII
        for r, (row, acc) in enumerate(zip(confusion, self.results.per_class_accuracy)):
            total = max(sum(row), 1)
            cells = [_matrix_cell(n, r == c, n / total, few) for c, n in enumerate(row)]
            table.add_row(*cells, Text(f"{acc:.1f}", justify="right"), label=Text(names[r], style="bold"))
        table.move_cursor(row=cursor.row, column=cursor.column, animate=False)

    def _fill_list(self, keep: bool) -> None:
        """Refill the list for the current filter; keep the selected sample (else the row) when `keep`."""
        table = self.query_one("#err-list", DataTable)
        previous, row = self.selected_index if keep else None, table.cursor_row if keep else 0
        self.rows = samples(self.results, self.true_filter, self.pred_filter)
        if keep and previous in self.rows:
            self.page = self.rows.index(previous) // LIST_CAP  # the selected sample stays in view
        self.page = min(self.page, max(len(self.rows) - 1, 0) // LIST_CAP)  # set_filter starts at page 0
        names = list_names(self.class_names, self._name_width())
        conf = self.results.confidence
        labels, preds = self.results.labels.tolist(), self.results.preds.tolist()
        table.clear()
        shown = self.shown_rows
        for i in shown:
            table.add_row(
                Text(str(i), justify="right"),
                names[labels[i]],
                names[preds[i]],
                Text(f"{100 * float(conf[i]):.1f}%", justify="right"),
                key=str(i),
            )
        if previous in shown:
            row = shown.index(previous)
        table.move_cursor(row=min(row, max(len(shown) - 1, 0)), animate=False)
        self._update_bar()
        self._show_sample()

    def _name_width(self) -> int:
        """What each class name gets in the list: the list's width less the index, the confidence, the cells'
        padding and a scrollbar, halved (5 to 11 letters)."""
        width = ROOMY_WIDTH if self.has_class("-roomy") else LIST_WIDTH
        digits = len(str(max(len(self.results.labels) - 1, 0))) if self.results is not None else 4
        return min(max((width - 2 - (digits + 2) - (6 + 2) - 4) // 2, 5), 11)

    @property
    def shown_rows(self) -> list[int]:
        """The test indices of the page the list shows."""
        return self.rows[self.page * LIST_CAP :][:LIST_CAP]

    # --- drawing ------------------------------------------------------------------------------

    @property
    def selected_index(self) -> int | None:
        """Test index of the sample under the list cursor, or None when the list is empty."""
        table = self.query_one("#err-list", DataTable)
        shown = self.shown_rows
        return shown[table.cursor_row] if shown and 0 <= table.cursor_row < len(shown) else None

    def _filter_name(self, k: int | None) -> str:
        return "any" if k is None else f"{k} {self.class_names[k]}"

    def _update_bar(self) -> None:
        diagonal = self.true_filter is not None and self.true_filter == self.pred_filter
        what = "correct" if diagonal else "mislabeled"
        n, first = len(self.rows), self.page * LIST_CAP
        more = f" ({first + 1:,}-{min(first + LIST_CAP, n):,} listed: ] more, [ back)" if n > LIST_CAP else ""
        text = (
            f"{n:,} {what}{more} · true: {self._filter_name(self.true_filter)}"
            f" · pred: {self._filter_name(self.pred_filter)}"
        )
        self.query_one("#err-bar", Static).update(Text(text))

    def _show_sample(self) -> None:
        i = self.selected_index
        self.query_one("#err-image", ImageView).set_image(None if i is None else self.images[i])
        caption, top3 = self.query_one("#err-caption", Static), self.query_one("#err-top3", Static)
        if i is None:
            caption.update("no samples for this filter")
            top3.update("")
            return
        true, pred = int(self.results.labels[i]), int(self.results.preds[i])
        few = image_mode(self.app) == ASCII  # NO_COLOR or 16 colours: red would be dark grey or magenta
        wrong = "bold reverse" if few else "bold red"
        caption.update(
            Text.assemble(
                (f"#{i}", "bold"),
                f"  true {self.class_names[true]}  pred ",
                (self.class_names[pred], "bold" if true == pred else wrong),
            )
        )
        top3.update(self._top3_text(i, true, few))

    def _top3_text(self, i: int, true: int, few: bool = False) -> Text:
        """The three most probable classes with bars; the true class (✓) added below when it is not among them."""
        top = self.results.top_k(i, min(3, len(self.class_names)))
        if true not in [c for c, _ in top]:
            top.append((true, float(self.results.probs[i, true])))
        text = Text()
        for k, (c, p) in enumerate(top):
            mark = "✓" if c == true else " "
            text.append("\n" if k else "")
            text.append(f"{mark} {self.class_names[c][:11]:<11}{100 * p:5.1f}% ", style="bold" if c == true else "")
            text.append(
                BAR * max(round(10 * p), 0), style=("bold" if c == true else "") if few else _bar_style(c == true)
            )
        return text

    # --- events and actions -------------------------------------------------------------------

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "err-list":
            event.stop()
            self._show_sample()

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        """A matrix cell: list exactly its samples (the acc% column: all mistakes of that true class)."""
        if not isinstance(event.data_table, MatrixTable):
            return
        event.stop()
        row, col = event.coordinate.row, event.coordinate.column
        self.set_filter(row, col if col < len(self.class_names) else None)
        self.remove_class("-matrix")
        self.query_one("#err-list", DataTable).focus()

    def set_filter(self, true: int | None, pred: int | None) -> None:
        """Show the samples of this true/pred class pair (None = any), starting at the most confident."""
        self.true_filter, self.pred_filter, self.page = true, pred, 0
        if self.results is not None:
            self._fill_list(keep=False)
            self.refresh_bindings()

    def action_cycle_true(self, step: int) -> None:
        if self.results is not None:
            self.set_filter(_cycle(self.true_filter, step, len(self.class_names)), self.pred_filter)

    def action_cycle_pred(self, step: int) -> None:
        if self.results is not None:
            self.set_filter(self.true_filter, _cycle(self.pred_filter, step, len(self.class_names)))

    def action_clear_filter(self) -> None:
        self.set_filter(None, None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The mistakes' keys hide while the weights are shown; `a` shows only while a filter is set, the page
        keys only while the list has more than one page and has the focus."""
        if self.has_class("-weights") and action in self.MISTAKE_ACTIONS:
            return False
        if action == "clear_filter":  # at 80 columns the footer has room for it only while there is a filter
            return self.true_filter is not None or self.pred_filter is not None
        if action == "page":
            return len(self.rows) > LIST_CAP and self.query_one("#err-list", DataTable).has_focus
        return True

    def action_page(self, step: int) -> None:
        """The next (or previous) LIST_CAP samples of the filter: every one can be reached, a page at a time."""
        last = max(len(self.rows) - 1, 0) // LIST_CAP
        if self.results is None or not 0 <= self.page + step <= last:
            self.app.bell()
            return
        self.page += step
        self._fill_list(keep=False)
        self.refresh_bindings()

    def action_toggle_matrix(self) -> None:
        """Narrow: switch between samples and matrix. Wide: both are shown, so move focus between them."""
        matrix = self.query_one(MatrixTable)
        to_matrix = not (matrix.has_focus if not self.has_class("-narrow") else self.has_class("-matrix"))
        self.set_class(to_matrix, "-matrix")
        (matrix if to_matrix else self.query_one("#err-list", DataTable)).focus()

    def action_toggle_weights(self) -> None:
        """Switch between the mistakes and what the model learned."""
        self.toggle_class("-weights")
        self.refresh_bindings()
        self.focus()

    def focus(self, scroll_visible: bool = True) -> Any:
        """Focus what is shown (the pane itself takes no keys), so the app can just focus the pane."""
        if self.has_class("-weights"):
            self.query_one(WeightsView).focus(scroll_visible)
            return self
        target = "#err-matrix" if self.has_class("-matrix") else "#err-list"
        self.query_one(target, DataTable).focus(scroll_visible)
        return self


def list_names(classes: list[str], width: int) -> list[str]:
    """Class names for the list: whole where they fit in `width` letters, else cut as short_names cuts them (the
    first word first: "T-shirt", "Ankle"); all cut alike should two read the same."""
    short = short_names(classes, width)
    names = [name if len(name) <= width else cut for name, cut in zip(classes, short)]
    return names if len(set(names)) == len(names) else short


def _bar_style(true: bool) -> str:
    return "green" if true else "red"


def _matrix_cell(n: int, diagonal: bool, share: float, few: bool = False) -> Text:
    """Diagonal counts bold green; mistakes red, brighter for a larger share of the row; zeros dimmed.

    With few colours (16, or NO_COLOR, where red is dark grey) the weights carry it: diagonal bold and
    underlined, mistakes in the normal colour, bold from 5% of the row."""
    if diagonal:
        return Text(str(n), style="bold underline" if few else "bold green", justify="right")
    if n == 0:
        return Text("·", style="dim", justify="right")
    big = share >= 0.05
    style = ("bold" if big else "") if few else ("bold red" if big else "red")
    return Text(str(n), style=style, justify="right")

"""The Model & hyperparameter form: one row per RunConfig option that has a form label, validated as you type.

A keystroke parses only the field typed in (`fmtui.config.parse_field`): a bad value shows the parser's
reason beside it at once. The whole form is read once typing pauses (SETTLE seconds, or when the field
loses the focus): the status line, greyed-out fields, `ConfigForm.Changed(None, reason)` (which disables
Start) and the parameter count, which needs torch, so a thread worker computes it on the meta device.
Keeping the per-keystroke work this small keeps typing exact on a loaded machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.events import DescendantBlur, Key
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static

from fmtui.config import NORM_HELP, OPTIONS, ConfigError, Option, RunConfig, applies, format_value, parse_field
from fmtui.datafiles import DataFiles, downloads_off, locate
from fmtui.registry import DATASETS, MODELS
from fmtui.sweep import LECTURE_BATCH, LECTURE_EPOCHS, LECTURE_NOTE
from fmtui.widgets.lr_finder import LrFinder


def form_rows() -> tuple[Option, ...]:
    """The options with a form label, in field order except where one asks to follow another (form_after)."""
    rows = [o for o in OPTIONS.values() if o.label is not None and o.form_after is None]
    for o in OPTIONS.values():
        if o.label is not None and o.form_after is not None:
            rows.insert([r.name for r in rows].index(o.form_after) + 1, o)
    return tuple(rows)


FIELDS: tuple[Option, ...] = form_rows()
"""The form's rows, top to bottom (label, hint and parser from the option's declaration on RunConfig)."""

CHOICES: dict[str, tuple[str, ...]] = {o.name: o.choices for o in FIELDS if o.choices}
"""Fields shown as a drop-down, with their values; the others are typed."""

LECTURE_RUN = dict(model="softmax", batch_size=LECTURE_BATCH, epochs=LECTURE_EPOCHS)
"""The lecture's softmax regressions: batch 1024 (inferred from its charts) for 100 epochs (fmtui.sweep)."""

PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "raw-0.01": ("softmax, no normalization, lr 0.01", dict(LECTURE_RUN, norm="none", lr=0.01)),
    "raw-1e-5": ("softmax, no normalization, lr 1e-5", dict(LECTURE_RUN, norm="none", lr=1e-5)),
    "unit": ("softmax, x/255 in [0, 1]", dict(LECTURE_RUN, norm="unit")),
    "symmetric": ("softmax, [-1, 1]", dict(LECTURE_RUN, norm="symmetric")),
    "zscore": ("softmax, z-score", dict(LECTURE_RUN, norm="zscore")),
    "mlp": ("lecture MLP 784-256-10, [-1, 1], SGD 0.01", {}),
}
"""The lecture's experiments, as changes to the RunConfig defaults."""


def preset_config(name: str, base: RunConfig) -> RunConfig:
    """A preset on top of the defaults; where the data lives and which device to use are kept."""
    return RunConfig(**PRESETS[name][1], data_dir=base.data_dir, device=base.device, threads=base.threads)


SETTLE = 0.3
"""Seconds without a keystroke after which the whole form is read again (status, Start, parameter count)."""


class FieldInput(Input):
    """An Input for numbers: a character no value can contain is refused here (a bell and a note beside the
    field), never passed on to the app, so a `q` or `s` typed into a field cannot quit or start a run.

    From a field only escape (leave it), tab / shift+tab and ctrl keys (ctrl+p palette, ctrl+q quit) reach
    the app; the footer says so, as every printable key counts as consumed here."""

    ALLOWED = set("0123456789.,eE+- ")

    class Refused(Message):
        """A character that cannot be part of this field's value was typed."""

        def __init__(self, field: FieldInput, character: str) -> None:
            super().__init__()
            self.field, self.character = field, character

    def _on_key(self, event: Key) -> None:
        if event.is_printable and event.character not in self.ALLOWED:
            event.prevent_default()  # skip Input's typing
            event.stop()  # and the app's bindings
            self.app.bell()
            self.post_message(self.Refused(self, event.character or ""))

    def check_consume_key(self, key: str, character: str | None) -> bool:
        return character is not None and character.isprintable()


class ConfigForm(Widget, can_focus=True):
    """Edits a RunConfig; posts `ConfigForm.Changed` whenever the parsed result or its error changes.

    `l` asks the app to run the learning-rate finder on the form's config (`FindLr`); its panel sits under
    the fields, and `a` copies its suggestion into the learning-rate field. The form takes the focus itself when
    esc leaves a field, so that these keys stay at hand."""

    BINDINGS = [
        Binding("l", "find_lr", "lr finder"),
        Binding("a", "apply_lr", "apply lr"),
    ]

    @dataclass
    class Changed(Message):
        """The form's configuration (None while a field is invalid) and the reason it is invalid."""

        config: RunConfig | None
        error: str | None

    @dataclass
    class FindLr(Message):
        """Run the learning-rate finder on this config (the app owns the worker)."""

        config: RunConfig

    @dataclass
    class _Counted(Message):
        config: RunConfig
        params: int
        summary: str
        layers: list[str]

    def __init__(self, config: RunConfig, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._base = config
        self._last: tuple[RunConfig | None, str | None] | None = None
        self._counting: RunConfig | None = None
        self._fields: dict[str, Input | Select] = {}
        self._notes: dict[str, Static] = {}
        self._shown: dict[str, tuple] = {}
        """What each row shows now (note, error, active): a note is only redrawn when it changes."""
        self._settle: Timer | None = None
        """Pending read of the whole form, restarted by every keystroke."""
        self._files: DataFiles | None = None
        """Where the dataset's files are, as last shown."""
        self._data_watch: Timer | None = None
        self._refusing: set[str] = set()
        """Fields whose note says that a character was refused (until the next keystroke there, or 4 s)."""

    def compose(self) -> ComposeResult:
        yield Static("counting parameters…", id="model-summary")
        yield Static("", id="form-status")
        yield Static("", id="form-data")
        with VerticalScroll(id="form-fields", can_focus=False):
            with Horizontal(classes="field-row"):
                yield Label("preset", classes="field-label")
                yield Select(
                    [(title, key) for key, (title, _) in PRESETS.items()],
                    prompt="choose… (p)",
                    id="preset",
                    compact=True,
                )
            for opt in FIELDS:
                with Horizontal(classes="field-row", id=f"row-{opt.name}"):
                    yield Label(opt.label or "", classes="field-label")
                    yield self._field_widget(opt.name)
                    yield Static("", classes="field-note", id=f"note-{opt.name}")
            yield Static("", id="network")
        yield LrFinder(id="lr-finder")

    def _field_widget(self, name: str) -> Widget:
        value = format_value(getattr(self._base, name))
        if name in CHOICES:
            return Select([(c, c) for c in CHOICES[name]], value=value, allow_blank=False, id=f"f-{name}", compact=True)
        return FieldInput(value, id=f"f-{name}", compact=True)

    def on_mount(self) -> None:
        self._fields = {o.name: self.query_one(f"#f-{o.name}") for o in FIELDS}
        self._notes = {o.name: self.query_one(f"#note-{o.name}", Static) for o in FIELDS}
        self.call_after_refresh(self._refresh)  # the first frame must not wait for anything

    def focus_first_field(self) -> None:
        """Focus the first option of the form (the dataset), where editing starts."""
        self.query_one(f"#f-{FIELDS[0].name}").focus()

    # --- reading and writing the fields -----------------------------------------------------------

    def _text(self, name: str) -> str:
        widget = self._fields.get(name) or self.query_one(f"#f-{name}")
        return format_value(widget.value)

    def read(self) -> tuple[RunConfig | None, dict[str, str], str | None]:
        """(config or None, per-field errors, form error) from what the widgets hold now.

        A dataset whose files are missing while downloads are off is an error too: Start could only fail."""
        draft, errors = self._draft()
        if errors:
            name = next(iter(errors))
            return None, errors, f"{OPTIONS[name].label}: {errors[name]}"
        try:
            cfg = draft.validate()
        except ConfigError as e:
            return None, errors, str(e)
        files = locate(cfg.dataset, cfg.data_dir)
        if files.found is None and downloads_off():
            return None, errors, files.summary().removeprefix("✗ ")
        return cfg, errors, None

    def _draft(self) -> tuple[RunConfig, dict[str, str]]:
        """The form as a RunConfig, keeping the last good value of fields that do not parse, and their errors."""
        model, optimizer = self._text("model"), self._text("optimizer")
        values, errors = {}, {}
        for name in (o.name for o in FIELDS):
            if not applies(name, model, optimizer):
                continue
            try:
                values[name] = parse_field(name, self._text(name))
            except ConfigError as e:
                errors[name] = e.reason
        if not applies("batch_norm", model, optimizer):
            values["batch_norm"] = False
        return self._base.replace(**values), errors

    @property
    def config(self) -> RunConfig | None:
        return self.read()[0]

    def set_config(self, cfg: RunConfig) -> None:
        """Fill every field from cfg (presets, tests); fields not in the form are kept from cfg."""
        self._base = cfg
        for opt in FIELDS:
            self.query_one(f"#f-{opt.name}").value = format_value(getattr(cfg, opt.name))
        self._refresh()

    def apply_preset(self, name: str) -> None:
        self.set_config(preset_config(name, self._base))
        lecture = f" · {LECTURE_NOTE}, as the lecture ran it" if PRESETS[name][1].get("model") == "softmax" else ""
        self.notify(f"preset: {PRESETS[name][0]}{lecture}", timeout=3 if not lecture else 6)

    @property
    def lr_finder(self) -> LrFinder:
        return self.query_one(LrFinder)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "apply_lr":  # in the footer while there is a suggestion for the form's config
            return self.lr_finder.applicable is not None
        return True

    def action_find_lr(self) -> None:
        cfg, _, error = self.read()
        if cfg is None:
            self.app.bell()
            self.notify(error or "", title="fix the Model pane first", severity="warning", markup=False)
            return
        self.post_message(self.FindLr(cfg))

    def action_apply_lr(self) -> None:
        """Copy the finder's suggestion into the learning-rate field (two significant digits), if it was measured on
        the form's config as it is now (a change not yet read by the form counts too)."""
        self.lr_finder.follow(self._draft()[0])
        lr = self.lr_finder.applicable
        if lr is None:
            self.refresh_bindings()
            self.app.bell()
        else:
            field = self.query_one("#f-lr", Input)
            field.value = f"{lr:.2g}"
            field.scroll_visible()
            self.notify(f"learning rate {lr:.2g}, from the lr finder", timeout=3, markup=False)

    def open_presets(self) -> None:
        select = self.query_one("#preset", Select)
        select.focus()
        select.expanded = True

    # --- events -----------------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        """A keystroke: check this field alone now, the whole form once typing pauses."""
        event.stop()
        name = (event.input.id or "").removeprefix("f-")
        if name in self._fields:
            self._refusing.discard(name)
            try:
                parse_field(name, event.value)
                error = None
            except ConfigError as e:
                error = e.reason
            model, optimizer = self._text("model"), self._text("optimizer")
            self._show_note(name, error, OPTIONS[name].hint, applies(name, model, optimizer))
        if self._settle is not None:
            self._settle.stop()
        self._settle = self.set_timer(SETTLE, self._refresh)

    def on_descendant_blur(self, event: DescendantBlur) -> None:
        """Leaving a field reads the form at once, so Start (enabled or not) is right before the next key."""
        if self._settle is not None:
            self._refresh()

    @on(FieldInput.Refused)
    def _refused(self, message: FieldInput.Refused) -> None:
        message.stop()
        name = (message.field.id or "").removeprefix("f-")
        note = self._notes[name]
        note.update(f"✗ {message.character!r} cannot be typed here · esc leaves the field")
        note.add_class("-error")
        self._refusing.add(name)
        self._shown.pop(name, None)  # the next check of this field redraws its note
        self.set_timer(4, lambda: self._restore_note(name))

    def _restore_note(self, name: str) -> None:
        if name in self._refusing:
            self._refusing.discard(name)
            self._refresh()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id == "preset":
            if event.value in PRESETS:
                self.apply_preset(str(event.value))
                event.select.clear()
            return
        self._refresh()

    def _refresh(self) -> None:
        """Re-read the form: notes, greyed-out fields, status line; post Changed and recount parameters."""
        if self._settle is not None:
            self._settle.stop()
            self._settle = None
        cfg, errors, error = self.read()
        model, optimizer = self._text("model"), self._text("optimizer")
        for opt in FIELDS:
            self._show_note(opt.name, errors.get(opt.name), opt.hint, applies(opt.name, model, optimizer))
        draft = self._draft()[0]
        files = locate(draft.dataset, draft.data_dir)
        ok = f"✓ valid: press s to download {files.title} ({files.spec.size}) and train" if not files.found else ""
        status = self.query_one("#form-status", Static)
        status.update(f"✗ {error} (Start is disabled)" if error else ok or "✓ valid: press s to train")
        status.set_class(bool(error), "-invalid")
        self._show_data(files)
        if self.lr_finder.follow(draft):  # a suggestion belongs to the config it was measured on
            self.refresh_bindings()
        if self.is_on_screen:
            self._recount(draft)
        if self._last != (cfg, error):
            self._last = (cfg, error)
            self.post_message(self.Changed(cfg, error))

    def on_show(self) -> None:
        self._recount(self._draft()[0])

    def _recount(self, draft: RunConfig) -> None:
        """Count the draft's parameters (torch, in a worker) unless counted already. Only while the form is shown
        (_refresh) or as it is shown (on_show): a dashboard opened on a watched run imports no torch for it."""
        if draft == self._counting:
            return
        self._counting = draft
        too_big = MODELS[draft.model].refusal(draft)  # beyond its limits: not built, even on the meta device
        if too_big:
            self.query_one("#model-summary", Static).update(f"not counted: {too_big}")
            self.query_one("#network", Static).update("")
        else:
            self._count(draft)

    def _show_data(self, files: DataFiles) -> None:
        """Where the dataset is, or what to do about it: the first screen says it, not a failed run later.

        While the files are missing they are looked for every 2 s (a few `stat`s), so files copied in (or
        a download from another terminal) are noticed without a key."""
        if files == self._files:
            return
        self._files = files
        box = self.query_one("#form-data", Static)
        box.update(Text(files.help() or files.summary()))
        box.set_class(files.found is None, "-missing")
        if files.found is None and self._data_watch is None:
            self._data_watch = self.set_interval(2, self._look_for_data)
        elif files.found is not None and self._data_watch is not None:
            self._data_watch.stop()
            self._data_watch = None

    def _look_for_data(self) -> None:
        if self._files is not None and locate(self._files.dataset, self._files.root).found is not None:
            self._refresh()

    def _show_note(self, name: str, error: str | None, hint: str, active: bool) -> None:
        """A field's state: greyed out with "off for <model>" where it does not apply, else its hint or error."""
        if name == "norm":
            hint = NORM_HELP.get(self._text("norm"), "")
        if not active:
            why = self._text("optimizer") if name == "momentum" else self._text("model")
            hint = f"off for {why} · {hint}"
        if self._shown.get(name) == (hint, error, active) or name in self._refusing:
            return  # unchanged (or saying why a key was refused): redrawing a note costs a layout pass
        self._shown[name] = (hint, error, active)
        widget = self._fields[name]
        widget.disabled = not active
        widget.parent.set_class(not active, "-off")
        if isinstance(widget, Input):
            widget.set_class(error is not None, "-bad")
        note = self._notes[name]
        note.update(f"✗ {error}" if error else hint)
        note.set_class(error is not None, "-error")

    @work(thread=True, exclusive=True, group="param-count", exit_on_error=False)
    def _count(self, cfg: RunConfig) -> None:
        import torch  # ~1 s to import: off the UI thread

        from fmtui.models import build_model, describe, layer_rows, param_count_for

        data = DATASETS[cfg.dataset]  # its shape and classes, from the registry: no data is read
        shape, classes = data.shape, data.n_classes
        with torch.device("meta"):
            layers = layer_rows(build_model(cfg, shape, classes))
        self.post_message(
            self._Counted(cfg, param_count_for(cfg, shape, classes), describe(cfg, shape, classes), layers)
        )

    @on(_Counted)
    def _show_count(self, message: _Counted) -> None:
        message.stop()
        if message.config == self._counting:
            self.query_one("#model-summary", Static).update(f"{message.summary} · {message.params:,} parameters")
            self.query_one("#network", Static).update("\n".join(["layers", *message.layers]))

"""Each option is declared once, on RunConfig: the CLI's options, the form's rows and the sweep/export columns
are all made from that declaration (fmtui.config.OPTIONS)."""

import csv
import dataclasses

import click
from test_cli import fmtui

from fmtui import cli
from fmtui.config import OPTIONS, RunConfig, format_value, number, option, options_of, parse_field
from fmtui.runfolder.export import export_runs
from fmtui.runfolder.read import RunRecord
from fmtui.sweep import SweepRun
from fmtui.widgets import config_form

DEFAULTS = RunConfig()


def option_params(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and p.name in OPTIONS]


def test_every_field_but_data_dir_is_a_declared_option_whose_default_parses():
    assert list(OPTIONS) == [f.name for f in dataclasses.fields(RunConfig) if f.name != "data_dir"]
    for name, opt in OPTIONS.items():
        assert opt.help and opt.metavar and opt.cli == name.replace("_", "-")
        assert parse_field(name, format_value(getattr(DEFAULTS, name))) == getattr(DEFAULTS, name)


def test_train_has_every_option_in_field_order_and_help_shows_the_dataclass_default():
    params = option_params(cli.train)
    assert [p.opts[0] for p in params] == [f"--{o.cli}" for o in OPTIONS.values()]
    for p in params:
        opt = OPTIONS[p.name]
        default = format_value(getattr(DEFAULTS, p.name))
        if opt.flag:  # one spelling in train and sweep: --x [yes|no], --x alone = yes, --no-x = no
            assert p.metavar == f"[{opt.metavar}]" and p.flag_value == "yes" and not p.is_flag
            assert p.help.startswith(opt.help) and p.help.endswith(f"[{default}]")
            assert any(q.opts == [f"--no-{opt.cli}"] and q.hidden for q in cli.train.params)
        else:
            assert p.help == f"{opt.help} [{default}]"
            assert p.make_metavar(click.Context(cli.train)) == opt.metavar
    assert next(p for p in params if p.name == "lr").help == "Learning rate [0.01]"


def test_a_bad_value_is_named_once_by_click_and_explained_by_the_parser():
    result = fmtui("--no-ui", "train", "--lr", "0")
    assert result.exit_code == 2
    assert result.stderr == "Error: Invalid value for '--lr': must be > 0, got 0 (see fmtui train --help)\n"


def test_sweep_takes_a_list_of_every_option():
    params = option_params(cli.sweep)
    assert [p.opts[0] for p in params] == [f"--{o.cli}" for o in OPTIONS.values()]
    for p in params:
        metavar = f"[{OPTIONS[p.name].metavar}]" if OPTIONS[p.name].flag else OPTIONS[p.name].metavar
        assert p.multiple and p.metavar == f"{metavar}[,...]"
    assert all(f"[{format_value(getattr(DEFAULTS, p.name))}] (a list to sweep" in p.help for p in params)


def test_form_rows_are_the_options_with_a_label():
    rows = [o.name for o in config_form.FIELDS]
    assert set(rows) == {name for name, o in OPTIONS.items() if o.label}
    assert rows.index("val_split") == rows.index("epochs") + 1  # form_after; the CLI keeps the field order
    assert config_form.CHOICES["batch_norm"] == ("no", "yes")
    assert config_form.CHOICES["norm"] == OPTIONS["norm"].choices


def test_a_new_field_appears_on_the_command_line_in_the_form_and_in_the_sweep_and_export_columns(monkeypatch, tmp_path):
    warmup = option(0, "Warm-up epochs", parse=number(int, low=0), metavar="N", label="warm-up", hint="at low lr")
    Wider = dataclasses.make_dataclass("Wider", [("warmup", int, warmup)], bases=(RunConfig,))
    monkeypatch.setitem(OPTIONS, "warmup", options_of(Wider)["warmup"])
    monkeypatch.setattr(cli, "D", Wider())

    for multiple in (False, True):
        command = click.command()(cli.run_options(multiple=multiple)(lambda **values: None))
        (param,) = [p for p in command.params if p.name == "warmup"]
        assert param.opts == ["--warmup"] and param.help.startswith("Warm-up epochs [0]")
    row = config_form.form_rows()[-1]
    assert (row.name, row.label, row.hint) == ("warmup", "warm-up", "at low lr")
    assert parse_field("warmup", "3") == 3

    summary = SweepRun(Wider(warmup=2), tmp_path / "run", "completed", [], 1.0).summary_row(["warmup"])
    assert summary["warmup"] == 2 and summary["varying"] == "warmup=2"
    record = RunRecord(tmp_path / "run", Wider(warmup=2), metrics=[{"epoch": 1}])
    csv_path, _ = export_runs([record], tmp_path / "export")
    assert next(csv.DictReader(csv_path.open()))["warmup"] == "2"


def test_an_export_has_one_column_per_name_the_configured_lr_and_the_epochs(tmp_path):
    """The configured lr and each epoch's lr (a schedule moves it) both survive, under different names."""
    config = RunConfig(lr=0.01, schedule="cosine", batch_norm=True, hidden=(512, 256))
    rows = [{"epoch": 1, "lr": 0.005, "test_accuracy": 80.5}, {"epoch": 2, "lr": 0.0, "test_accuracy": 81.0}]
    csv_path, _ = export_runs([RunRecord(tmp_path / "run", config, metrics=rows)], tmp_path / "export")
    header = next(csv.reader(csv_path.open()))
    assert len(header) == len(set(header)) and {"lr", "epoch_lr", "batch_size", "val_split"} <= set(header)
    first, second = csv.DictReader(csv_path.open())
    assert (first["lr"], first["epoch_lr"], second["epoch_lr"]) == ("0.01", "0.005", "0.0")
    assert (first["batch_norm"], first["hidden"], first["val_loss"]) == ("true", "512,256", "")

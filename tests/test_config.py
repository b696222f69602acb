"""RunConfig defaults and the field parsers shared by the CLI and the TUI form."""

import pytest

from fmtui.config import ConfigError, RunConfig, format_value, parse_field

pytestmark = pytest.mark.engine


def test_defaults_are_the_lecture_step_by_step_config():
    cfg = RunConfig()
    assert (cfg.model, cfg.hidden, cfg.norm, cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs) == (
        "mlp",
        (256,),
        "symmetric",
        "sgd",
        0.01,
        64,
        5,
    )


@pytest.mark.parametrize(
    "field,text,value",
    [
        ("lr", "1e-5", 1e-5),
        ("hidden", "512, 256", (512, 256)),
        ("norm", "ZSCORE", "zscore"),
        ("batch_size", "1024", 1024),
        ("batch_norm", "yes", True),
        ("val_split", "0.1", 0.1),
    ],
)
def test_parsers_accept_what_users_type(field, text, value):
    assert parse_field(field, text) == value


@pytest.mark.parametrize(
    "field,text,reason",
    [
        ("lr", "-1", "must be > 0"),
        ("lr", "abc", "not a number"),
        ("lr", "inf", "finite"),
        ("epochs", "0", ">= 1"),
        ("batch_size", "0", ">= 1"),
        ("hidden", "12,x", "'x' is not a positive integer"),
        ("hidden", "", "expected sizes"),
        ("dataset", "cifar100", "choose from"),
        ("dropout", "1", "< 1"),
        ("epochs", "2.5", "not an integer"),
    ],
)
def test_parsers_reject_with_one_line_reason(field, text, reason):
    with pytest.raises(ConfigError, match=reason) as info:
        parse_field(field, text)
    assert "\n" not in str(info.value)


def test_round_trip_through_dict_and_text():
    cfg = RunConfig(hidden=(512, 256), lr=3e-4, optimizer="adamw", batch_norm=True)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    for name in ("hidden", "lr", "batch_norm"):
        assert parse_field(name, format_value(getattr(cfg, name))) == getattr(cfg, name)


def test_validate_checks_combinations():
    with pytest.raises(ConfigError, match="nesterov"):
        RunConfig(nesterov=True).validate()
    RunConfig(nesterov=True, momentum=0.9).validate()


def test_config_error_carries_the_field_and_the_reason():
    with pytest.raises(ConfigError) as info:
        parse_field("batch_size", "0")
    assert (info.value.field, info.value.reason) == ("batch_size", "must be >= 1, got 0")
    assert str(info.value) == "--batch-size: must be >= 1, got 0"
    with pytest.raises(ConfigError) as info:
        RunConfig(lr=0.0).validate()
    assert (info.value.field, info.value.reason, str(info.value)) == (
        "lr",
        "must be > 0, got 0",
        "--lr: must be > 0, got 0",
    )
    with pytest.raises(ConfigError) as info:
        RunConfig(nesterov=True).validate()
    assert info.value.field is None and str(info.value) == info.value.reason  # a combination: no single field


def test_a_sweeps_summary_lists_the_values_it_sweeps_not_the_first_runs():
    base = RunConfig(model="softmax", batch_size=1024, epochs=1)
    grid = [base.replace(norm=n, lr=lr, epochs=e) for n in ("none", "zscore") for lr in (0.01, 0.1) for e in (1, 2)]
    assert base.summary() == "fashion-mnist · softmax · norm symmetric · sgd lr 0.01 · batch 1024 · 1 epoch"
    assert grid[0].summary(grid) == (
        "fashion-mnist · softmax · norm none,zscore · sgd lr 0.01,0.1 · batch 1024 · 1,2 epochs"
    )
    mixed = [base, base.replace(model="mlp", activation="gelu")]
    assert "· softmax,mlp 256 gelu ·" in base.summary(mixed)

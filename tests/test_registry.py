"""The model and dataset registry (fmtui.registry): a model added there alone is a --model choice, a Model form entry,
costed by the memory check and trained for real; the limits of a model's hidden sizes are checked before anything is
allocated. Tests carry their own tier marker (engine, cli or app)."""

from __future__ import annotations

import json

import pytest
import torch
from pilot import sync, text_of, wait_for
from test_cli import fmtui
from torch import nn

from fmtui import registry, resources
from fmtui.config import OPTIONS, ConfigError, RunConfig, applies, parse_field
from fmtui.registry import ModelSpec

engine, cli, app = pytest.mark.engine, pytest.mark.cli, pytest.mark.app


def toy_net(cfg: RunConfig, shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """Pixels -> one hidden layer of cfg.hidden[0] tanh units, without biases (no built-in model has that) -> classes."""
    c, h, w = shape
    return nn.Sequential(
        nn.Flatten(), nn.Linear(c * h * w, cfg.hidden[0], bias=False), nn.Tanh(), nn.Linear(cfg.hidden[0], n_classes)
    )


def toy_activations(cfg: RunConfig, shape: tuple[int, int, int], n_classes: int) -> tuple[int, int]:
    c, h, w = shape
    return c * h * w + 3 * cfg.hidden[0] + 2 * n_classes, c * h * w + 7 * cfg.hidden[0]


TOY = ModelSpec(
    "toy",
    "toy net",
    toy_net,
    toy_activations,
    describe=lambda cfg, shape, n: f"toy {shape[0] * shape[1] * shape[2]}-{cfg.hidden[0]}-{n} tanh",
    label=lambda cfg: f"toy{cfg.hidden[0]}",
    options=frozenset({"hidden"}),
    max_depth=1,
    max_width=512,
)


@pytest.fixture
def toy():
    """The toy model, registered for one test (and only through the registry)."""
    registry.register(TOY)
    try:
        yield TOY
    finally:
        registry.unregister(TOY.name)


@engine
def test_a_model_added_to_the_registry_is_a_choice_with_its_label_and_options(toy):
    assert "toy" in OPTIONS["model"].choices and parse_field("model", "TOY") == "toy"
    cfg = RunConfig(model="toy", hidden=(32,)).validate()
    assert registry.model_label(cfg) == "toy32" and "toy32" in cfg.summary()
    assert applies("hidden", "toy", "sgd") and not applies("activation", "toy", "sgd")
    assert not applies("batch_norm", "toy", "sgd")
    with pytest.raises(ConfigError, match="at most 1 hidden layers for --model toy"):
        RunConfig(model="toy", hidden=(32, 32)).validate()
    registry.unregister("toy")
    try:
        assert "toy" not in OPTIONS["model"].choices
        with pytest.raises(ConfigError, match="unknown value 'toy'; choose from softmax, mlp, cnn$"):
            parse_field("model", "toy")
    finally:
        registry.register(TOY)


@cli
def test_a_model_added_to_the_registry_is_offered_and_trained_by_the_command_line(toy, tiny_data, tmp_path):
    refused = fmtui("--no-ui", "train", "--model", "nope", "--data-dir", tiny_data)
    assert refused.exit_code == 2 and "choose from softmax, mlp, cnn, toy" in refused.stderr
    out = tmp_path / "run"
    args = ("--data-dir", tiny_data, "--epochs", 2, "--batch-size", 32, "--lr", 0.1, "--hidden", 16, "--out", out)
    result = fmtui("--no-ui", "train", "--model", "toy", "--json", *args)
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["model"] == "toy 784-16-10 tanh" and events[0]["params"] == 784 * 16 + 16 * 10 + 10
    assert events[-1]["status"] == "completed" and events[-1]["final"]["test_accuracy"] > 50  # it learned, for real
    state = torch.load(out / "model.pt", weights_only=True)
    assert state["1.weight"].shape == (16, 784) and "1.bias" not in state  # the toy's own layers, saved


@engine
def test_the_memory_check_costs_a_registered_model_by_its_own_estimate(toy, monkeypatch):
    cfg = RunConfig(model="toy", hidden=(100,), batch_size=50)
    need = resources.estimate(cfg, (1, 28, 28), 10, (600, 200), "cpu")
    train, evaluation = toy_activations(cfg, (1, 28, 28), 10)
    assert need.params == 784 * 100 + 100 * 10 + 10
    assert need.activations == resources.FLOAT * max(resources.BACKWARD * 50 * train, 600 * evaluation)
    monkeypatch.setattr(resources, "free_memory", lambda device: need.total - 1)
    with pytest.raises(ConfigError, match="the run would need about"):
        resources.check_memory(cfg, (1, 28, 28), 10, (600, 200), torch.device("cpu"))
    monkeypatch.setattr(resources, "free_memory", lambda device: need.total)
    assert resources.check_memory(cfg, (1, 28, 28), 10, (600, 200), torch.device("cpu")) == need


@app
@sync
async def test_a_model_added_to_the_registry_is_in_the_model_form(toy, tiny_data):
    from fmtui.app import make_app

    app = make_app(RunConfig(data_dir=str(tiny_data), hidden=(24,)))
    async with app.run_test(size=(120, 50)) as pilot:
        form = app.form
        await pilot.pause()
        select = form.query_one("#f-model")
        assert "toy" in [value for _, value in select._options]
        select.value = "toy"
        await wait_for(pilot, lambda: "toy 784-24-10 tanh" in text_of(app, "#model-summary"))
        assert f"{784 * 24 + 24 * 10 + 10:,} parameters" in text_of(app, "#model-summary")
        assert form.query_one("#f-activation").disabled and not form.query_one("#f-hidden").disabled
        assert form.read()[0].model == "toy"


@engine
def test_hidden_sizes_beyond_the_models_limits_are_refused_before_anything_is_built():
    with pytest.raises(ConfigError) as refused:
        RunConfig(hidden=(8,) * 20_000).validate()
    assert str(refused.value) == "--hidden: at most 64 hidden layers for --model mlp, got 20,000"
    RunConfig(hidden=(8,) * 64).validate()
    with pytest.raises(ConfigError, match="--hidden: layers of at most 65536 units for --model mlp, got 65537"):
        RunConfig(hidden=(65537,)).validate()
    RunConfig(model="softmax", hidden=(8,) * 20_000).validate()  # a softmax regression has no hidden layers


@cli
def test_a_config_file_with_20000_hidden_layers_is_one_line_and_exit_2(tmp_path, tiny_data):
    """Issue 18 point 10: it used to be accepted, and Ctrl+C then took about 40 s."""
    (tmp_path / "config.json").write_text(json.dumps(RunConfig(hidden=(4,) * 20_000).to_dict()))
    result = fmtui("--no-ui", "train", "--config", tmp_path, "--data-dir", tiny_data)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "at most 64 hidden layers for --model mlp, got 20,000" in result.stderr and not (tmp_path / "runs").exists()

"""What users meet around the install: a torchvision that does not fit torch, and the README's model.pt example."""

import importlib.abc
import re
import sys
from pathlib import Path

import pytest
from test_cli import fmtui, train_tiny

pytestmark = pytest.mark.cli

README = Path(__file__).resolve().parents[1] / "README.md"


class MixedInstall(importlib.abc.MetaPathFinder):
    """Imports torchvision as a CUDA build does beside a CPU-only torch (or any two that do not match)."""

    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "torchvision":
            raise RuntimeError("operator torchvision::nms does not exist")
        return None


def test_a_torchvision_that_does_not_fit_torch_is_one_line_with_the_fix(tiny_data, monkeypatch):
    """Where torchvision is needed: CIFAR-10 (read through it) and downloads. The MNIST family's files on disk
    are read without it (fmtui.idx), so such an install still trains on them."""
    for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [MixedInstall(), *sys.meta_path])
    assert fmtui("--no-ui", "train", "--data-dir", tiny_data, "--epochs", 1, "--model", "softmax").exit_code == 0
    result = fmtui("--no-ui", "train", "--data-dir", tiny_data, "--epochs", 1, "--dataset", "cifar10")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "(operator torchvision::nms does not exist)" in result.stderr
    assert "torch and torchvision must be a matching pair from the same place" in result.stderr


def readme_example() -> str:
    """The Python block of README's "Using model.pt outside fmtui"."""
    section = README.read_text().split("### Using model.pt outside fmtui", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S)[1]


def test_the_readme_example_predicts_with_model_pt_outside_fmtui(tiny_data, tmp_path, monkeypatch):
    import torch
    from torchvision import transforms

    from fmtui.data import load_dataset

    run = tmp_path / "run"
    assert train_tiny(tiny_data, "--norm", "zscore", "--out", run).exit_code == 0  # the lecture's 784-256-10 relu
    data = load_dataset("fashion-mnist", tiny_data)
    example = readme_example()
    assert len(example.strip().splitlines()) <= 8 and "fmtui" not in example
    monkeypatch.chdir(run)
    scope = {"images": data.x_test[:, 0]}  # what the example calls `images`: uint8 (N, 28, 28), as read from files
    exec(compile(example, "README.md", "exec"), scope)
    saved = torch.load(run / "predictions.pt", weights_only=True)["probs"]  # what fmtui computed at the end
    assert torch.allclose(scope["probs"], saved, atol=1e-5)

    shift, scale = scope["shift"], scope["scale"]
    assert scale == pytest.approx(data.x_train.double().std(correction=0).item())  # the population std, 0..255 units
    to_tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize([shift / 255], [scale / 255])])
    image = data.x_test[0]  # (1, 28, 28)
    assert torch.allclose(to_tensor(image[0].numpy()), (image.float() - shift) / scale, atol=1e-5)

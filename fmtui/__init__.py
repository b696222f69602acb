"""fmtui: a terminal dashboard for training small networks on Fashion-MNIST (no torch/textual import here)."""

__version__ = "0.1.0"

"""System metrics as a few lines: CPU and memory, then one line per GPU, each with a sparkline of its recent use.

    cpu   37% ▂▃▅▇█▇▅▃   ram 9.1/31.2 GiB · process 0.8 GiB
    gpu0  97% ▅▇█████   mem 12.1/79.6 GiB · 64°C · 312 W · NVIDIA H100 80GB HBM3

Given rows of fmtui.sysmetrics (`show(rows)`), newest last: the numbers are the newest row's, the sparklines the
last rows' (as many as fit). A reading a row does not have is left out, never shown as 0; a machine without a
GPU reading has no GPU line. Plain characters carry it all (no colour needed: NO_COLOR and 16 colours read the
same).
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

SPARKS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 12
"""Samples in a sparkline at most (fewer when the line is narrow)."""


def spark(values: list[float], width: int) -> str:
    """Percentages (0..100) as block characters, the last `width` of them."""
    shown = values[-width:] if width > 0 else []
    return "".join(SPARKS[min(int(max(v, 0.0) / 100 * len(SPARKS)), len(SPARKS) - 1)] for v in shown)


def gib(n: float) -> str:
    return f"{n / 2**30:.1f}"


def memory(used: float | None, total: float | None) -> str:
    if used is None:
        return ""
    return f"{gib(used)}/{gib(total)} GiB" if total else f"{gib(used)} GiB"


def host_line(rows: list[dict], width: int) -> Text:
    """The CPU's use with its sparkline, the machine's memory and the process's."""
    last = rows[-1]
    parts = []
    if "cpu" in last:
        history = [r["cpu"] for r in rows if "cpu" in r]
        parts.append(f"{last['cpu']:3.0f}% {spark(history, min(SPARK_WIDTH, max(width - 40, 0))):<{SPARK_WIDTH}}")
    ram = memory(last.get("ram_used"), last.get("ram_total"))
    facts = [f"ram {ram}" if ram else "", f"process {gib(last['rss'])} GiB" if "rss" in last else ""]
    parts.append(" · ".join(f for f in facts if f))
    return Text(f"{'cpu':<6}" + "  ".join(p for p in parts if p), no_wrap=True, overflow="ellipsis", end="")


def gpu_line(rows: list[dict], gpu: dict, width: int) -> Text:
    """One GPU's use with its sparkline, memory, temperature, power and name (what it reported)."""
    index = gpu["index"]
    history = [g["util"] for r in rows for g in r.get("gpus", []) if g["index"] == index and "util" in g]
    use = (
        f"{gpu['util']:3.0f}% {spark(history, min(SPARK_WIDTH, max(width - 40, 0))):<{SPARK_WIDTH}}"
        if "util" in gpu
        else ""
    )
    facts = [
        f"mem {memory(gpu.get('mem_used'), gpu.get('mem_total'))}" if "mem_used" in gpu else "",
        f"{gpu['temp']:.0f}°C" if "temp" in gpu else "",
        f"{gpu['power']:.0f} W" if "power" in gpu else "",
        gpu.get("name", ""),
    ]
    text = f"{f'gpu{index}':<6}" + "  ".join(p for p in (use, " · ".join(f for f in facts if f)) if p)
    return Text(text, no_wrap=True, overflow="ellipsis", end="")


def system_lines(rows: list[dict], width: int) -> list[Text]:
    """The lines to show for these rows (newest last): the host's, then each GPU of the newest row."""
    if not rows:
        return [Text("no system metrics yet", style="dim", end="")]
    lines = [host_line(rows, width)]
    lines += [gpu_line(rows, gpu, width) for gpu in rows[-1].get("gpus", [])]
    return lines


def peak_memory(peaks: dict | None, device: str) -> str:
    """The Runs pane's `peak mem` cell: the most memory a run's GPUs held when it trained on a GPU (`12.1G gpu`: all
    processes' use, as NVML counts it), else the most its process held (`0.8G`); "-" without system metrics."""
    peaks = peaks or {}
    gpu = [g["mem_used"] for g in peaks.get("gpus", []) if "mem_used" in g]
    if device.startswith("cuda") and gpu:
        return f"{gib(max(gpu))}G gpu"
    return f"{gib(peaks['rss'])}G" if "rss" in peaks else "-"


class SystemView(Widget):
    """The newest system metrics in a few lines (see the module's docstring); `show(rows)` redraws them."""

    DEFAULT_CSS = "SystemView { height: auto; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rows: list[dict] = []

    def show(self, rows: list[dict]) -> None:
        self.rows = rows[-SPARK_WIDTH:]  # all a drawing uses
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(system_lines(self.rows, width))

    def render(self) -> Text:
        return Text("\n", end="").join(system_lines(self.rows, self.content_size.width))

"""How runs are told apart wherever several are drawn: a colour and a marker per run (the Runs pane's curves, its
list, the hyperparameter view's scatter), and the colours of a run's health."""

from __future__ import annotations

from rich.text import Text

# distinct, 256-colour-safe colours (plotext name, the same colour for rich); markers differ too so
# curves stay apart with NO_COLOR
PALETTE = [
    ("cyan", "cyan"),
    ("orange", "color(208)"),
    ("green", "green"),
    ("magenta", "magenta"),
    ("yellow", "yellow"),
    ("blue", "blue"),
    ("red", "red"),
    ("white", "white"),
]
MARKERS = ["braille", "dot", "+", "x", "o", "*", "~", "#", "@", "%", "$", "&", "=", "^", "?", "!"]
MARKER_CHARS = {"braille": "⣿", "dot": "•"}


def look(i: int) -> tuple[str, str, str]:
    """The i-th selected run's (plotext colour, rich colour, plotext marker): the marker cycles through 16 and
    the colour moves on by one more every 16 runs, so no two of the first 128 runs are drawn alike (and the
    first 16 differ by marker alone, for NO_COLOR)."""
    plot_colour, rich_colour = PALETTE[(i + i // len(MARKERS)) % len(PALETTE)]
    return plot_colour, rich_colour, MARKERS[i % len(MARKERS)]


def mark(i: int) -> Text:
    """The i-th selected run's marker in its colour: in the legend and in the list's first column."""
    _, colour, marker = look(i)
    return Text(MARKER_CHARS.get(marker, marker), style=colour, end="")


HEALTH_STYLES = {"error": "red", "warning": "yellow"}
"""The status cell of a run whose health is not ok (fmtui.health): red when it cannot be learning."""

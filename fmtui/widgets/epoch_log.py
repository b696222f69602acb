"""The Train pane's epoch log: plain lines kept as text and wrapped anew at every width, following the end.

A RichLog renders each line once, at the width of the moment: after a resize its old lines stayed cut or
scrolled sideways, and it stopped following the new ones. Here the lines are data, wrapped between their
comma-separated phrases ("Test Loss: 0.4600") whenever the width changes.
"""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.widget import Widget

from fmtui.text import safe_text


def wrap_phrases(line: str, width: int) -> list[str]:
    """The line in rows of at most `width` cells, broken after the commas between phrases; a phrase longer than
    a row is broken between words, a word longer than a row anywhere."""
    width = max(width, 1)
    phrases = line.split(", ")
    rows: list[str] = []
    row = ""
    for phrase in [p + "," for p in phrases[:-1]] + phrases[-1:]:
        if row and len(row) + 1 + len(phrase) <= width:
            row += " " + phrase
            continue
        if row:
            rows.append(row)
        row = phrase
        while len(row) > width:
            cut = row.rfind(" ", 1, width + 1)
            cut = cut if cut > 0 else width
            rows.append(row[:cut].rstrip())
            row = row[cut:].lstrip()
    rows.append(row)
    return rows


class _Rows(Widget):
    """The log's lines, wrapped at whatever width this widget has (its height follows)."""

    DEFAULT_CSS = "_Rows { height: auto; }"

    def __init__(self, lines: deque[str]) -> None:
        super().__init__()
        self.lines = lines
        self.lines_written = 0
        """Counts writes, so the wrapped rows are computed once per width and content."""
        self._cache: tuple[int, int, list[str]] = (-1, -1, [])

    def rows(self, width: int) -> list[str]:
        if self._cache[:2] != (width, self.lines_written):
            self._cache = (width, self.lines_written, [r for line in self.lines for r in wrap_phrases(line, width)])
        return self._cache[2]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.rows(width))

    def render(self) -> Text:
        return Text("\n".join(self.rows(self.size.width)), no_wrap=True, overflow="crop")


class EpochLog(VerticalScroll, can_focus=False):
    """Lines written by the app (the headless mode's own), wrapped to the width; it follows the last line
    unless the user has scrolled up."""

    DEFAULT_CSS = "EpochLog { overflow-x: hidden; overflow-y: auto; }"

    def __init__(self, max_lines: int = 1000, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lines: deque[str] = deque(maxlen=max_lines)
        """What was written, unwrapped (text from the engine and files: data, never markup)."""
        self._rows = _Rows(self.lines)

    def compose(self) -> ComposeResult:
        yield self._rows

    def on_mount(self) -> None:
        self.anchor()  # Textual keeps an anchored view at the end through new lines and resizes

    def write(self, line: str) -> None:
        self.lines.extend([safe_text(part) for part in str(line).splitlines()] or [""])  # folder strings are data
        self._changed()

    def clear(self) -> None:
        self.lines.clear()
        self._changed()

    def _changed(self) -> None:
        self._rows.lines_written += 1
        self._rows.refresh(layout=True)

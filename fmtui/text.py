"""Two small text helpers every layer uses: `safe_text` (any string from a run folder or a file name, made safe
for a terminal) and `plural`. Standard library only.

A run folder is input from other people (a shared runs folder, a colleague's folder opened with --runs-dir):
its folder names, messages, hints and config strings may hold escape sequences that retitle or clear a
terminal (ESC [ 2 J, OSC 0 ; ... BEL), C1 controls, or bidirectional overrides that make text read other
than it is. Everything such a string shows goes through `safe_text` first: in `fmtui runs`, in errors, and
in every pane of the dashboard.
"""

from __future__ import annotations


def safe_text(text: object) -> str:
    """str(text) with every character that is not printable shown as its Python escape: C0 and C1 controls
    (ESC becomes \\x1b, a newline \\n), DEL, and the Unicode format characters (bidi overrides such as
    U+202E, zero-width joiners) all become visible backslash sequences. Printable text is left as it is, and
    the result is printable, so applying it twice changes nothing."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in s)


def plural(n: int, word: str) -> str:
    """`1 epoch`, `2 epochs`."""
    return f"{n} {word}{'s' if n != 1 else ''}"

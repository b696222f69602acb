"""Rewrite the field tables of docs/events.md from fmtui.events_schema.JSON_EVENTS (tests/test_events_schema.py checks them)."""

import re
from pathlib import Path

from fmtui.events_schema import json_events_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "events.md"
BEGIN, END = "<!-- schema: made by scripts/events_doc.py -->", "<!-- end of schema -->"

if __name__ == "__main__":
    text = DOC.read_text()
    tables = f"{BEGIN}\n\n{json_events_markdown()}\n{END}"
    DOC.write_text(re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: tables, text, flags=re.S))

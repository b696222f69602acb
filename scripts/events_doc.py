"""Write the --json schema's two documents from fmtui/events_schema.py: the field tables of docs/events.md and
docs/events.schema.json (a JSON Schema). `--check`: write nothing, exit 1 naming each file that is stale
(tests/test_events_schema.py runs it)."""

import re
import sys
from pathlib import Path

from fmtui.events_schema import json_events_markdown, json_schema_text

DOCS = Path(__file__).resolve().parents[1] / "docs"
DOC, SCHEMA = DOCS / "events.md", DOCS / "events.schema.json"
BEGIN, END = "<!-- schema: made by scripts/events_doc.py -->", "<!-- end of schema -->"


def documents() -> dict[Path, str]:
    """Each file's text as it should be."""
    tables = f"{BEGIN}\n\n{json_events_markdown()}\n{END}"
    doc = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: tables, DOC.read_text(), flags=re.S)
    return {DOC: doc, SCHEMA: json_schema_text()}


def main(check: bool) -> int:
    stale = [path for path, text in documents().items() if not path.is_file() or path.read_text() != text]
    if check:
        for path in stale:
            print(f"{path.relative_to(DOCS.parent)} is stale: run python scripts/events_doc.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in documents().items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(check="--check" in sys.argv[1:]))

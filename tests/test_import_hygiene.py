"""The engine never imports Textual, and `fmtui --help` never imports torch (checked in subprocesses)."""

import subprocess
import sys


def modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_engine_imports_without_textual():
    loaded = modules_after("import fmtui.engine, fmtui.data, fmtui.models, fmtui.runs, fmtui.headless")
    assert "torch" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("textual", "textual_plotext", "plotext")}


def test_help_does_not_import_torch():
    code = (
        "import sys\nfrom fmtui.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit as e:\n"
        "    assert e.code == 0\n"
    )
    loaded = modules_after(code)
    assert "fmtui.cli" in loaded and "torch" not in loaded and "textual" not in loaded

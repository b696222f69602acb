"""Import hygiene: no import cycle in fmtui/, the engine side never loads the UI or click, `--help` never loads torch.

The import-linter contracts in pyproject.toml (run by the README's test command) check the static graph;
the subprocess tests here check what an import really loads.
"""

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: import-linter depends on tomli there
    import tomli as tomllib

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[1]
# The modules that must run without a terminal UI or click: the training side of fmtui.
ENGINE_SIDE = (
    "batched",
    "data",
    "datacache",
    "datafiles",
    "engine",
    "errors",
    "events",
    "events_schema",
    "graphs",
    "health",
    "idx",
    "install_hint",
    "lrfind",
    "models",
    "pins",
    "ranking",
    "recorder",
    "registry",
    "report",
    "resources",
    "results",
    "resume",
    "runfolder",
    "runquery",
    "session",
    "signals",
    "stacking",
    "streams",
    "sweep",
    "sysmetrics",
    "tensorboard",
    "text",
    "ticks",
    "tune.folder",
    "tune.space",
    "tune.study",
    "tune.trial",
    "warm",
    "watch",
    "weights",
)
UI_PACKAGES = ("textual", "textual_plotext", "plotext")


def modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def engine_side() -> list[str]:
    """ENGINE_SIDE modules (or packages) that exist in this tree (tune.study: fmtui/tune/study.py)."""
    here = ROOT / "fmtui"
    path = lambda m: here / m.replace(".", "/")  # noqa: E731
    return [
        f"fmtui.{m}" for m in ENGINE_SIDE if path(m).with_suffix(".py").is_file() or (path(m) / "__init__.py").is_file()
    ]


def import_graph(package: str = "fmtui") -> dict[str, set[str]]:
    """A package's modules and what each imports from it, late imports inside functions included.

    Imports under `if TYPE_CHECKING:` never run, so they make no cycle and are left out."""
    graph = grimp.build_graph(package, exclude_type_checking_imports=True, cache_dir=None)
    return {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that ends where it starts) per strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(m: str) -> None:  # Tarjan's algorithm; fmtui is small enough for recursion
        index[m] = low[m] = len(index)
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in stack:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            group = set()
            while True:
                top = stack.pop()
                group.add(top)
                if top == m:
                    break
            if len(group) > 1 or m in graph.get(m, ()):
                groups.append(group)

    for m in sorted(graph):
        if m not in index:
            visit(m)
    return [_path_around(graph, group) for group in groups]


def _path_around(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """The shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for m in frontier:
            for n in sorted(graph[m] & group):
                if n == start:
                    return paths[m] + [start]
                if n not in paths:
                    paths[n] = paths[m] + [n]
                    nxt.append(n)
        frontier = nxt
    raise AssertionError(f"no path around {group}")


def test_cycle_finder_sees_late_imports_and_ignores_type_checking_ones(tmp_path, monkeypatch):
    pkg = tmp_path / "cyclic_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import cyclic_pkg.b\n")
    (pkg / "b.py").write_text("def late():\n    from cyclic_pkg import c\n")
    (pkg / "c.py").write_text("from cyclic_pkg import a\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import cyclic_pkg.e\n")
    (pkg / "e.py").write_text("import cyclic_pkg.d\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cycles(import_graph("cyclic_pkg")) == [["cyclic_pkg.a", "cyclic_pkg.b", "cyclic_pkg.c", "cyclic_pkg.a"]]
    assert cycles({"x": {"y"}, "y": {"z"}, "z": set(), "s": {"s"}}) == [["s", "s"]]


def test_no_import_cycle_in_fmtui():
    found = [" -> ".join(c) for c in cycles(import_graph())]
    assert not found, "import cycles in fmtui/:\n" + "\n".join(found)


def test_engine_side_imports_without_ui_or_click():
    loaded = modules_after("import " + ", ".join(engine_side()))
    assert "torch" in loaded
    assert not {m for m in loaded if m.split(".")[0] in (*UI_PACKAGES, "click")}


def test_headless_imports_without_textual():
    loaded = modules_after("import fmtui.headless")
    assert not {m for m in loaded if m.split(".")[0] in UI_PACKAGES}


def test_app_does_not_import_click():
    assert "click" not in modules_after("import fmtui.app")


def test_help_does_not_import_torch():
    code = (
        "import sys\nfrom fmtui.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit as e:\n"
        "    assert e.code == 0\n"
    )
    loaded = modules_after(code)
    assert "fmtui.cli" in loaded and "torch" not in loaded and "textual" not in loaded


def test_the_engine_side_contract_names_every_engine_side_module():
    """lint-imports refuses a contract that names a missing module, so the list follows the tree."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (engine,) = [c for c in contracts if "click" in c.get("forbidden_modules", ())]
    assert sorted(engine["source_modules"]) == engine_side()
    assert set(engine["forbidden_modules"]) == {*UI_PACKAGES, "click"}

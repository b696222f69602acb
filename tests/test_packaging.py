"""The source distribution, built from a copy of this tree by setuptools itself: it holds every local file
README.md links to (the screenshots among them), README's own anchors lead to its headings, and its metadata
carries the classifiers, Python versions from requires-python's lower bound on, and no made-up project URL."""

import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.cli

ROOT = Path(__file__).resolve().parents[1]
LEFT_OUT = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", ".*_cache", "runs", "build", "dist", ".gpu-data"
)
LINK = re.compile(r"\]\(([^)\s]+)\)")
"""A Markdown link's or image's target: [text](target), ![alt](target)."""
BUILD = "import sys; from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))"


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> dict[str, bytes]:
    """The sdist's files (path inside it -> bytes), its top folder left out."""
    tree = tmp_path_factory.mktemp("tree") / "fmtui"
    shutil.copytree(ROOT, tree, ignore=LEFT_OUT, symlinks=True)  # building writes fmtui.egg-info beside the code
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run([sys.executable, "-c", BUILD, out], cwd=tree, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    with tarfile.open(out / built.stdout.split()[-1]) as tar:
        files = [m for m in tar.getmembers() if m.isfile()]
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in files}


def readme_links() -> list[str]:
    return LINK.findall((ROOT / "README.md").read_text())


def local(target: str) -> bool:
    return not re.match(r"[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")


def test_every_local_file_readme_links_to_is_in_the_sdist(sdist):
    targets = sorted({t.split("#")[0] for t in readme_links() if local(t)})
    assert any(t.startswith("screenshots/") for t in targets) and "docs/events.md" in targets
    for target in targets:
        assert (ROOT / target).is_file(), f"README links to {target}, which is not in the tree"
        assert target in sdist, f"README links to {target}, which the sdist leaves out (MANIFEST.in)"


def slug(heading: str) -> str:
    """The anchor GitHub (and most Markdown renderers) give a heading: lower case, punctuation dropped."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readmes_own_anchors_lead_to_its_headings():
    text = (ROOT / "README.md").read_text()
    headings = {slug(h) for h in re.findall(r"^#+ (.*)$", text, re.M)}
    anchors = {t[1:] for t in readme_links() if t.startswith("#")}
    assert anchors and anchors <= headings, sorted(anchors - headings)


def test_the_sdists_metadata_has_classifiers_and_the_python_versions_it_requires(sdist):
    metadata = sdist["PKG-INFO"].decode()
    fields = re.findall(r"^([\w-]+): (.*)$", metadata.split("\n\n", 1)[0], re.M)
    classifiers = [v for k, v in fields if k == "Classifier"]
    lowest = re.fullmatch(r">=3\.(\d+)", dict(fields)["Requires-Python"])[1]
    minors = sorted(int(c.rsplit(".", 1)[1]) for c in classifiers if re.fullmatch(r"Programming .*:: 3\.\d+", c))
    assert minors == list(range(int(lowest), minors[-1] + 1)), "Python classifiers from requires-python's bound on"
    for needed in (
        "Environment :: Console",
        "Operating System :: POSIX :: Linux",
        "Programming Language :: Python :: 3",
    ):
        assert needed in classifiers
    assert "Topic :: Scientific/Engineering :: Artificial Intelligence" in classifiers
    assert dict(fields)["License-Expression"] == "MIT"
    assert not [v for k, v in fields if k == "Project-URL"], "no public home yet: no project URL (README)"

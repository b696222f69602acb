#!/usr/bin/env bash
# Install the lowest version of every dependency that pyproject.toml allows (its `>=` bounds, the test extra
# included) into a scratch venv, then run the README's checks there: ruff, ruff format, lint-imports, pytest
# (all but the SVG snapshot tests; see the end).
#
# torch and torchvision are not installed (each version is gigabytes): the scratch venv reuses an existing
# environment's copy through a .pth line that comes AFTER the scratch venv's own site-packages, so the scratch
# venv's old textual, rich, click, ... win over that environment's newer ones (what the scratch venv lacks is
# found there too, so check a wheel in a fresh venv for missing declarations). The minimum versions of torch
# and torchvision are argued from the APIs fmtui uses (README, "Dependencies"), not installed here.
#
#   scripts/check_min_versions.sh [pytest args...]
#   TORCH_PYTHON=path/to/venv/bin/python   the environment that has torch + torchvision [.venv/bin/python]
#   MIN_VENV=folder                        where the scratch venv goes [a new temporary folder]
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_PYTHON=${TORCH_PYTHON:-.venv/bin/python}
MIN_VENV=${MIN_VENV:-$(mktemp -d)/min-venv}

torch_site=$("$TORCH_PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# name==lower for every `name>=lower` requirement (torch and torchvision come from $TORCH_PYTHON)
pins=$("$TORCH_PYTHON" - <<'EOF'
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
for req in reqs:
    m = re.match(r"([A-Za-z0-9_.-]+)\s*(\[[^]]*\])?\s*[^;]*?>=\s*([^,;\s]+)", req)
    if m and m[1].lower() not in ("torch", "torchvision"):
        print(f"{m[1]}{m[2] or ''}=={m[3]}")
EOF
)
echo "+ minimum versions: $(echo $pins)"
"$TORCH_PYTHON" -m venv "$MIN_VENV"
pip_quiet() { "$MIN_VENV/bin/pip" install -q "$@" 2> >(grep -v "is ignored: it is neither a file" >&2); }
pip_quiet $pins
site=$("$MIN_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$torch_site" > "$site/zz-reuse-torch.pth"  # read after the venv's own packages: they win
pip_quiet --no-deps -e .
"$MIN_VENV/bin/python" - <<'EOF'
from importlib.metadata import version
import torch, torchvision
names = "torch torchvision textual textual-plotext plotext rich click numpy pytest pytest-textual-snapshot syrupy ruff"
names += " import-linter tensorboardX protobuf optuna"
print("+ installed:", ", ".join(f"{n} {version(n)}" for n in names.split()))
EOF
export PATH="$MIN_VENV/bin:$PATH"
# The SVG snapshots are pictures drawn by the Textual and Rich releases they were made with (older ones draw
# some screens differently): they are left out here, and run by the README's test command.
ruff check . && ruff format --check . && lint-imports && pytest -p no:cacheprovider -m "not snapshot" "$@"

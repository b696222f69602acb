"""`python -m fmtui` runs the same entry point as the `fmtui` console script."""

from fmtui.cli import main

main()

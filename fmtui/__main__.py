"""`python -m fmtui` runs the same entry point as the `fmtui` console script."""

import os
import signal

if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # ignored (`cmd &` in a script) stays ignored, as in main()
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))  # Ctrl+C while the CLI loads: quit as main() then does

from fmtui.cli import main  # noqa: E402

main()

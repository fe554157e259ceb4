"""``python -m hellomeme_core <command> [options]``: the command line (see :mod:`hellomeme_core.cli`)."""
from __future__ import annotations

import sys

from hellomeme_core.cli.main import main

if __name__ == "__main__":
    sys.exit(main())

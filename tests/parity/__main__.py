"""``python -m tests.parity <folder> [-k substring]``: one line per case output, then ``N passed, M failed``."""
from __future__ import annotations

import argparse
import sys

from tests.parity.fixture import default_parity_dir
from tests.parity.runner import main

parser = argparse.ArgumentParser(prog="python -m tests.parity", description=__doc__)
parser.add_argument("folder", nargs="?", default=str(default_parity_dir()), help="parity fixture folder (cases.json + safetensors)")
parser.add_argument("-k", dest="pattern", default=None, help="only cases whose name contains this")
ns = parser.parse_args()
sys.exit(main(ns.folder, ns.pattern))

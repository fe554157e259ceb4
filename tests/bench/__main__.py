"""Run every ``tests/bench/bench_*.py`` module's ``main()`` (or only those named on the command line)."""
from __future__ import annotations

import importlib
import pkgutil
import sys

import tests.bench as package

wanted = set(sys.argv[1:])
status = 0
for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
    short = info.name.removeprefix("bench_")
    if not info.name.startswith("bench_") or (wanted and short not in wanted and info.name not in wanted):
        continue
    print(f"=== {info.name}", flush=True)
    try:
        importlib.import_module(f"tests.bench.{info.name}").main()
    except Exception as exc:  # one broken benchmark must not hide the others' figures
        print(f"{info.name} failed: {type(exc).__name__}: {exc}", flush=True)
        status = 1
sys.exit(status)

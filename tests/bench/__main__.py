"""Run every ``tests/bench/bench_*.py`` module's ``main()`` (or only those named on the command line).

Names come first; options after them (``python -m tests.bench gpu --tiny --json out.json``) are left in
``sys.argv`` for the benchmarks that read options (``gpu``, ``video``). ``gpu`` (a whole video per precision)
``video`` (``bench_video_schedule``: the official video schedule against the previous path), ``batch`` and
``long_video`` (a long clip through the shipped workflow on real servers) run only when named.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys

import tests.bench as package

args = sys.argv[1:]
first_option = next((i for i, a in enumerate(args) if a.startswith("-")), len(args))
ALIASES = {"video": "video_schedule"}
wanted, options = {ALIASES.get(a, a) for a in args[:first_option]}, args[first_option:]
NAMED_ONLY = {"gpu", "video_schedule", "batch", "long_video"}  # whole-video runs, servers: only when asked for by name
status = 0
for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
    short = info.name.removeprefix("bench_")
    if not info.name.startswith("bench_") or (wanted and short not in wanted and info.name not in wanted):
        continue
    if not wanted and short in NAMED_ONLY:
        continue
    print(f"=== {info.name}", flush=True)
    sys.argv = [f"tests.bench.{info.name}", *options]
    try:
        importlib.import_module(f"tests.bench.{info.name}").main()
    except Exception as exc:  # one broken benchmark must not hide the others' figures
        print(f"{info.name} failed: {type(exc).__name__}: {exc}", flush=True)
        status = 1
sys.exit(status)

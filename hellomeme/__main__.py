"""``python -m hellomeme <command> [options]``.

Each command lives in its own module ``hellomeme/cmd_<name>.py`` exposing ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Commands are found by file name, so adding one
touches no other file.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

# Make ``hellomeme_core`` importable when run from anywhere (the extension folder is its parent).
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)


def _commands() -> dict[str, object]:
    import hellomeme

    found = {}
    for info in pkgutil.iter_modules(hellomeme.__path__):
        if info.name.startswith("cmd_"):
            found[info.name[4:]] = f"hellomeme.{info.name}"
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hellomeme", description="HelloMeme for ComfyUI: model files, motion extraction, demo.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name, module_name in sorted(_commands().items()):
        module = importlib.import_module(module_name)
        modules[name] = module
        p = sub.add_parser(name, help=getattr(module, "HELP", ""), description=getattr(module, "HELP", ""))
        module.add_arguments(p)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(modules[args.command].run(args) or 0)
    except BrokenPipeError:  # output piped into `head` and the like: not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``python -m hellomeme_core`` dispatcher.

Each command lives in its own module ``hellomeme_core/cli/cmd_<name>.py`` exposing ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Commands are found by file name, so adding one
touches no other file.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from types import ModuleType

PROG = "python -m hellomeme_core"
_COMMAND_PREFIX = "cmd_"


def commands() -> dict[str, str]:
    """Command name -> module name, for every ``cmd_<name>.py`` beside this file."""
    package = __name__.rsplit(".", 1)[0]
    path = importlib.import_module(package).__path__
    return {info.name[len(_COMMAND_PREFIX):]: f"{package}.{info.name}"
            for info in pkgutil.iter_modules(path) if info.name.startswith(_COMMAND_PREFIX)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="HelloMeme for ComfyUI: model files, motion extraction, demo.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules: dict[str, ModuleType] = {}
    for name, module_name in sorted(commands().items()):
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

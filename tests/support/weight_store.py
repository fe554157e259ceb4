"""One copy of each generated weight file per test session, hard-linked wherever a test asks for it.

A full HelloMeme version in the official layout is 0.8-1.6 GB even in fp16, and many test modules need one
in a folder of their own. Written once into the store and linked (a copy where links are refused), the
session's disk footprint stays one set per file kind instead of one per module.

The store is on only while ``HELLOMEME_TEST_WEIGHT_STORE`` names a folder (the test session sets it); benchmarks
and the command line write their files directly as before.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

STORE_ENV = "HELLOMEME_TEST_WEIGHT_STORE"

# Sizes of the files this process wrote into the store: a stored file whose size changed (a test truncated a
# linked copy in place) is written again instead of being handed out broken.
_written_sizes: dict[Path, int] = {}


def store_dir() -> Path | None:
    """The session's store, or None when the store is off."""
    value = os.environ.get(STORE_ENV, "").strip()
    return Path(value) if value else None


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + ".linking")
    staging.unlink(missing_ok=True)
    try:
        os.link(source, staging)
    except OSError:  # another file system, or links not allowed: a real copy
        shutil.copyfile(source, staging)
    os.replace(staging, target)  # replaces, never writes into, an existing file (which may be linked itself)


def materialize(target: Path, key: str, write: Callable[[Path], object]) -> Path:
    """``target`` holding what ``write(path)`` writes, written at most once per session under ``key``.

    ``write`` must produce the whole file at the path it is given; ``key`` names the content (repo, dtype, form).
    """
    store = store_dir()
    if store is None:
        write(target)
        return target
    stored = store / key
    if not (stored.is_file() and _written_sizes.get(stored) == stored.stat().st_size):
        stored.parent.mkdir(parents=True, exist_ok=True)
        write(stored)
        _written_sizes[stored] = stored.stat().st_size
    _link_or_copy(stored, target)
    return target

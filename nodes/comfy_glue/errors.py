"""Node names on core errors: the core says what is wrong, the node that ran it is named here."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from hellomeme_core.errors import HelloMemeError


@contextlib.contextmanager
def named_errors(node: str) -> Iterator[None]:
    """Re-raise a :class:`HelloMemeError` with ``node: `` in front (once), keeping its class and cause."""
    try:
        yield
    except HelloMemeError as exc:
        message = str(exc)
        if message.startswith(f"{node}:"):
            raise
        raise type(exc)(f"{node}: {message}") from exc

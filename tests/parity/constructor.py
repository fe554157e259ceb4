"""The ``constructor_args`` of a fixture module spec, honoured or refused, never silently dropped.

Most official constructor arguments are also visible in the weight shapes (channels, table lengths);
some are not (attention head counts). A builder ``take``s the arguments it passes to our loader,
``expect``s those it can compare with the loaded module, and ``finish`` fails the case for any argument
it did not handle, so a fixture at another configuration can never pass by accident.
"""
from __future__ import annotations

from typing import Any


class ConstructorArgsError(ValueError):
    """A fixture asks for a configuration our module does not have (or that the adapter cannot honour)."""


class ConstructorArgs:
    def __init__(self, spec: dict):
        self.official = (spec.get("official_class") or spec.get("official_function") or "?").rsplit(".", 1)[-1]
        self.args: dict[str, Any] = dict(spec.get("constructor_args") or {})
        self.used: set[str] = set()

    def take(self, *names: str, default: Any = None) -> Any:
        """The value of the first of ``names`` present (aliases of one argument), else ``default``."""
        present = [n for n in names if n in self.args]
        if len(present) > 1 and len({repr(self.args[n]) for n in present}) > 1:
            raise ConstructorArgsError(f"{self.official}: constructor_args give {present} with different values")
        self.used.update(present)
        return self.args[present[0]] if present else default

    def expect(self, name: str, actual: Any) -> None:
        """``name``, when given, must equal what the loaded module has (``actual``)."""
        if name not in self.args:
            return
        self.used.add(name)
        if self.args[name] != actual:
            raise ConstructorArgsError(
                f"{self.official}: constructor_args {name}={self.args[name]!r}, but the module loaded from the "
                f"weights has {actual!r}"
            )

    def ignore(self, name: str) -> None:
        """``name`` has no effect on the computation (e.g. a width of an input the module never reads)."""
        if name in self.args:
            self.used.add(name)

    def finish(self) -> None:
        unknown = sorted(set(self.args) - self.used)
        if unknown:
            given = ", ".join(f"{k}={self.args[k]!r}" for k in unknown)
            raise ConstructorArgsError(f"{self.official}: constructor_args {given} not supported by the parity adapter")

"""Parity runner: proves our modules compute the official function (see shared/parity/README.md)."""

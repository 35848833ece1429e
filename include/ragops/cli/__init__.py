"""The `ragops` command: a thin layer over the library (see the contract in DESIGN.md)."""

from __future__ import annotations

from typing import Callable

COMMANDS: dict[str, Callable] = {}


def command(name: str):
    """Register a sub-command handler: it returns a payload, or (payload, human text, exit code)."""

    def register(fn):
        COMMANDS[name] = fn
        return fn

    return register

"""The `ragops` command: a thin layer over the library (its contract: docs/architecture.md, docs/cli.md).

One module per domain, each defining its sub-commands' parsers beside their handlers. A handler returns a payload,
or (payload, human text, exit code); with `--json` the payload is printed as one JSON document.
"""

from __future__ import annotations

import getpass


def actor() -> str:
    """Who ran a command, for the decisions and approvals the registry records."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"

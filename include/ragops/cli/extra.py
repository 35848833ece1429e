"""Sub-commands beyond refresh and search, registered by the modules that implement them."""


def add_parsers(sub, common) -> None:
    from ragops.cli import ops_commands, serving_commands

    serving_commands.add_parsers(sub, common)
    ops_commands.add_parsers(sub, common)

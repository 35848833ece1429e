"""Sub-commands beyond refresh and search, registered by the modules that implement them."""


def add_parsers(sub, common) -> None:
    from ragops.cli import change_commands, ops_commands, serving_commands

    serving_commands.add_parsers(sub, common)
    ops_commands.add_parsers(sub, common)
    change_commands.add_parsers(sub, common)

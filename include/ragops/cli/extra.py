"""Sub-commands added by later capabilities (serving, evaluation, monitoring, rollout, audit)."""


def add_parsers(sub, common) -> None:
    return None

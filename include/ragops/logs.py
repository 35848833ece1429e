"""Library chatter that ragops turns down where it drives the library, so that task logs and the console keep
ragops' own progress and warnings and the libraries' warnings, not their start-up announcements."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

# logger -> the lowest level still shown. Each entry is a line that used to fill the logs:
CHATTY = {
    "great_expectations": logging.WARNING,  # ~200 "Skipping registering function" lines when it is imported
    "great_expectations.data_context.types.base": logging.WARNING,  # set to INFO by GX itself as it loads
    "alembic.runtime.migration": logging.WARNING,  # "Context impl SQLiteImpl." each time the registry is opened
    "absl": logging.WARNING,  # rouge_score's "Using default tokenizer." once per evaluated question
    "httpx": logging.WARNING,  # "HTTP Request: POST <URL>" per call to a model endpoint, credentials included
    "httpx2": logging.WARNING,  # the MCP client's "HTTP Request: POST <URL>" per call, with any credentials in the URL
}


def quiet_libraries() -> None:
    """Raise the chatty loggers to their level (never lower one that is set higher)."""
    for name, level in CHATTY.items():
        logger = logging.getLogger(name)
        if logger.level < level:
            logger.setLevel(level)


@contextmanager
def no_progress_bars() -> Iterator[None]:
    """Loading a model draws a tqdm bar on stderr, which Airflow logs as [error]; ragops reports its own progress."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()

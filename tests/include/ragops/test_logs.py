"""Library chatter is turned down where ragops drives the library; ragops' own lines and library warnings stay."""

import logging
import subprocess
import sys

import pytest

from ragops.logs import CHATTY, quiet_libraries


def test_chatty_loggers_are_raised_but_never_lowered():
    loud, louder = logging.getLogger("great_expectations"), logging.getLogger("absl")
    loud.setLevel(logging.NOTSET)
    louder.setLevel(logging.ERROR)
    quiet_libraries()
    assert loud.level == logging.WARNING and louder.level == logging.ERROR
    assert not any(name.startswith("ragops") for name in CHATTY)


def _stderr_of(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600).stderr


def test_importing_great_expectations_through_ragops_says_nothing_at_info():
    stderr = _stderr_of("import logging; logging.basicConfig(level=logging.INFO)\n"
                        "from ragops.ingest.validation import _gx_batch_definition; _gx_batch_definition()\n"
                        "logging.getLogger('ragops.test').info('ragops line stays')")
    assert "Skipping registering function" not in stderr and "Created temporary directory" not in stderr
    assert "ragops line stays" in stderr


@pytest.mark.model  # in a child process, which the fast loop's guard cannot see
def test_loading_the_model_draws_no_progress_bar_on_stderr():
    """Airflow logs a task's stderr at [error]: the bar used to show up there as an error."""
    stderr = _stderr_of("from ragops.ingest.embedding import Embedder; Embedder('all-MiniLM-L6-v2').encode(['x'])\n"
                        "from transformers.utils import logging as l; assert l.is_progress_bar_enabled()")
    assert "Loading weights" not in stderr and "AssertionError" not in stderr

"""A period is bounded: `--since 99999999d` overflowed the calendar into a traceback (not JSON, exit 1 by accident),
and `--since 0d` stored an empty report that became the RAG Ops page's newest."""

import json

import pytest


@pytest.mark.parametrize("args", [("gaps", "--since", "99999999d"), ("gaps", "--since", "0d"),
                                  ("eval", "testset", "propose", "--since", "5000000d"),
                                  ("monitor", "review", "--since", "0m")], ids=" ".join)
def test_windows_out_of_range_get_a_json_error(cli, settings, args):
    done = cli(settings, *args, "--json", check=False)
    assert done.returncode == 1, done.stderr
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "error" and "between 1 minute and 3650 days" in error["message"]

"""`ragops gaps` and `ragops eval testset propose|accept`: one JSON document each, clear errors."""

import json

import pytest
from gaps_traffic import BILLING_USERS, send


@pytest.fixture
def asked(indexed, embedder, tmp_path):
    send(indexed, embedder, tmp_path)
    return indexed


def test_gaps_prints_the_report_and_stores_it(cli, asked):
    report = json.loads(cli(asked, "gaps", "--since", "30d", "--json").stdout)
    top = report["clusters"][0]
    assert "billing" in top["terms"] and top["users"] == len(BILLING_USERS)
    human = cli(asked, "gaps").stdout
    assert human.startswith("content gaps") and f" 1. {top['name']}: {len(BILLING_USERS)} users" in human


def test_propose_then_accept_from_the_command_line(cli, asked, tmp_path):
    out = tmp_path / "proposed.jsonl"
    proposed = json.loads(cli(asked, "eval", "testset", "propose", "--since", "30d", "--out", out, "--json").stdout)
    assert proposed["candidates"] == len(out.read_text().splitlines()) and proposed["sources"]["content_gap"] == 6
    refused = cli(asked, "eval", "testset", "accept", out, "--json", check=False)  # nobody reviewed them yet
    assert refused.returncode == 1 and json.loads(refused.stdout)["error"]["code"] == "invalid_testset"
    first = json.loads(out.read_text().splitlines()[0]) | {"reference_answer": "Invoices are under Billing.",
                                                            "reference_doc_ids": ["billing.md"]}
    out.write_text(json.dumps(first) + "\n")
    accepted = json.loads(cli(asked, "eval", "testset", "accept", out, "--json").stdout)
    assert (accepted["version"], accepted["added"]) == (1, [first["id"]])


@pytest.mark.parametrize("args, code", [(("gaps", "--since", "a month"), "error"),
                                        (("eval", "testset", "accept"), "error"),
                                        (("eval", "accept", "latest"), "error")])
def test_bad_arguments_get_a_json_error(cli, settings, args, code):
    done = cli(settings, *args, "--json", check=False)
    assert done.returncode == 1 and json.loads(done.stdout)["error"]["code"] == code

"""bench/gate_sim.py on a tiny configuration: the JSON document's shape, and a blatant regression caught."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROW = {"rolled_back", "promoted", "undecided", "rollouts", "undecided_rollouts", "rolled_back_at",
       "median_requests_to_decision", "median_hours_to_decision", "target", "met", "low_traffic"}


def gate_sim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "bench" / "gate_sim.py"), *args], capture_output=True,
                          text=True, timeout=300)


def test_a_blatant_regression_is_rolled_back_and_every_row_says_whether_its_target_is_met():
    done = gate_sim("--rollouts", "3", "--traffic", "high", "--scenario", "equal,errors_plus_3_points", "--seed", "3")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert list(doc["results"]) == ["equal", "errors_plus_3_points"]
    assert doc["scenarios"]["equal"]["harm"] is None and doc["scenarios"]["errors_plus_3_points"]["harm"]
    for by_traffic in doc["results"].values():
        assert list(by_traffic) == ["high"] and list(by_traffic["high"]) == ["ragops", "previous", "flagger"]
        for row in by_traffic["high"].values():
            assert set(row) == ROW and row["rollouts"] == 3
            assert row["rolled_back"] + row["promoted"] + row["undecided"] == 1.0
    caught = doc["results"]["errors_plus_3_points"]["high"]["ragops"]
    assert caught["rolled_back"] == 1.0 and caught["met"] is True and caught["target"] == "rolled back >= 95%"
    assert doc["results"]["equal"]["high"]["ragops"]["target"] == "rolled back <= 1%"


def test_markdown_prints_the_documented_table_and_unknown_names_are_refused():
    done = gate_sim("--rollouts", "1", "--traffic", "high", "--scenario", "latency_plus_50_percent", "--gates",
                    "previous,flagger", "--markdown")
    assert done.returncode == 0, done.stderr
    header, rule, *rows = done.stdout.strip().splitlines()
    assert header.startswith("| candidate | harmful? | traffic | gate |") and rule.count("|---") == 11
    assert "| low traffic: raised / extended / asked a person |" in header
    assert [row.split(" | ")[3] for row in rows] == ["previous", "flagger"]
    refused = gate_sim("--scenario", "equal,no_such_world")
    assert refused.returncode == 2 and "no_such_world" in refused.stderr


def test_low_traffic_rollouts_follow_the_policy_of_rollout_traffic_and_are_never_rolled_back():
    """100 users in all: about 10 canary users at 10%, under min_users. The simulation asks rollout/traffic.py, as
    Rollout.step does, and raises the share to 25% (a new stratum), extends the horizon, then asks a person."""
    done = gate_sim("--rollouts-low", "3", "--traffic", "low", "--scenario", "hundred_users", "--gates", "ragops",
                    "--seed", "7")
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)["results"]["hundred_users"]["low"]["ragops"]
    assert row["rolled_back"] == 0.0 and row["met"] is True
    assert set(row["low_traffic"]) == {"raise_share", "extend_horizon", "ask_a_person"}
    assert row["low_traffic"]["raise_share"] == 3  # each rollout was short of users at 10%
    assert row["promoted"] + row["undecided"] == 1.0 and row["promoted"] > 0  # 25% reaches the minimum in some


def test_a_minority_regression_is_held_to_the_catch_target_only_where_its_tier_can_tell():
    """The lightest tenth of users at +20 points: at high traffic the gate must catch it; at medium, where their tier
    has about 90 canary users at the raised share, it must not promote it and the undecided share is reported."""
    sys.path.insert(0, str(REPO / "bench"))
    import gate_sim

    from ragops.rollout.gate import GatePolicy

    row = {"rolled_back": 0.5, "promoted": 0.05, "undecided": 0.45}
    high = gate_sim.target("lightest_users", "high", row, GatePolicy())
    medium = gate_sim.target("lightest_users", "medium", row, GatePolicy())
    assert high == {"target": "rolled back >= 95%", "met": False}
    assert medium == {"target": "promoted <= 5% (undecided reported)", "met": True}
    assert gate_sim.target("lightest_users", "medium", row | {"promoted": 0.1}, GatePolicy())["met"] is False
    assert gate_sim.target("errors_plus_3_points", "medium", row, GatePolicy())["target"] == "rolled back >= 95%"


def test_stages_and_the_raise_bound_are_options_and_bad_stages_are_refused():
    done = gate_sim("--rollouts", "2", "--traffic", "high", "--scenario", "errors_plus_3_points", "--gates", "ragops",
                    "--stages", "10,50,100", "--max-percent", "50")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["stages"] == [10.0, 50.0, 100.0] and doc["traffic_policy"]["max_percent"] == 50.0
    row = doc["results"]["errors_plus_3_points"]["high"]["ragops"]
    assert set(row["rolled_back_at"]) == {"10%", "50%"} and row["rolled_back"] == 1.0
    for bad in ("10,50", "50,10,100", "0,100", "ten,100"):
        refused = gate_sim("--stages", bad)
        assert refused.returncode == 2 and "stages must" in refused.stderr

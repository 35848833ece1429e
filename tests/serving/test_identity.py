"""Who steers a rollout (issue 21): the variant and the gate's statistics follow a verified identity, never the body's
`user_id`, and only the platform's probe credential marks traffic synthetic. Each attack is replayed through the real
app and then judged by the real gate (`Rollout.step`).

Real users come through an API key that fronts them (a support desk sending its end users' ids); the attacker has no
key. Fallbacks are real (`no_results` for questions the corpus cannot answer), except for the weak candidate, which
is made to fall back on one kind of question.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from support import Peer, events
from ragops.answer import fallbacks
from ragops.answer.pipeline import AnswerService
from ragops.audit.apikeys import issue
from ragops.evaluation.testset import load_testset
from ragops.registry.models import EvalRun
from ragops.releases import bucket, create_release
from ragops.rollout.machine import Rollout

ANSWERABLE = "What blocks a mass delete?"
NONSENSE = "Pizza dough hydration?"
WEAK = "How does the shrinkage guard protect the index?"  # the weak candidate cannot answer this kind of question
OPEN = {"rate_limit": "100000/minute", "rate_limit_address": "100000/minute", "rate_limit_global": "100000/minute",
        "rollout_min_window_minutes": 0.0}


class WeakCandidate(AnswerService):
    """The real pipeline, except that the canary falls back on the WEAK question (a candidate that lost a page)."""

    async def ask(self, question, *args, **kwargs):
        result = await super().ask(question, *args, **kwargs)
        if result.variant == "canary" and question == WEAK:
            result.fallback, result.answer, result.citations = "no_results", fallbacks.NO_RESULTS.message, []
        return result


@pytest.fixture
def platform(indexed, embedder, tmp_path):
    """(settings, client, desk key, probe key): the real app over the indexed corpus, a twin of stable rolled out at
    10%, and API keys for a support desk and for the platform's probes."""
    from serving.app import create_app

    keys = tmp_path / "keys.yaml"
    desk, _ = issue(keys, "support-desk")
    probe, _ = issue(keys, "ragops-probe")
    cfg = indexed.model_copy(update=OPEN | {"api_keys": keys})
    clients = []

    def make(service_class=AnswerService):
        service = service_class(cfg, embedder=embedder, rollout_ttl_s=0)  # the router follows each decision at once
        clients.append(TestClient(Peer(create_app(cfg, service=service))))
        return clients[-1].__enter__()

    yield cfg, desk, probe, make
    for client in clients:
        client.__exit__(None, None, None)


def _start_twin(cfg, percent_stages=(10.0, 25.0, 50.0, 100.0), evaluated=False) -> Rollout:
    """A candidate identical to stable (it follows the live index with the default answer configuration)."""
    machine = Rollout(cfg.model_copy(update={"rollout_stages": list(percent_stages)}))
    create_release(machine.registry, "twin", None, {}, "test")
    machine.start("twin", "test")
    if evaluated:
        with machine.registry.session() as s:
            s.add(EvalRun(testset="t.jsonl", testset_hash=load_testset(cfg.eval_testset).sha256, release="twin",
                          variant="candidate", embedding_model="m", generator="g", n=12, metrics={"hit_rate": 1.0},
                          comparison={"baseline_run_id": None}, status="ok", duration_s=1.0))
    return machine


def _ask(client, question, user_id=None, key=None, peer="198.51.100.20", session=None):
    headers = {"X-Test-Peer": peer} | ({"X-API-Key": key} if key else {}) | (
        {"X-Ragops-Session": session} if session else {})
    body = {"question": question} | ({"user_id": user_id} if user_id else {})
    reply = client.post("/v1/ask", json=body, headers=headers)
    assert reply.status_code == 200, reply.text
    return reply


def _landing(percent: float, n: int, prefix: str, canary: bool = True) -> list[str]:
    """User ids an attacker picks because they hash into (or out of) the canary share."""
    ids = (f"{prefix}{i}" for i in range(100_000))
    return [u for u in ids if (bucket(u) < percent * 100) == canary][:n]


# -- (a) the variant ----------------------------------------------------------------------------------------------------
def test_an_anonymous_user_id_does_not_pick_the_variant(platform):
    cfg, _, _, make = platform
    client = make()
    _start_twin(cfg, (50.0, 100.0))
    chosen = {_ask(client, ANSWERABLE, user_id=u).json()["variant"]
              for u in _landing(50, 6, "pick-", True) + _landing(50, 6, "pick-", False)}
    assert len(chosen) == 1  # one address without a session: one variant, whatever user_id it sends


def test_a_session_the_server_issued_is_sticky_and_cannot_be_forged(platform):
    cfg, _, _, make = platform
    client = make()
    _start_twin(cfg, (50.0, 100.0))
    token = _ask(client, ANSWERABLE).headers["X-Ragops-Session"]
    by_token: dict[str, set] = {}
    while len(by_token) < 40 and len(set().union(*by_token.values())) < 2:  # sessions are random: until both show
        session = _ask(client, ANSWERABLE).headers["X-Ragops-Session"]
        by_token[session] = {_ask(client, ANSWERABLE, session=session).json()["variant"] for _ in range(3)}
    assert token not in by_token and len(by_token) >= 2  # a caller without a session is issued a new one each time
    assert all(len(v) == 1 for v in by_token.values())  # sticky per session
    assert set().union(*by_token.values()) == {"stable", "canary"}  # sessions, not the address, pick it
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    reply = _ask(client, ANSWERABLE, session=forged)
    assert reply.headers["X-Ragops-Session"] not in (forged, token)  # not believed: a fresh session instead


def test_a_key_may_keep_the_users_it_fronts_sticky(platform):
    cfg, desk, _, make = platform
    client = make()
    _start_twin(cfg, (50.0, 100.0))
    variants = {u: {_ask(client, ANSWERABLE, user_id=u, key=desk).json()["variant"] for _ in range(2)}
                for u in (f"desk-user-{i}" for i in range(12))}
    assert all(len(v) == 1 for v in variants.values())  # each fronted user is sticky
    assert {v for (v,) in variants.values()} == {"stable", "canary"}  # within the key, user ids spread
    assert "X-Ragops-Session" not in _ask(client, ANSWERABLE, key=desk).headers  # a key needs no session


# -- (b) synthetic traffic ----------------------------------------------------------------------------------------------
def test_only_the_probe_credential_marks_traffic_synthetic(platform):
    cfg, desk, probe, make = platform
    client = make()
    _ask(client, ANSWERABLE, user_id="ragops-probe:abc-1")  # anonymous, claiming to be a probe
    _ask(client, ANSWERABLE, user_id="ragops-probe:abc-2", key=desk)  # a customer key, claiming the same
    _ask(client, ANSWERABLE, user_id="q1", key=probe)  # the platform's probe credential
    client.app.app.state.events.flush()
    rows = events(cfg)
    assert [r.synthetic for r in rows] == [False, False, True]
    assert [r.verified for r in rows] == [False, True, True]


# -- (c) rolling back a good candidate on purpose -------------------------------------------------------------------------
def _desk_traffic(client, desk, users: int, requests: int, question_for) -> None:
    """`requests` asks from `users` end users of the support desk, round-robin; `question_for(j)` picks the j-th."""
    for j in range(requests):
        _ask(client, question_for(j), user_id=f"desk-user-{j % users}", key=desk, peer="192.0.2.10")


def test_anonymous_nonsense_does_not_roll_back_an_identical_candidate(platform):
    cfg, desk, _, make = platform
    client = make()
    machine = _start_twin(cfg)
    _desk_traffic(client, desk, 600, 2030, lambda j: NONSENSE if j % 12 == 0 else ANSWERABLE)  # 8.3% no_results
    client.app.app.state.events.flush()
    before = machine.step()
    assert before.decision == "hold", before.reason  # no evaluation run yet: it cannot promote
    for u in _landing(10, 44, "attacker-", True):  # 44 anonymous requests, each user_id chosen for the canary
        _ask(client, f"Zorblax quuxification {u}?", user_id=u, peer="203.0.113.66")
    client.app.app.state.events.flush()
    after = machine.step()
    assert after.decision == "hold" and after.to_percent == 10, after.reason
    assert after.evidence["canary"] == before.evidence["canary"]  # the attack left no trace in the gate's evidence
    assert after.evidence["stable"] == before.evidence["stable"]


# -- (d) promoting a bad candidate on purpose ----------------------------------------------------------------------------
def test_forged_probes_do_not_promote_a_bad_candidate(platform):
    cfg, desk, _, make = platform
    client = make(WeakCandidate)
    machine = _start_twin(cfg, evaluated=True)
    # real users: 8% of questions are nonsense; on the canary a further 17% are WEAK ones it cannot answer
    _desk_traffic(client, desk, 400, 1200,
                  lambda j: NONSENSE if j % 12 == 0 else WEAK if j % 6 == 3 else ANSWERABLE)
    canary_ids = _landing(10, 400, "ragops-probe:c", True)
    stable_ids = _landing(10, 400, "ragops-probe:s", False)
    for cu, su in zip(canary_ids, stable_ids):
        _ask(client, ANSWERABLE, user_id=cu, peer="203.0.113.77")  # answered, on the canary
        _ask(client, f"Zorblax quuxification {su}?", user_id=su, peer="203.0.113.78")  # unanswerable, on stable
    client.app.app.state.events.flush()
    after = machine.step()
    assert after.decision in ("rollback", "hold"), after.reason  # what the real users alone say
    assert after.evidence["canary"]["probes"] == 0 and after.evidence["stable"]["probes"] == 0

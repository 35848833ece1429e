"""A scripted traffic mix for the content-gap tests, sent through the real serving app.

Users ask the small corpus (tests/conftest.py CORPUS) what it answers, and ask what it lacks: billing and invoices
(the planted gap: five users, ten phrasings), SAML single sign-on (two users, more questions: ranked below billing,
which reaches more people), and one-off questions about anything (noise). Down-votes go through POST /v1/feedback,
each by the user who asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BILLING = [
    "How do I download my invoice for last month?",
    "Where can I see my billing history?",
    "How do I change the credit card used for billing?",
    "Why was I charged twice on my invoice?",
    "Can I get a refund for my subscription payment?",
    "How do I update the billing address on invoices?",
    "Where do I find the invoice PDF for my payment?",
    "How do I cancel my subscription and stop billing?",
    "What payment methods does billing accept?",
    "How can I get a VAT invoice for my company?",
]
SSO = [
    "How do I configure SAML single sign-on with Okta?",
    "Does the login support SSO through Azure AD?",
    "How do I set up SAML SSO for my organisation?",
    "Can we enforce single sign-on for all users with SAML?",
    "Where do I upload the SAML identity provider metadata for SSO?",
    "How do I map SAML SSO groups to roles?",
    "Why does SSO login with SAML fail with an invalid assertion?",
    "How do I turn off password login once SAML single sign-on is on?",
]
NOISE = ["What is the weather in Paris tomorrow?", "Give me a recipe for pancakes",
         "Who won the football world cup in 2018?", "How tall is Mount Everest?",
         "Translate good morning into Japanese", "What is the capital of Australia?"]
ANSWERED = ["How do I start the platform on one machine?", "When does the refresh DAG run?",
            "What happens to documents that fail validation?", "Where do reports go when no Slack token is set?",
            "How often does the monitoring DAG review latency?", "When does the MCP permission audit run?"]
BILLING_USERS = [f"billing-user-{i}" for i in range(5)]
SSO_USERS = ["sso-user-0", "sso-user-1"]


@dataclass
class Traffic:
    request_ids: dict[str, list[str]] = field(default_factory=dict)  # group -> request ids, in the order sent
    fallbacks: dict[str, list[str | None]] = field(default_factory=dict)
    down_voted: list[str] = field(default_factory=list)


def send(settings, embedder, tmp_path, *, billing=BILLING, sso=SSO, down: dict | None = None) -> Traffic:
    """Send the mix through create_app (an API key fronting many users, so each user_id is a user of its own), vote
    down every billing and SSO answer that was not refused, and the answers `down` names ({group: (slice, reason)}),
    and return what was sent. The app's lifespan ends before this returns, so every request event is in the
    registry."""
    from fastapi.testclient import TestClient

    from ragops.answer.pipeline import AnswerService
    from ragops.audit.apikeys import issue
    from serving.app import create_app

    keys = tmp_path / "api-keys.yaml"
    secret, _ = issue(keys, "helpdesk")
    settings = settings.model_copy(update={"api_keys": keys, "rate_limit_enabled": False})
    traffic = Traffic()
    plan = [("answered", q, f"reader-{i % 3}") for i, q in enumerate(ANSWERED)]
    plan += [("billing", q, BILLING_USERS[i % len(BILLING_USERS)]) for i, q in enumerate(billing)]
    plan += [("sso", q, SSO_USERS[i % len(SSO_USERS)]) for i, q in enumerate(sso)]
    plan += [("noise", q, f"passer-by-{i}") for i, q in enumerate(NOISE)]
    service = AnswerService(settings, embedder=embedder)
    asked_by = {}
    with TestClient(create_app(settings, service=service)) as client:
        for group, question, user in plan:
            reply = client.post("/v1/ask", json={"question": question, "user_id": user}, headers={"X-API-Key": secret})
            assert reply.status_code == 200, reply.text
            body = reply.json()
            asked_by[body["request_id"]] = user
            traffic.request_ids.setdefault(group, []).append(body["request_id"])
            traffic.fallbacks.setdefault(group, []).append(body.get("fallback"))
        votes = [(r, "no_answer") for g in ("billing", "sso")
                 for r, f in zip(traffic.request_ids[g], traffic.fallbacks[g]) if not f]
        votes += [(r, reason) for g, (which, reason) in (down or {}).items() for r in traffic.request_ids[g][which]]
        for request_id, reason in votes:
            reply = client.post("/v1/feedback", headers={"X-API-Key": secret}, json={
                "request_id": request_id, "rating": "down", "reason": reason, "user_id": asked_by[request_id]})
            assert reply.status_code == 200, reply.text
            traffic.down_voted.append(request_id)
    return traffic


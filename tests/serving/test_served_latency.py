"""/metrics latency is the latency of answers (issue 25 leftover): a request refused with a 4xx (invalid, unknown key)
or a client that left mid-stream (499) is counted under its status in `ragops_requests_total`, never observed in
`ragops_request_latency_seconds`, as the canary gate leaves them out (`monitoring.aggregate.served_status`)."""

from __future__ import annotations

from support import served_latency


def test_refused_requests_are_counted_but_not_in_answer_latency(make_client):
    client = make_client()
    assert client.post("/v1/ask", json={"question": ""}).status_code == 422
    assert client.post("/v1/ask", json={"question": "What is quarantined?"},
                       headers={"X-API-Key": "not-a-key"}).status_code == 401
    answered = client.post("/v1/ask", json={"question": "What happens to documents that fail validation?"})
    assert answered.status_code == 200
    counted, observed = served_latency(client.get("/metrics").text, "/v1/ask")
    assert counted == {"422": 1.0, "401": 1.0, "200": 1.0}
    assert observed == 1.0  # the answer only

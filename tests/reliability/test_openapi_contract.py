"""schemathesis against the app's OpenAPI document: no 5xx, and every response matches what the document says
(status codes, content types, bodies). Bounded: a fixed number of examples per operation, a fixed seed."""

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, seed, settings

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def api_schema(indexed, embedder):
    from ragops.answer.pipeline import AnswerService
    from serving.app import create_app

    cfg = indexed.model_copy(update={"rate_limit_address": "100000/minute", "rate_limit_global": "100000/minute"})
    app = create_app(cfg, service=AnswerService(cfg, embedder=embedder))
    yield schemathesis.openapi.from_asgi("/openapi.json", app)  # it runs the app's lifespan itself
    app.state.events.close()


@schema.parametrize()
@seed(8)
@settings(max_examples=25, derandomize=True, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_documented_contract(case):
    case.call_and_validate()

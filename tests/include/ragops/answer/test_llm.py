import time

import pytest

from ragops.answer.llm import CircuitBreaker
from ragops.errors import LLMUnavailable


def test_breaker_opens_after_consecutive_failures_and_half_opens():
    breaker = CircuitBreaker(threshold=3, reset_s=0.2)
    for _ in range(2):
        breaker.before()
        breaker.failure()
    breaker.before()
    breaker.success()  # a success resets the count
    for _ in range(3):
        breaker.before()
        breaker.failure()
    assert breaker.state == "open"
    with pytest.raises(LLMUnavailable, match="circuit"):
        breaker.before()
    time.sleep(0.25)
    assert breaker.state == "half_open"
    breaker.before()  # one trial goes through...
    with pytest.raises(LLMUnavailable):
        breaker.before()  # ...and the next caller waits for its outcome
    breaker.success()
    assert breaker.state == "closed"

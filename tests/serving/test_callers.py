"""How a caller's credential is read from its headers."""

import pytest

from serving.callers import bearer_token


@pytest.mark.parametrize("header, token", [("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER  abc ", "abc"),
                                           ("Basic abc", None), ("abc", None), ("", None), (None, None)])
def test_the_bearer_scheme_is_case_insensitive(header, token):
    """RFC 7235: `bearer` in any case names the same scheme, so the token is the same client's."""
    assert bearer_token(header) == token

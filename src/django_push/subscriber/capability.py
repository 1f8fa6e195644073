"""Callback URLs as capabilities (WebSub S-7): an unguessable token in the query string.

The token rides in the query string, not the path, so 1.1's route (``subscriber_callback``
with an integer ``pk``) and every site's own routing of ``CallbackView`` keep working;
hubs keep a callback's query string on verification and delivery (WebSub H-8).
"""

from __future__ import annotations

import secrets

from django.utils.crypto import constant_time_compare

# The query parameter that carries the token.
TOKEN_PARAM = "token"
# 24 random bytes: 192 bits, 32 URL-safe characters.
TOKEN_BYTES = 24
# Longer "tokens" are refused before any comparison.
MAX_TOKEN_LENGTH = 64


def new_callback_token() -> str:
    """A fresh token for one subscription's callback URL."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_matches(given: str | None, expected: str | None) -> bool:
    """Whether the token of a request is the subscription's, compared in constant time."""
    if not given or not expected or len(given) > MAX_TOKEN_LENGTH:
        return False
    return constant_time_compare(given, expected)

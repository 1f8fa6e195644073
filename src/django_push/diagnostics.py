"""The address of a subscription's diagnostics page on a django-push hub.

Both roles compute it: the hub to find and check a request, a subscriber to link to its own
page. The token is two halves, 64 hex digits in all:

- a lookup key, ``SHA-256(topic "\\n" callback)``, first 32 hex digits: public, it only
  lets the hub find the row with one indexed query;
- a proof, ``HMAC-SHA256(secret, "django-push diagnostics\\n" callback "\\n" topic)``, first
  32 hex digits: only whoever holds the subscription's secret can compute it.

The page is ``<hub URL>diagnostics/<key><proof>/`` (a slash is added after the hub URL when
it has none).
"""

from __future__ import annotations

import hashlib
import hmac

# Hex digits of each half of the token.
HALF = 32
# Domain separation: the proof is never an X-Hub-Signature of some body.
PROOF_LABEL = "django-push diagnostics"


def lookup_key(topic: str, callback: str) -> str:
    """The public half of the token, stored with the hub's subscription (indexed)."""
    return hashlib.sha256(f"{topic}\n{callback}".encode()).hexdigest()[:HALF]


def proof(topic: str, callback: str, secret: str) -> str:
    """The secret half of the token: an HMAC of (callback, topic) under ``secret``."""
    message = f"{PROOF_LABEL}\n{callback}\n{topic}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:HALF]


def token(topic: str, callback: str, secret: str) -> str:
    return lookup_key(topic, callback) + proof(topic, callback, secret)


def split_token(value: str) -> tuple[str, str] | None:
    """(key, proof) of a well-formed token, else ``None``."""
    if len(value) != 2 * HALF or any(char not in "0123456789abcdef" for char in value):
        return None
    return value[:HALF], value[HALF:]


def page_url(hub: str, topic: str, callback: str, secret: str) -> str | None:
    """The diagnostics page of the subscription (``topic``, ``callback``) at ``hub``;
    ``None`` without a secret, as the hub shows no page for such a subscription."""
    if not secret:
        return None
    base = hub if hub.endswith("/") else f"{hub}/"
    return f"{base}diagnostics/{token(topic, callback, secret)}/"

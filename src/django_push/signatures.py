"""``X-Hub-Signature`` (WebSub 7.1): HMAC over the raw body, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac

from django_push.protocol import ALGORITHMS, Algorithm


def sign(secret: str | bytes, body: bytes, algorithm: Algorithm = "sha256") -> str:
    """Return the header value ``"<algorithm>=<hex digest>"`` for ``body``."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"Unsupported signature algorithm {algorithm!r}; use one of {ALGORITHMS}.")
    key = secret.encode() if isinstance(secret, str) else secret
    return f"{algorithm}={hmac.new(key, body, getattr(hashlib, algorithm)).hexdigest()}"


def verify(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """True when ``header`` is a valid signature of ``body``.

    Unknown methods, malformed values and a missing header are all invalid (S-20, S-22).
    """
    if not header or "=" not in header:
        return False
    method, _, digest = header.strip().partition("=")
    method = method.strip().lower()
    if method not in ALGORITHMS:
        return False
    expected = sign(secret, body, method)
    return hmac.compare_digest(expected.encode(), f"{method}={digest.strip().lower()}".encode())

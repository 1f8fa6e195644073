"""How any subscriber finds its diagnostics page on a django-push hub (docs/hub.rst)."""

from __future__ import annotations

import hashlib
import hmac


def diagnostics_page(hub: str, topic: str, callback: str, secret: str) -> str:
    """The page of the subscription (topic, callback) made with ``secret`` at ``hub``."""
    key = hashlib.sha256(f"{topic}\n{callback}".encode()).hexdigest()[:32]
    message = f"django-push diagnostics\n{callback}\n{topic}".encode()
    proof = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]
    return f"{hub.rstrip('/')}/diagnostics/{key}{proof}/"

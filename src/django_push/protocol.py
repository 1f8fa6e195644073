"""WebSub protocol words: parameter and header names, modes, algorithms; and the reading of
its one numeric parameter, shared by the hub and the subscriber."""

from __future__ import annotations

from typing import Final, Literal

MODE: Final = "hub.mode"
TOPIC: Final = "hub.topic"
URL: Final = "hub.url"
CALLBACK: Final = "hub.callback"
CHALLENGE: Final = "hub.challenge"
LEASE_SECONDS: Final = "hub.lease_seconds"
SECRET: Final = "hub.secret"
REASON: Final = "hub.reason"
VERIFY_TOKEN: Final = "hub.verify_token"

SIGNATURE_HEADER: Final = "X-Hub-Signature"
# Not WebSub's: django-push's identity of a delivery, the same on every retry of one content
# to one subscription, so subscribers can drop repeats (docs/hub.rst, "Delivery identity").
DELIVERY_ID_HEADER: Final = "Push-Delivery-Id"
# Not WebSub's either: the number of a content among those its topic's subscriptions were
# owed, one more for each (docs/hub.rst, "Sequence numbers"); a skipped one is a missed one.
SEQUENCE_HEADER: Final = "Push-Sequence"

Mode = Literal["subscribe", "unsubscribe"]
SUBSCRIBE: Final = "subscribe"
UNSUBSCRIBE: Final = "unsubscribe"
DENIED: Final = "denied"
PUBLISH: Final = "publish"

Algorithm = Literal["sha1", "sha256", "sha384", "sha512"]
ALGORITHMS: Final[tuple[Algorithm, ...]] = ("sha1", "sha256", "sha384", "sha512")

# WebSub 5.1: a secret MUST be less than 200 bytes.
MAX_SECRET_BYTES: Final = 199


def parse_lease(raw: str, longest: int) -> int | None:
    """``hub.lease_seconds`` as seconds, capped at ``longest``; ``None`` unless it is all
    ASCII digits ("²".isdigit() is true, and int() refuses it)."""
    if not (raw.isascii() and raw.isdigit()):
        return None
    # Compare lengths first: int() refuses strings of over 4,300 digits.
    if len(raw.lstrip("0")) > len(str(longest)):
        return longest
    return min(int(raw), longest)

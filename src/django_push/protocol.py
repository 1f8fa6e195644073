"""WebSub protocol words: parameter and header names, modes, algorithms. No logic."""

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

Mode = Literal["subscribe", "unsubscribe"]
SUBSCRIBE: Final = "subscribe"
UNSUBSCRIBE: Final = "unsubscribe"
DENIED: Final = "denied"
PUBLISH: Final = "publish"

Algorithm = Literal["sha1", "sha256", "sha384", "sha512"]
ALGORITHMS: Final[tuple[Algorithm, ...]] = ("sha1", "sha256", "sha384", "sha512")

# WebSub 5.1: a secret MUST be less than 200 bytes.
MAX_SECRET_BYTES: Final = 199

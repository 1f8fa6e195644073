from __future__ import annotations

from django.dispatch import Signal

# Content arrived for a verified subscription. sender: the Subscription;
# notification: the raw body (bytes); request: the HttpRequest;
# links: the parsed Link header (list of dicts with "url" and "rel"), or None.
updated = Signal()

"""``Link`` header parsing and formatting (RFC 8288), one implementation for both directions."""

from __future__ import annotations

from collections.abc import Iterable


def format_links(links: Iterable[tuple[str, str]]) -> str:
    """Format ``(url, rel)`` pairs as one ``Link`` header value."""
    return ", ".join(f'<{url}>; rel="{rel}"' for url, rel in links)


def parse_links(value: str | None) -> list[dict[str, str]]:
    """Parse a ``Link`` header into dicts with ``url`` and one key per parameter.

    This is the shape django-push 1.1 passed as ``links`` to the ``updated`` signal.
    Malformed parts are skipped; this function never raises on bad input.
    """
    if not value:
        return []
    links: list[dict[str, str]] = []
    for part in _split_outside(value, ","):
        part = part.strip()
        if not part.startswith("<") or ">" not in part:
            continue
        url, _, params = part[1:].partition(">")
        link = {"url": url.strip()}
        for param in _split_outside(params, ";"):
            key, sep, val = param.partition("=")
            key = key.strip().lower()
            if key and sep:
                link[key] = val.strip().strip("\"'")
        links.append(link)
    return links


def rels(links: Iterable[dict[str, str]], rel: str) -> list[str]:
    """URLs of ``links`` whose space-separated ``rel`` contains ``rel``."""
    return [
        link["url"] for link in links if rel in link.get("rel", "").lower().split() and link["url"]
    ]


def _split_outside(text: str, sep: str) -> list[str]:
    """Split on ``sep`` except inside ``<...>`` or double quotes."""
    parts: list[str] = []
    current: list[str] = []
    in_url = in_quote = False
    for char in text:
        if char == "<" and not in_quote:
            in_url = True
        elif char == ">" and not in_quote:
            in_url = False
        elif char == '"' and not in_url:
            in_quote = not in_quote
        elif char == sep and not in_url and not in_quote:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts

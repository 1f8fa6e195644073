"""Compare topic and callback URLs as WebSub asks: percent-escapes of unreserved characters
are decoded (WebSub 5.1, RFC 3986 6.2.2.2), so ``/%7Euser`` and ``/~user`` are one topic."""

from __future__ import annotations

import re
import string

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def decode_unreserved(url: str) -> str:
    """``url`` with ``%XX`` decoded where ``XX`` is an unreserved character; other escapes,
    reserved ones included, are kept as they are (decoding them could change the URL)."""

    def decode(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else match.group(0)

    # Until nothing changes: in a malformed "%%34%31" decoding makes a new escape, "%41".
    # Each round shortens the string, so this ends; the result is the same however often
    # it is decoded again, which comparisons need.
    while (decoded := _ESCAPE.sub(decode, url)) != url:
        url = decoded
    return url


def same_url(first: str, second: str) -> bool:
    """Whether two URLs name the same resource once unreserved escapes are decoded."""
    return first == second or decode_unreserved(first) == decode_unreserved(second)

"""Feed diffs: an Atom or RSS topic reduced to the entries that are new since its previous
version, with the feed's head (everything but the entries) kept byte for byte.

WebSub (section 7) lets a hub deliver only the new entries of a feed. An entry is known by
its key: the Atom ``<id>`` or RSS ``<guid>``; without one, its ``alternate`` link (Atom) or
``<link>`` (RSS); without either, the SHA-256 of the entry as parsed. An entry whose key was
in the previous version is left out, even if its text changed.

Parsing goes through defusedxml: a document that declares entities (billion laughs) or
refers to external ones is refused before anything is expanded, and the topic is then
delivered whole, like any topic that is not an Atom or RSS 2.0 feed or does not parse.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError, TreeBuilder, tostring

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from django_push.conf import conf

logger = logging.getLogger("django_push.hub")

ATOM = "{http://www.w3.org/2005/Atom}"


@dataclass(frozen=True, slots=True)
class Diff:
    """What to deliver instead of the full body: the head and the new entries only."""

    body: bytes
    new: int  # entries in ``body``; 0 means there is nothing to deliver


@dataclass(frozen=True, slots=True)
class Feed:
    """A parsed feed: each entry's key and where its bytes are in the document."""

    keys: list[str]
    spans: list[tuple[int, int]]  # [start, end) of each entry, trailing whitespace included


def for_topic(topic: str, body: bytes, content_type: str) -> Diff | None:
    """The diff to deliver for this new version of ``topic``, against the version stored
    last; ``None`` (deliver ``body`` whole) unless ``PUSH_HUB_FEED_DIFFS`` is on and both
    versions are feeds that parse. A diff that fails for any reason gives ``None`` too: the
    fetch must go on (an entry nested thousands deep, hashed, raised ``RecursionError``)."""
    if not conf.PUSH_HUB_FEED_DIFFS or not is_xml(content_type):
        return None
    from django_push.hub.models import Content

    previous = Content.objects.filter(topic=topic).order_by("-pk").values_list("body")[:1]
    if not previous:
        return None
    try:
        found = diff(bytes(previous[0][0]), body, content_type)
    except Exception as exc:  # whatever the feed does, it is delivered whole
        # Not the traceback: a RecursionError's is thousands of frames long.
        logger.warning("Feed diff of %s failed (%r); delivering the whole feed", topic, exc)
        return None
    if found is not None and not found.new:
        logger.info("Hub fetched %s: no new entry in the feed, nothing delivered", topic)
    return found


def is_xml(content_type: str) -> bool:
    """Whether the media type is XML (``application/atom+xml``, ``text/xml``, ...)."""
    kind = content_type.split(";")[0].strip().lower()
    return kind.endswith(("/xml", "+xml"))


def diff(previous: bytes, current: bytes, content_type: str) -> Diff | None:
    """``current`` without the entries ``previous`` had; ``None`` when either is not an
    Atom or RSS 2.0 feed that parses safely, or ``content_type`` is not XML."""
    if not is_xml(content_type):
        return None
    old, new = parse(previous), parse(current)
    if old is None or new is None:
        return None
    seen = set(old.keys)
    gone = [span for key, span in zip(new.keys, new.spans, strict=True) if key in seen]
    body = _cut(current, gone)
    if gone and parse(body) is None:  # never deliver a document that no longer parses
        logger.warning("A feed diff did not parse again; delivering the whole feed")
        return None
    return Diff(body, len(new.keys) - len(gone))


def _cut(body: bytes, spans: list[tuple[int, int]]) -> bytes:
    kept, position = [], 0
    for start, end in spans:
        kept.append(body[position:start])
        position = end
    kept.append(body[position:])
    return b"".join(kept)


def parse(body: bytes) -> Feed | None:
    """The entries of an Atom or RSS 2.0 feed; ``None`` if ``body`` is anything else, is
    malformed, or declares entities (never expanded)."""
    target = _EntryFinder()
    parser = ElementTree.XMLParser(
        target=target, forbid_dtd=False, forbid_entities=True, forbid_external=True
    )
    target.expat = parser.parser
    # ElementTree passes CDATA on as text: its start is an event too, or a cut would end
    # inside a CDATA section that follows an entry.
    parser.parser.StartCdataSectionHandler = target.cdata
    try:
        parser.feed(body)
        parser.close()
    except (ParseError, DefusedXmlException, ValueError) as exc:
        logger.debug("Not a feed diff: %s", exc)
        return None
    if target.kind is None or len(target.entries) != len(target.spans):
        return None
    return Feed([_key(entry, target.kind) for entry in target.entries], target.spans)


class _EntryFinder:
    """An ElementTree parser target that builds the tree and records where each entry
    starts and ends in the bytes (expat's ``CurrentByteIndex`` at each event)."""

    def __init__(self) -> None:
        self.builder = TreeBuilder()
        self.expat: object = None
        self.kind: str | None = None  # "atom" or "rss", from the root element
        self.path: list[str] = []
        self.entries: list[Element] = []
        self.spans: list[tuple[int, int]] = []
        self.open_entry = -1  # start offset of the entry being read
        self.closed_entry = -1  # start offset of an entry whose end is the next event

    def _offset(self) -> int:
        offset: int = self.expat.CurrentByteIndex  # type: ignore[attr-defined]
        if self.closed_entry >= 0:
            # The entry's end: here, where the next event of any kind begins (expat gives
            # the start of an end tag, and only buffered text after it tells where it ends).
            self.spans.append((self.closed_entry, offset))
            self.closed_entry = -1
        return offset

    def _is_entry(self, tag: str) -> bool:
        if self.kind == "atom":
            return tag == f"{ATOM}entry" and len(self.path) == 1
        return tag == "item" and self.path == ["rss", "channel"]

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        offset = self._offset()
        if not self.path:
            self.kind = {f"{ATOM}feed": "atom", "rss": "rss"}.get(tag)
        elif self.open_entry < 0 and self._is_entry(tag):
            self.open_entry = offset
        self.path.append(tag)
        return self.builder.start(tag, attrs)

    def end(self, tag: str) -> Element:
        self._offset()
        self.path.pop()
        element = self.builder.end(tag)
        if self.open_entry >= 0 and self._is_entry(tag):
            self.entries.append(element)
            self.closed_entry, self.open_entry = self.open_entry, -1
        return element

    def data(self, text: str) -> None:
        self._offset()
        self.builder.data(text)

    def comment(self, text: str) -> None:
        self._offset()

    def cdata(self) -> None:
        self._offset()

    def pi(self, target: str, text: str | None = None) -> None:
        self._offset()

    def close(self) -> Element:
        return self.builder.close()


def _key(entry: Element, kind: str) -> str:
    """What makes an entry the same one in two versions of a feed."""
    if kind == "atom":
        ident = entry.findtext(f"{ATOM}id")
        links = [
            link.get("href", "")
            for link in entry.findall(f"{ATOM}link")
            if link.get("rel", "alternate") == "alternate"
        ]
        link = links[0] if links else None
    else:
        ident, link = entry.findtext("guid"), entry.findtext("link")
    if ident and ident.strip():
        return "id:" + ident.strip()
    if link and link.strip():
        return "link:" + link.strip()
    return "sha256:" + hashlib.sha256(tostring(entry)).hexdigest()

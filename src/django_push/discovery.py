"""WebSub discovery (section 4): Link headers first, then ``<link>`` in Atom, RSS or HTML."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit
from xml.etree.ElementTree import Element  # only the type; parsing uses defusedxml

from asgiref.sync import async_to_sync
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from django_push import http
from django_push.exceptions import DiscoveryError, FetchError
from django_push.links import parse_links, rels

ATOM = "{http://www.w3.org/2005/Atom}"
MAX_DOCUMENT = 2 * 1024 * 1024


@dataclass(frozen=True)
class Discovered:
    """Hubs and the canonical topic URL a resource advertises."""

    hubs: list[str]
    self_url: str | None
    url: str  # the URL finally fetched, after redirects

    @property
    def topic(self) -> str:
        """The URL to subscribe to: ``rel="self"``, else the fetched URL (S-3)."""
        return self.self_url or self.url

    @property
    def hub(self) -> str:
        """The hub to use, preferring HTTPS ones (S-4)."""
        return sorted(self.hubs, key=lambda url: urlsplit(url).scheme != "https")[0]


def from_response(response: http.Response) -> tuple[list[str], str | None]:
    """Hub and self URLs of a response; never raises on malformed input."""
    links = [link for value in response.links for link in parse_links(value)]
    hubs, selves = rels(links, "hub"), rels(links, "self")
    if not hubs:
        hubs, selves = _from_body(response.body, response.content_type)
    base = response.url
    return [urljoin(base, hub) for hub in hubs], urljoin(base, selves[0]) if selves else None


async def adiscover(url: str) -> Discovered:
    """Fetch ``url`` (following redirects) and return what it advertises.

    Raises :class:`DiscoveryError` when the fetch fails or no hub is declared.
    """
    try:
        response = await http.get(url, follow_redirects=True, max_bytes=MAX_DOCUMENT)
    except FetchError as exc:
        raise DiscoveryError(f"Could not fetch {url}: {exc.reason}") from exc
    if not response.ok:
        raise DiscoveryError(f"Could not fetch {url}: HTTP {response.status}")
    hubs, self_url = from_response(response)
    if not hubs:
        raise DiscoveryError(f"{url} declares no WebSub hub (no rel=hub link)")
    return Discovered(hubs, self_url, response.url)


def discover(url: str) -> Discovered:
    """Synchronous :func:`adiscover`."""
    return async_to_sync(adiscover)(url)


def _from_body(body: bytes, content_type: str) -> tuple[list[str], list[str]]:
    kind = content_type.split(";")[0].strip().lower()
    if "html" in kind and "xhtml" not in kind:
        return _from_html(body)
    if "xml" in kind or body.lstrip()[:5] == b"<?xml" or body.lstrip()[:5] == b"<feed":
        return _from_xml(body)
    return [], []


def _from_xml(body: bytes) -> tuple[list[str], list[str]]:
    try:
        root = ElementTree.fromstring(body, forbid_dtd=True)
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        return [], []
    # Atom: <feed><link/>; RSS: <rss><channel><atom:link/>.
    parents: list[Element] = [root, *root.findall("channel")]
    hubs: list[str] = []
    selves: list[str] = []
    for parent in parents:
        for link in [*parent.findall(f"{ATOM}link"), *parent.findall("link")]:
            href, rel = link.get("href"), (link.get("rel") or "").lower().split()
            if href and "hub" in rel:
                hubs.append(href)
            if href and "self" in rel:
                selves.append(href)
    return hubs, selves


class _HeadLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hubs: list[str] = []
        self.selves: list[str] = []
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done or tag != "link":
            if tag == "body":
                self.done = True  # §8.1: only <head> is trusted
            return
        values = dict(attrs)
        href, rel = values.get("href"), (values.get("rel") or "").lower().split()
        if href and "hub" in rel:
            self.hubs.append(href)
        if href and "self" in rel:
            self.selves.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self.done = True


def _from_html(body: bytes) -> tuple[list[str], list[str]]:
    parser = _HeadLinks()
    try:
        parser.feed(body.decode("utf-8", errors="replace"))
        parser.close()
    except Exception:  # html.parser is lenient; this is belt and braces
        return [], []
    return parser.hubs, parser.selves

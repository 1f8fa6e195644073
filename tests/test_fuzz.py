"""Fuzz targets: the hub endpoint and the callback view at the HTTP level (raw bodies, content
types, headers, Host), the Link-header parser from a near-valid grammar, and discovery over
real HTTP. test_bad_input.py fuzzes the form fields; these go around and under them.

Each target counts the inputs it tried and the 5xx answers it got (which must be 0), prints
them and writes them to ``test-output/fuzz.json``. ``PUSH_FUZZ_PROFILE`` sets how hard they
try: ``suite`` (the default test run), ``ci`` (the bounded fuzz leg of .ci/run) or ``long``.
"""

from __future__ import annotations

import json
import os
import string
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_push.discovery import discover
from django_push.exceptions import DiscoveryError
from django_push.links import format_links, parse_links, rels
from django_push.signatures import sign
from django_push.subscriber.models import Subscription
from tests.servers import Reply
from tests.test_bad_input import HUB_FIELDS

PROFILES = {"suite": 60, "ci": 500, "long": 20_000}
EXAMPLES = PROFILES[os.environ.get("PUSH_FUZZ_PROFILE", "suite")]
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TRIED: Counter[str] = Counter()
FIVE_XX: Counter[str] = Counter()
STARTED = time.monotonic()


@pytest.fixture(scope="module", autouse=True)
def fuzz_report():
    yield
    figures = {
        "profile": os.environ.get("PUSH_FUZZ_PROFILE", "suite"),
        "inputs": dict(TRIED),
        "5xx": dict(FIVE_XX),
        "seconds": round(time.monotonic() - STARTED, 1),
    }
    print("fuzz:", json.dumps(figures))
    output = Path(__file__).resolve().parent.parent / "test-output"
    output.mkdir(exist_ok=True)
    (output / "fuzz.json").write_text(json.dumps(figures, indent=1) + "\n")


def answered(target, response, method="POST"):
    TRIED[target] += 1
    if response.status_code >= 500:
        FIVE_XX[target] += 1
    assert response.status_code < 500, (target, response.status_code, response.content[:300])
    if response.status_code == 405:
        assert response.has_header("Allow") or response.content, "a 405 says what is allowed"
    elif response.status_code >= 400 and method != "HEAD":
        assert response.content, "a 4xx must say why"


# Bodies the form parser has to survive: form-encoded and multipart look-alikes, charsets.
CONTENT_TYPES = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=latin-1",
        "application/x-www-form-urlencoded; charset=nonsense",
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "multipart/form-data; boundary=",
        "text/plain",
        "application/json",
        "",
    ]
)
FORM_BYTES = st.one_of(
    st.binary(max_size=400),
    st.lists(
        st.tuples(
            st.sampled_from([b"hub.mode", b"hub.topic", b"hub.url", b"hub.callback", b"hub.%00"]),
            st.binary(max_size=40),
        ),
        max_size=6,
    ).map(lambda pairs: b"&".join(key + b"=" + value for key, value in pairs)),
    st.just(b'--x\r\nContent-Disposition: form-data; name="hub.mode"\r\n\r\npublish\r\n--x--'),
)
HOSTS = st.one_of(
    st.sampled_from(["testserver", "127.0.0.1:8000", "[::1]", "xn--nxasmq6b", "a..b", "-", ""]),
    st.text(string.ascii_letters + string.digits + ".-:[]_", max_size=200),
)


@FUZZ
@given(body=FORM_BYTES, content_type=CONTENT_TYPES, query=HUB_FIELDS)
def test_fuzz_hub_endpoint_raw_bodies(client, db, body, content_type, query):
    response = client.generic("POST", "/hub/", body, content_type, QUERY_STRING=_query(query))
    answered("hub endpoint (raw body)", response)


@FUZZ
@given(fields=HUB_FIELDS, host=HOSTS, method=st.sampled_from(["GET", "POST", "PUT", "HEAD"]))
def test_fuzz_hub_endpoint_any_host_and_method(client, db, fields, host, method):
    if method == "POST":
        response = client.post("/hub/", fields, HTTP_HOST=host)
    else:
        response = client.generic(method, "/hub/", HTTP_HOST=host)
    answered("hub endpoint (host, method)", response, method)


SIGNATURES = st.one_of(
    st.none(),
    st.sampled_from(["sha1=", "sha256=zz", "md5=00", "=", "sha256", "SHA256=" + "0" * 64]),
    st.text(string.printable.replace("\r", "").replace("\n", ""), max_size=80),
)


@FUZZ
@given(
    body=st.binary(max_size=500),
    content_type=st.sampled_from(["application/atom+xml", "text/plain", "", "x/y; charset=\x01"]),
    signature=SIGNATURES,
    sign_it=st.booleans(),
    link=st.none() | st.text(string.printable.replace("\r", "").replace("\n", ""), max_size=120),
)
def test_fuzz_callback_view_notifications(client, db, body, content_type, signature, sign_it, link):
    subscription, _ = Subscription.objects.get_or_create(
        hub="https://hub.example/",
        topic="http://testserver/feed",
        defaults={"verified": True, "secret": "fuzz-secret"},
    )
    url = urlsplit(subscription.callback_url)
    headers = {}
    if sign_it:
        headers["HTTP_X_HUB_SIGNATURE"] = sign("fuzz-secret", body)
    elif signature is not None:
        headers["HTTP_X_HUB_SIGNATURE"] = signature
    if link is not None:
        headers["HTTP_LINK"] = link
    response = client.generic(
        "POST", url.path, body, content_type, QUERY_STRING=url.query, **headers
    )
    answered("callback view (notifications)", response)
    if sign_it:
        assert 200 <= response.status_code < 300


def _query(fields):
    from django.utils.http import urlencode

    return urlencode(fields, doseq=True)


# Link headers from the RFC 8288 grammar, then bent: the parser sees mostly near-valid input.
URLS = st.one_of(
    st.sampled_from(["https://hub.example/", "http://t.example/a,b;c", "/relative", "", " "]),
    st.text(string.printable, max_size=30),
)
PARAMS = st.lists(
    st.tuples(
        st.sampled_from(["rel", "REL", "type", "title", "title*", "", " rel "]),
        st.one_of(
            st.sampled_from(['"hub"', "hub", '"hub self"', "'self'", '"', '"a,b;c"', ""]),
            st.text(string.printable, max_size=15),
        ),
        st.sampled_from(["=", " = ", ""]),
    ),
    max_size=4,
)
LINK_VALUES = st.lists(
    st.tuples(URLS, PARAMS, st.sampled_from(["<{}>", "<{}", "{}>", " <{}> ", "<<{}>>"])),
    max_size=5,
).map(
    lambda links: ", ".join(
        shape.format(url) + "".join(f"; {name}{sep}{value}" for name, value, sep in params)
        for url, params, shape in links
    )
)


@FUZZ
@given(value=LINK_VALUES | st.text(max_size=300))
def test_fuzz_link_header_parser(value):
    TRIED["Link-header parser"] += 1
    links = parse_links(value)
    for link in links:
        assert set(link) >= {"url"} and all(isinstance(v, str) for v in link.values())
    for rel in ("hub", "self"):
        assert all(url in value for url in rels(links, rel))


@FUZZ
@given(
    pairs=st.lists(
        st.tuples(
            st.text(string.ascii_letters + string.digits + "/:.,;?=&-_~%", min_size=1),
            st.sampled_from(["hub", "self", "alternate"]),
        ),
        max_size=4,
    )
)
def test_fuzz_link_header_round_trip(pairs):
    TRIED["Link-header parser"] += 1
    parsed = parse_links(format_links(pairs))
    assert [(link["url"], link["rel"]) for link in parsed] == [
        (url.strip(), rel) for url, rel in pairs
    ]


DOCUMENTS = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda rel, href, wrap: wrap.format(f'<link rel="{rel}" href="{href}"/>').encode(),
        st.sampled_from(["hub", "self", "HUB", "hub self", ""]),
        st.text(string.printable.replace('"', ""), max_size=30),
        st.sampled_from(
            [
                "<html><head>{}</head></html>",
                "<html><body>{}</body></html>",
                '<feed xmlns="http://www.w3.org/2005/Atom">{}</feed>',
                '<?xml version="1.0"?><rss><channel>{}</channel></rss>',
                "<feed>{}",
            ]
        ),
    ),
)


@FUZZ
@given(
    status=st.sampled_from([200, 200, 200, 204, 301, 302, 404, 500]),
    content_type=st.sampled_from(["text/html", "application/atom+xml", "application/xml", ""]),
    link=st.none() | LINK_VALUES.map(lambda value: value.replace("\r", "").replace("\n", "")),
    body=DOCUMENTS,
    location=st.sampled_from(["/page", "/elsewhere", "http://127.0.0.1:1/", "//", "%"]),
)
def test_fuzz_discovery_over_http(server, status, content_type, link, body, location):
    headers = {"Content-Type": content_type, "Location": location}
    if link is not None:
        headers["Link"] = link.encode("latin-1", "replace").decode("latin-1")
    server.default = Reply(status, body, headers)
    TRIED["discovery (HTTP)"] += 1
    try:
        found = discover(server.url + "/page")
    except DiscoveryError:
        return
    assert found.hubs and all(isinstance(hub, str) for hub in found.hubs)
    assert isinstance(found.topic, str)


LONG_HOST = "a" * 2100 + ".example"


def test_publish_with_a_host_longer_than_a_url_column_is_no_500(client, db):
    response = client.post(
        "/hub/", {"hub.mode": "publish", "hub.url": "http://testserver/feed"}, HTTP_HOST=LONG_HOST
    )
    answered("hub endpoint (long Host)", response)

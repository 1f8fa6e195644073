from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_push.links import format_links, parse_links, rels
from django_push.signatures import sign, verify


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha384", "sha512"])
def test_sign_matches_hmac(algorithm):
    expected = hmac.new(b"key", b"body", getattr(hashlib, algorithm)).hexdigest()
    assert sign("key", b"body", algorithm) == f"{algorithm}={expected}"
    assert verify("key", b"body", f"{algorithm}={expected}")
    assert verify(b"key", b"body", f"{algorithm.upper()}={expected.upper()}")


@pytest.mark.parametrize(
    "header", [None, "", "sha256", "md5=0000", "sha256=", "=abc", "sha1=" + "0" * 40, "sha1=zz"]
)
def test_invalid_signatures(header):
    assert not verify("key", b"body", header)


def test_wrong_key_or_body_fails():
    header = sign("key", b"body")
    assert not verify("other", b"body", header)
    assert not verify("key", b"bodY", header)


def test_unknown_algorithm_cannot_sign():
    with pytest.raises(ValueError, match="Unsupported"):
        sign("k", b"b", "md5")


@given(secret=st.text(min_size=1, max_size=50), body=st.binary(max_size=200))
def test_round_trip(secret, body):
    assert verify(secret, body, sign(secret, body, "sha512"))


def test_format_and_parse_round_trip():
    value = format_links([("https://hub.example/", "hub"), ("https://t.example/a,b;c", "self")])
    assert value == '<https://hub.example/>; rel="hub", <https://t.example/a,b;c>; rel="self"'
    links = parse_links(value)
    assert rels(links, "hub") == ["https://hub.example/"]
    assert rels(links, "self") == ["https://t.example/a,b;c"]


def test_parse_keeps_extra_params_and_multiple_rels():
    links = parse_links(
        '<https://x/>; rel="hub alternate"; type="text/html", <https://y/>; title=\'a, b\''
    )
    assert links[0] == {"url": "https://x/", "rel": "hub alternate", "type": "text/html"}
    assert rels(links, "alternate") == ["https://x/"]
    assert links[1]["url"] == "https://y/"


@given(st.text(max_size=200))
def test_parse_never_raises(value):
    for link in parse_links(value):
        assert "url" in link

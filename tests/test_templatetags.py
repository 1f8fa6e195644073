"""``{% websub_links %}``: HTML topics embed their hub and self links in ``<head>`` (P-4)."""

from __future__ import annotations

import urllib.request

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.template import engines

from django_push.discovery import discover
from django_push.exceptions import DiscoveryError
from django_push.publisher.templatetags import websub
from tests.testapp.views import HTML_TOPIC_HUBS, HTML_TOPIC_SELF

pytestmark = pytest.mark.django_db

HUB = "https://hub.example.com/"


def render(source, context=None, request=None):
    template = engines["django"].from_string("{% load websub %}" + source)
    return template.render(context or {}, request)


def test_library_name_is_ours():
    # "websub" is not shadowed by another app's library of the same name.
    libraries = engines["django"].engine.template_libraries
    assert libraries["websub"] is websub.register


def test_default_hub_from_settings_and_self_from_request(rf, settings):
    settings.PUSH_HUB = HUB
    html = render("{% websub_links %}", request=rf.get("/post/1/"))
    assert html == (
        '<link rel="hub" href="https://hub.example.com/">\n'
        '<link rel="self" href="http://testserver/post/1/">'
    )


def test_request_variable_of_a_plain_context_is_enough(rf, settings):
    # A dict context holding "request" (no RequestContext) still gives the self URL.
    settings.PUSH_HUB = HUB
    html = render("{% websub_links %}", {"request": rf.get("/post/2/")})
    assert '<link rel="self" href="http://testserver/post/2/">' in html


def test_explicit_hub_list_replaces_the_setting(rf, settings):
    settings.PUSH_HUB = "https://ignored.example/"
    hubs = ["https://hub-a.example/", "https://hub-b.example/"]
    html = render("{% websub_links hub=hubs %}", {"hubs": hubs}, rf.get("/p/"))
    assert html == (
        '<link rel="hub" href="https://hub-a.example/">\n'
        '<link rel="hub" href="https://hub-b.example/">\n'
        '<link rel="self" href="http://testserver/p/">'
    )


def test_explicit_hub_string_literal(rf, settings):
    settings.PUSH_HUB = "https://ignored.example/"
    html = render('{% websub_links hub="https://one.example/" %}', request=rf.get("/p/"))
    assert html.count('rel="hub"') == 1
    assert '<link rel="hub" href="https://one.example/">' in html


def test_missing_hub_variable_falls_back_to_the_setting(rf, settings):
    # An undefined variable resolves to "": the page keeps the site's hub, not an empty href.
    settings.PUSH_HUB = HUB
    html = render("{% websub_links hub=no_such_variable %}", request=rf.get("/p/"))
    assert '<link rel="hub" href="https://hub.example.com/">' in html
    assert 'href=""' not in html


def test_explicit_self_wins_and_needs_no_request(settings):
    settings.PUSH_HUB = HUB
    html = render('{% websub_links self="https://example.com/canonical/" %}')
    assert html == (
        '<link rel="hub" href="https://hub.example.com/">\n'
        '<link rel="self" href="https://example.com/canonical/">'
    )


def test_urls_are_escaped(rf, settings):
    settings.PUSH_HUB = 'https://hub.example/?a=1&b="2"'
    html = render("{% websub_links self=topic %}", {"topic": 'https://example.com/t?x=1&y="<q>"'})
    assert '<link rel="hub" href="https://hub.example/?a=1&amp;b=&quot;2&quot;">' in html
    assert '<link rel="self" href="https://example.com/t?x=1&amp;y=&quot;&lt;q&gt;&quot;">' in html
    # The default self URL (from the request, with its query string) is escaped as well.
    html = render("{% websub_links %}", request=rf.get("/p/", {"a": "1", "b": "2"}))
    assert '<link rel="self" href="http://testserver/p/?a=1&amp;b=2">' in html


def test_no_hub_renders_only_self(rf, settings):
    settings.PUSH_HUB = None
    html = render("{% websub_links %}", request=rf.get("/p/"))
    assert html == '<link rel="self" href="http://testserver/p/">'


def test_no_request_and_no_self_is_an_error_saying_what_to_do(settings):
    settings.PUSH_HUB = HUB
    with pytest.raises(ImproperlyConfigured) as excinfo:
        render("{% websub_links %}")
    message = str(excinfo.value)
    assert "request" in message
    assert "django.template.context_processors.request" in message
    assert "self=" in message


# A real view on a real server, found by our own discovery (S-2 reads <head> links only
# when no Link header is sent).


def fetch_headers(url):
    with urllib.request.urlopen(url) as response:
        assert response.status == 200
        assert response.headers.get_content_type() == "text/html"
        return response.headers


def test_live_page_default_links_are_discovered(live_server, settings):
    settings.PUSH_HUB = HUB
    url = live_server.url + "/html-topic/"
    assert fetch_headers(url).get_all("Link") is None
    found = discover(url)
    # The decoy rel="hub" in <body> is not picked up: only <head> counts (§8.1).
    assert found.hubs == [HUB]
    assert found.self_url == url
    assert found.topic == url


def test_live_page_explicit_links_round_trip_through_escaping(live_server, settings):
    settings.PUSH_HUB = "https://ignored.example/"
    url = live_server.url + "/html-topic/explicit/"
    assert fetch_headers(url).get_all("Link") is None
    found = discover(url)
    assert found.hubs == HTML_TOPIC_HUBS
    assert found.self_url == HTML_TOPIC_SELF  # & and " come back unescaped


def test_live_page_without_hub_is_not_a_websub_topic(live_server, settings):
    # Only rel="self" in <head>: discovery says so rather than guessing a hub.
    settings.PUSH_HUB = None
    with pytest.raises(DiscoveryError, match="no WebSub hub"):
        discover(live_server.url + "/html-topic/")

"""The outbound HTTP module: size caps, redirects, the address guard."""

from __future__ import annotations

import asyncio
import time

import pytest

from django_push import guard, http
from django_push.exceptions import FetchError
from tests.servers import Reply, Server


def run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("192.168.0.1", False),
        ("169.254.1.1", False),
        ("224.0.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("::ffff:127.0.0.1", False),
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
    ],
)
def test_is_public_address(address, public):
    assert http.is_public_address(address) is public


@pytest.mark.parametrize("url", ["ftp://x/", "/relative", "http://", "javascript:alert(1)"])
def test_check_url_refuses_non_http(url):
    with pytest.raises(FetchError, match="absolute http"):
        http.check_url(url, guard=False)


def test_guard_refuses_literal_private_address(server):
    with pytest.raises(FetchError, match="not a public address"):
        run(http.get(server.url, guard=True))
    assert server.requests == []


def test_guard_refuses_names_resolving_to_private_addresses(server):
    with pytest.raises(FetchError, match="not a public address"):
        run(http.get(f"http://localhost:{server.port}/", guard=True))
    assert server.requests == []


def test_without_guard_loopback_is_reachable(server):
    assert run(http.get(server.url)).status == 200


def test_body_over_cap_is_refused(server):
    server.default = Reply(200, b"x" * 100)
    with pytest.raises(FetchError, match="cap"):
        run(http.get(server.url, max_bytes=10))
    assert run(http.get(server.url, max_bytes=100)).body == b"x" * 100


def test_redirect_loop_stops(server):
    server.default = Reply(307, headers={"Location": "/again"})
    with pytest.raises(FetchError, match="redirects"):
        run(http.post_form(server.url, {"a": "b"}))


def test_query_string_is_appended_with_ampersand(server):
    run(http.get(server.url + "/cb?token=1#frag", params=[("hub.mode", "subscribe")]))
    assert server.requests[0].path == "/cb?token=1&hub.mode=subscribe"


def test_response_helpers(server):
    server.default = Reply(
        201, "é".encode("latin-1"), {"Content-Type": 'text/plain; charset="latin-1"'}
    )
    response = run(http.get(server.url))
    assert response.ok
    assert response.status_code == 201
    assert response.charset == "latin-1"
    assert response.text == "é"
    assert response.content_type == 'text/plain; charset="latin-1"'


def test_guard_checks_every_redirect_hop(server, monkeypatch, settings):
    # Pretend the test server's address and port are allowed; the redirect target is not.
    monkeypatch.setattr(guard, "is_public_address", lambda address: address == "127.0.0.1")
    settings.PUSH_ALLOWED_PORTS = [80, server.port]
    server.default = Reply(302, headers={"Location": "http://10.0.0.1/internal"})
    with pytest.raises(FetchError, match="10.0.0.1 is not a public address"):
        run(http.get(server.url, guard=True, follow_redirects=True))


def test_post_is_not_redirected_by_302(server):
    server.replies["/hub"] = Reply(302, headers={"Location": "/elsewhere"})
    response = run(http.post_form(server.url + "/hub", {"a": "b"}))
    assert response.status == 302
    assert [r.path for r in server.requests] == ["/hub"]


def test_303_after_post_becomes_get(server):
    server.replies["/hub"] = Reply(303, headers={"Location": "/done"})
    run(http.post_form(server.url + "/hub", {"a": "b"}, follow_redirects=True))
    assert [(r.method, r.path) for r in server.requests] == [("POST", "/hub"), ("GET", "/done")]


def test_body_sent_in_slow_chunks_is_read_whole():
    # A body that arrives in pieces (chunked, with pauses) must be read to its end.
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Slow(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"<?xml version='1.0'?>", b"<feed>", b"</feed>"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
                time.sleep(0.05)
            self.wfile.write(b"0\r\n\r\n")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        body = run(http.get(f"http://127.0.0.1:{httpd.server_address[1]}/")).body
        assert body == b"<?xml version='1.0'?><feed></feed>"
        with pytest.raises(FetchError, match="cap"):
            run(http.get(f"http://127.0.0.1:{httpd.server_address[1]}/", max_bytes=25))
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_get_does_not_follow_307_unless_asked(server):
    server.replies["/cb"] = Reply(307, headers={"Location": "/elsewhere"})
    assert run(http.get(server.url + "/cb")).status == 307
    assert [r.path for r in server.requests] == ["/cb"]


def test_credentials_are_not_sent_to_another_host(server):
    with Server() as other:
        server.replies["/topic"] = Reply(302, headers={"Location": other.url + "/moved"})
        run(http.get(server.url + "/topic", auth=("user", "pw"), follow_redirects=True))
        assert "Authorization" in server.requests[0].headers
        assert other.requests[0].path == "/moved"
        assert "Authorization" not in other.requests[0].headers

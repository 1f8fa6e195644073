"""The network guard on every outgoing request, over real HTTP on 127.0.0.1.

The test settings turn the development switch on so that tests reach their servers; each
test here turns it off again, and then no connection may reach the server at all.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from django.test import override_settings

from django_push import checks, http
from django_push.conf import conf
from django_push.discovery import discover
from django_push.exceptions import DiscoveryError, FetchError, GuardRefusal, PingError
from django_push.publisher import ping_hub
from django_push.subscriber.models import Subscription, SubscriptionError
from tests.servers import Reply, Server

guarded = pytest.mark.usefixtures("guard_on")


@pytest.fixture
def guard_on(settings):
    settings.PUSH_HUB_ALLOW_PRIVATE_ADDRESSES = False


def run(coro):
    return asyncio.run(coro)


# What Python's ipaddress gets wrong on its own: multicast, fec0::/10, 3fff::/20 and the
# embedded IPv4 forms count as is_global on some or all of Python 3.11 .. 3.13.
REFUSED = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.0.1",
    "100.64.0.1",  # shared address space (RFC 6598)
    "100.100.100.200",  # a cloud metadata address inside it
    "169.254.169.254",
    "0.0.0.0",
    "192.0.2.1",
    "198.18.0.1",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "fe80::1",
    "fe80::1%eth0",
    "fec0::1",  # site-local, deprecated but routed inside some networks
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "ff0e::1",
    "2001:db8::1",
    "3fff::1",  # documentation (RFC 9637)
    "2001::1",  # Teredo
    "5f00::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a64:64c8",  # NAT64 of 100.100.100.200
    "64:ff9b:1::808:808",  # local-use NAT64 prefix: never global
    "::127.0.0.1",  # IPv4-compatible
    "::a00:1",
    "example.com",  # a name is no address
]
ALLOWED = [
    "8.8.8.8",
    "93.184.216.34",
    "2606:4700::1111",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "2002:808:808::",
    "64:ff9b::808:808",
]


@pytest.mark.parametrize("address", REFUSED)
def test_refused_addresses(address):
    assert http.is_public_address(address) is False


@pytest.mark.parametrize("address", ALLOWED)
def test_allowed_addresses(address):
    assert http.is_public_address(address) is True


# Requests through http.py are guarded without anyone asking ---------------------------


@guarded
def test_guard_is_on_by_default(server):
    with pytest.raises(GuardRefusal, match="not a public address"):
        run(http.get(server.url))
    with pytest.raises(GuardRefusal, match="not a public address"):
        run(http.post_form(server.url, {"a": "b"}))
    assert server.requests == []


@guarded
def test_guard_follows_the_old_setting_name_and_the_new_one(server):
    with override_settings(PUSH_ALLOW_PRIVATE_ADDRESSES=True):
        assert run(http.get(server.url)).status == 200
    with (
        override_settings(
            PUSH_ALLOW_PRIVATE_ADDRESSES=False, PUSH_HUB_ALLOW_PRIVATE_ADDRESSES=True
        ),
        pytest.raises(FetchError, match="not a public address"),
    ):
        run(http.get(server.url))
    assert len(server.requests) == 1


@guarded
@pytest.mark.parametrize("dot", ["\u3002", "\uff0e", "\uff61"])  # ideographic, fullwidth, halfwidth
def test_unicode_dots_in_an_address_literal(server, dot):
    # yarl turns these into 127.0.0.1 and aiohttp then connects without asking a resolver.
    url = f"http://127{dot}0{dot}0{dot}1:{server.port}/"
    with pytest.raises(FetchError, match="127.0.0.1 is not a public address"):
        run(http.get(url))
    with pytest.raises(FetchError, match="127.0.0.1 is not a public address"):
        http.check_url(url, guard=True)
    assert server.requests == []


@guarded
@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "017700000001", "127.1", "0177.0.0.1"])
def test_numeric_ipv4_forms(server, host):
    # The C resolver reads all of these as 127.0.0.1.
    with pytest.raises(FetchError, match="canonical IPv4"):
        run(http.get(f"http://{host}:{server.port}/"))
    assert server.requests == []


@guarded
def test_localhost_names(server):
    for host in ("localhost", "LOCALHOST.", "api.localhost"):
        with pytest.raises(FetchError, match="not a public address"):
            run(http.get(f"http://{host}:{server.port}/"))
    assert server.requests == []


@guarded
def test_ports_outside_the_allow_list(server):
    # Nothing listens on these addresses: the guard refuses before any connection is tried.
    with pytest.raises(FetchError, match="port 8080 is not allowed"):
        run(http.get("http://93.184.216.34:8080/"))
    with pytest.raises(FetchError, match="port 22 is not allowed"):
        run(http.post_form("https://[2606:4700::1111]:22/", {"a": "b"}))
    # An implicit port counts too.
    with (
        override_settings(PUSH_ALLOWED_PORTS=[443]),
        pytest.raises(FetchError, match="port 80 is not allowed"),
    ):
        run(http.get("http://93.184.216.34/"))
    # Allowing a port does not allow the address.
    with (
        override_settings(PUSH_ALLOWED_PORTS=[server.port]),
        pytest.raises(FetchError, match="127.0.0.1 is not a public address"),
    ):
        run(http.get(server.url))
    assert server.requests == []


@guarded
def test_connector_refuses_ports_outside_the_allow_list():
    async def send():
        async with http.client_session() as session, session.get("http://93.184.216.34:8080/"):
            pass

    with pytest.raises(OSError, match="port 8080 is not allowed"):
        run(send())


@guarded
def test_connector_checks_the_host_aiohttp_connects_to(server):
    # A session from client_session(), used directly (as the hub's fan-out does).
    async def send():
        url = f"http://127\u30020\u30020\u30021:{server.port}/"
        async with http.client_session() as session, session.get(url):
            pass

    with pytest.raises(OSError, match="not a public address"):
        run(send())
    assert server.requests == []


def private_name():
    """A name (not a literal, not "localhost") that the system resolver maps to loopback."""
    name = socket.gethostname()
    if not any(
        not http.is_public_address(str(info[4][0])) for info in socket.getaddrinfo(name, None)
    ):
        pytest.fail(f"{name} should resolve to a loopback or private address here")
    return name


@guarded
def test_names_are_checked_after_resolution(server):
    name = private_name()
    with (
        override_settings(PUSH_ALLOWED_PORTS=[server.port]),
        pytest.raises(GuardRefusal, match="which is not a public address"),
    ):
        run(http.get(f"http://{name}:{server.port}/"))
    assert server.requests == []


@guarded
def test_deliveries_are_guarded(server, settings):
    # The hub's fan-out: one session, many deliveries.
    settings.PUSH_ALLOWED_PORTS = [server.port]
    name = private_name()

    async def deliver(url):
        async with http.client_session() as session:
            return await http.deliver(session, url, b"<feed/>", {})

    with pytest.raises(GuardRefusal, match="127.0.0.1 is not a public address"):
        run(deliver(server.url + "/cb"))
    with pytest.raises(GuardRefusal, match="which is not a public address"):
        run(deliver(f"http://{name}:{server.port}/cb"))
    assert server.requests == []


def test_resolver_passes_public_answers():
    from django_push.guard import GuardedResolver

    async def resolve():
        return await GuardedResolver().resolve("93.184.216.34", 443)

    [result] = run(resolve())
    assert (result["host"], result["port"]) == ("93.184.216.34", 443)


# Every role goes through the guard ---------------------------------------------------


@guarded
def test_publisher_ping_is_guarded(server):
    with pytest.raises(PingError, match="not a public address"):
        ping_hub("https://example.com/feed/", hub_url=server.url + "/hub")
    assert server.requests == []


@guarded
def test_discovery_is_guarded(server):
    with pytest.raises(DiscoveryError, match="not a public address"):
        discover(server.url + "/feed")
    assert server.requests == []


@pytest.mark.django_db
@guarded
def test_subscription_requests_are_guarded(server):
    sub = Subscription.objects.create(topic="https://example.com/feed", hub=server.url + "/hub")
    with pytest.raises(SubscriptionError, match="not a public address"):
        sub.subscribe()
    with pytest.raises(SubscriptionError, match="not a public address"):
        sub.unsubscribe()
    assert server.requests == []


@pytest.mark.django_db
@guarded
@pytest.mark.parametrize("action", ["renew", "unsubscribe"])
def test_admin_actions_are_guarded(admin_client, server, action):
    from django.urls import reverse

    sub = Subscription.objects.create(topic="https://example.com/feed", hub=server.url + "/hub")
    response = admin_client.post(
        reverse("admin:subscriber_subscription_changelist"),
        {"action": action, "_selected_action": [sub.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert b"not a public address" in response.content
    assert server.requests == []


# Redirects of subscription requests keep hub.secret at home ------------------------


def test_307_to_another_origin_does_not_resend_the_form(server):
    with Server() as other:
        server.replies["/hub"] = Reply(307, headers={"Location": other.url + "/hub"})
        with pytest.raises(FetchError, match="another origin"):
            run(http.post_form(server.url + "/hub", {"hub.secret": "s3cret"}))
        assert [r.path for r in server.requests] == ["/hub"]
        assert other.requests == []


@pytest.mark.django_db
@override_settings(PUSH_INSECURE_SECRETS=True)
@pytest.mark.parametrize("status", [307, 308])
def test_hub_secret_never_follows_a_redirect_to_another_origin(server, status):
    with Server() as other:
        other.default = Reply(202)
        server.replies["/hub"] = Reply(status, headers={"Location": other.url + "/hub"})
        sub = Subscription.objects.create(topic="https://example.com/f", hub=server.url + "/hub")
        with pytest.raises(SubscriptionError, match="another origin"):
            sub.subscribe()
        [first] = server.requests
        assert first.form["hub.secret"]  # it went where it was meant to go
        assert other.requests == []


def test_307_to_the_same_origin_repeats_the_form(server):
    server.replies["/hub"] = Reply(307, headers={"Location": "/moved"})
    server.replies["/moved"] = Reply(202)
    response = run(http.post_form(server.url + "/hub", {"hub.secret": "s3cret"}))
    assert response.status == 202
    assert [r.form for r in server.requests] == [{"hub.secret": ["s3cret"]}] * 2


def test_downgrade_from_https_is_another_origin():
    # Same host and port, another scheme: the body would travel in clear text.
    assert not http.same_origin("https://hub.example:8443/a", "http://hub.example:8443/b")
    assert not http.same_origin("https://hub.example/a", "http://hub.example/b")
    assert not http.same_origin("http://hub.example/a", "http://hub.example:8080/b")
    assert http.same_origin("https://hub.example/a", "https://HUB.example:443/b")


# The hub endpoint decides without DNS -------------------------------------------------


def hub_request(client, **data):
    return client.post("/hub/", {key.replace("_", ".", 1): value for key, value in data.items()})


@pytest.fixture
def no_dns(monkeypatch):
    """Fail any DNS lookup made while the hub endpoint answers (a tripwire, not a fake)."""
    lookups = []

    def tripwire(host, *args, **kwargs):
        lookups.append(host)
        raise OSError(f"DNS lookup of {host} in the request thread")

    monkeypatch.setattr(socket, "getaddrinfo", tripwire)
    return lookups


@pytest.mark.django_db
@guarded
def test_hub_endpoint_does_not_resolve_names(client, settings, no_dns):
    settings.PUSH_HUB_TOPICS = ["https://topics.example/"]
    response = hub_request(
        client,
        hub_mode="subscribe",
        hub_callback="https://subscriber.example/cb?id=1",
        hub_topic="https://topics.example/feed",
    )
    assert response.status_code == 202, response.content
    assert no_dns == []


@pytest.mark.django_db
@guarded
@pytest.mark.parametrize(
    ("callback", "reason"),
    [
        ("http://127。0。0。1/cb", "hub.callback: 127.0.0.1 is not a public address"),
        ("http://[64:ff9b::7f00:1]/cb", "hub.callback: 64:ff9b::7f00:1 is not a public address"),
        ("http://100.100.100.200/cb", "hub.callback: 100.100.100.200 is not a public address"),
        ("http://2130706433/cb", "hub.callback: host 2130706433 is not a canonical IPv4"),
        ("http://a.localhost/cb", "hub.callback: host a.localhost is not a public address"),
        ("https://subscriber.example:8443/cb", "hub.callback: port 8443 is not allowed"),
    ],
)
def test_hub_endpoint_refuses_literals_and_ports_at_once(
    client, settings, no_dns, callback, reason
):
    settings.PUSH_HUB_TOPICS = ["https://topics.example/"]
    response = hub_request(
        client, hub_mode="subscribe", hub_callback=callback, hub_topic="https://topics.example/f"
    )
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert no_dns == []


# System checks ----------------------------------------------------------------------


def check_ids(settings):
    settings.ALLOWED_HOSTS = ["testserver"]  # "*" of the test settings would add W107
    return [message.id for message in checks.check_common_settings()]


@pytest.mark.parametrize("value", [80, "80,443", [80, "443"], [0], [70000], [True]])
def test_e008_bad_allowed_ports(settings, value):
    settings.PUSH_ALLOWED_PORTS = value
    settings.PUSH_ALLOW_PRIVATE_ADDRESSES = False
    assert check_ids(settings) == ["django_push.E008"]


def test_allowed_ports_default_and_custom(settings):
    del settings.PUSH_ALLOWED_PORTS
    settings.PUSH_ALLOW_PRIVATE_ADDRESSES = False
    assert tuple(conf.PUSH_ALLOWED_PORTS) == (80, 443)
    settings.PUSH_ALLOWED_PORTS = [443, 8443]
    assert check_ids(settings) == []


@pytest.mark.parametrize(
    "name", ["PUSH_ALLOW_PRIVATE_ADDRESSES", "PUSH_HUB_ALLOW_PRIVATE_ADDRESSES"]
)
def test_w002_switch_on_in_production(settings, name):
    del settings.PUSH_HUB_ALLOW_PRIVATE_ADDRESSES
    setattr(settings, name, True)
    settings.DEBUG = False
    assert check_ids(settings) == ["django_push.W002"]
    assert name in checks.check_common_settings()[0].msg
    settings.DEBUG = True
    assert check_ids(settings) == []
    setattr(settings, name, False)
    settings.DEBUG = False
    assert check_ids(settings) == []


# The allow-list: PUSH_TRUSTED_DESTINATIONS ---------------------------------------------


@guarded
@pytest.mark.parametrize(
    "entry", ["127.0.0.0/8:{port}", "127.0.0.1:{port}", "localhost:{port}", "LocalHost.:{port}"]
)
def test_trusted_destination_lets_one_host_through(server, settings, entry):
    settings.PUSH_TRUSTED_DESTINATIONS = [entry.format(port=server.port)]
    host = "localhost" if "ocal" in entry else "127.0.0.1"
    assert run(http.get(f"http://{host}:{server.port}/feed")).status == 200
    assert len(server.requests) == 1
    # The guard stays on for everything else.
    with pytest.raises(GuardRefusal, match="10.0.0.5 is not a public address"):
        run(http.get(f"http://10.0.0.5:{server.port}/"))
    with pytest.raises(GuardRefusal, match="port 8080 is not allowed"):
        run(http.get("http://93.184.216.34:8080/"))


@guarded
def test_trusted_destination_without_port_keeps_the_allowed_ports(server, settings):
    settings.PUSH_TRUSTED_DESTINATIONS = ["127.0.0.0/8"]
    with pytest.raises(GuardRefusal, match=f"port {server.port} is not allowed"):
        run(http.get(server.url))
    settings.PUSH_ALLOWED_PORTS = [server.port]
    assert run(http.get(server.url)).status == 200
    # An entry with a port trusts that port only.
    settings.PUSH_ALLOWED_PORTS = [80, 443]
    settings.PUSH_TRUSTED_DESTINATIONS = ["127.0.0.1:1"]
    with pytest.raises(GuardRefusal, match=f"port {server.port} is not allowed"):
        run(http.get(server.url))
    settings.PUSH_ALLOWED_PORTS = [server.port]
    with pytest.raises(GuardRefusal, match="127.0.0.1 is trusted on other ports only"):
        run(http.get(server.url))
    assert len(server.requests) == 1


@guarded
def test_trusted_name_is_trusted_after_resolution(server, settings):
    name = private_name()
    settings.PUSH_TRUSTED_DESTINATIONS = [f"{name}:{server.port}"]
    assert run(http.get(f"http://{name}:{server.port}/")).status == 200
    # A name resolving into a trusted network passes too; another network does not.
    settings.PUSH_TRUSTED_DESTINATIONS = ["127.0.0.0/8", "::1", "10.0.0.0/8"]
    settings.PUSH_ALLOWED_PORTS = [server.port]
    assert run(http.get(f"http://{name}:{server.port}/")).status == 200
    settings.PUSH_TRUSTED_DESTINATIONS = ["10.0.0.0/8"]
    with pytest.raises(GuardRefusal, match="which is not a public address"):
        run(http.get(f"http://{name}:{server.port}/"))
    assert len(server.requests) == 2


@guarded
def test_redirect_from_a_trusted_host_is_checked_again(server, settings):
    settings.PUSH_TRUSTED_DESTINATIONS = [f"localhost:{server.port}"]
    server.replies["/moved"] = Reply(302, headers={"Location": f"{server.url}/inside"})
    with pytest.raises(GuardRefusal, match="127.0.0.1 is not a public address"):
        run(http.get(f"http://localhost:{server.port}/moved", follow_redirects=True))
    assert [request.path for request in server.requests] == ["/moved"]


@guarded
def test_trusted_destination_for_deliveries(server, settings):
    settings.PUSH_TRUSTED_DESTINATIONS = [f"127.0.0.1:{server.port}"]

    async def deliver(url):
        async with http.client_session() as session:
            return await http.deliver(session, url, b"<feed/>", {})

    assert run(deliver(server.url + "/cb")) == 200


@guarded
def test_refusals_name_the_setting_that_allows_them(server):
    with pytest.raises(GuardRefusal) as refused:
        run(http.get(server.url))
    assert f"add '127.0.0.1:{server.port}' to PUSH_TRUSTED_DESTINATIONS" in str(refused.value)
    with pytest.raises(GuardRefusal) as refused:
        run(http.get("http://10.0.0.5/"))
    assert "add '10.0.0.5' to PUSH_TRUSTED_DESTINATIONS" in str(refused.value)
    with pytest.raises(GuardRefusal) as refused:
        run(http.get("http://[fd00::5]:8080/"))
    assert "add '[fd00::5]:8080' to PUSH_TRUSTED_DESTINATIONS" in str(refused.value)
    with pytest.raises(GuardRefusal) as refused:
        run(http.get("http://93.184.216.34:8080/"))
    assert "add it to PUSH_ALLOWED_PORTS" in str(refused.value)
    with pytest.raises(PingError) as refused:
        ping_hub("https://example.com/feed/", hub_url=server.url + "/hub")
    assert str(refused.value).startswith(f"Hub {server.url}/hub could not be reached: 127.0.0.1")
    assert "PUSH_TRUSTED_DESTINATIONS" in str(refused.value)


@pytest.mark.parametrize(
    ("entry", "network", "name", "port"),
    [
        ("10.0.0.0/8", "10.0.0.0/8", None, None),
        ("10.0.0.5:8080", "10.0.0.5/32", None, 8080),
        ("10.1.2.3/8:8080", "10.0.0.0/8", None, 8080),
        ("fd00::/8", "fd00::/8", None, None),
        ("[fd00::5]:8080", "fd00::5/128", None, 8080),
        ("Hub.Internal.", None, "hub.internal", None),
        ("hub.internal:8080", None, "hub.internal", 8080),
    ],
)
def test_parse_destination(entry, network, name, port):
    from django_push.guard import parse_destination

    parsed = parse_destination(entry)
    assert (str(parsed.network) if parsed.network else None, parsed.name, parsed.port) == (
        network,
        name,
        port,
    )


@pytest.mark.parametrize(
    "value",
    ["10.0.0.0/8", ["10.0.0.0/33"], ["hub internal"], ["hub:port"], ["hub:0"], ["[fd00::1"], [8]],
)
def test_e014_bad_trusted_destinations(settings, value):
    settings.PUSH_ALLOW_PRIVATE_ADDRESSES = False
    settings.PUSH_TRUSTED_DESTINATIONS = value
    assert check_ids(settings) == ["django_push.E014"]


@pytest.mark.parametrize("name", ["PUSH_HUB", "PUSH_HUB_URL"])
def test_w004_hub_setting_the_guard_refuses(settings, name):
    settings.PUSH_ALLOW_PRIVATE_ADDRESSES = False
    setattr(settings, name, "http://10.0.0.5:8080/hub/")
    settings.ALLOWED_HOSTS = ["testserver"]  # "*" of the test settings would add W107
    [warning] = checks.check_common_settings()
    assert warning.id == "django_push.W004"
    assert name in warning.msg
    assert "'10.0.0.5:8080' to PUSH_TRUSTED_DESTINATIONS" in warning.msg
    settings.PUSH_TRUSTED_DESTINATIONS = ["10.0.0.0/8:8080"]
    assert check_ids(settings) == []
    # Names are not resolved by check; a loopback name is refused without DNS.
    setattr(settings, name, "http://hub.internal/hub/")
    assert check_ids(settings) == []
    setattr(settings, name, "http://localhost/hub/")
    assert check_ids(settings) == ["django_push.W004"]
    settings.PUSH_ALLOW_PRIVATE_ADDRESSES = True  # the guard is off: nothing to refuse
    settings.DEBUG = True
    assert check_ids(settings) == []


def test_w004_through_manage_py_check(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.PUSH_ALLOW_PRIVATE_ADDRESSES = False
    settings.PUSH_HUB = "http://192.168.1.10/hub/"
    with pytest.raises(SystemCheckError, match="W004"):
        call_command("check", fail_level="WARNING")

"""The documentation and the code stay in step.

Python reaches the docs only through ``literalinclude`` of files under docs/examples/,
and every one of those files is exercised here.
"""

from __future__ import annotations

import logging
import re
import runpy
from pathlib import Path

import pytest
from django.test import override_settings

from django_push import checks
from django_push.conf import Settings
from tests.servers import Reply

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.glob("*.rst"))
QUICKSTART = DOCS / "examples" / "quickstart"  # run in a project: test_quickstart_project.py


def test_docs_have_no_untested_python_blocks():
    for page in PAGES:
        text = page.read_text()
        assert not re.search(r"\.\. (code-block|code|sourcecode)::\s*(python|py|pycon)", text), (
            page.name
        )
        for target, options in re.findall(r"\.\. literalinclude:: (\S+)\n((?:   :.*\n)*)", text):
            path = DOCS / target
            assert path.exists(), f"{page.name} includes missing {target}"
            assert path.relative_to(DOCS).parts[0] == "examples", (
                f"{page.name}: Python must come from docs/examples"
            )
            for name in re.findall(r":pyobject: (\w+)", options):
                assert re.search(rf"^(class|def) {name}\b", path.read_text(), re.M), (
                    page.name,
                    name,
                )


def test_every_setting_and_check_id_is_documented():
    reference = (DOCS / "settings.rst").read_text()
    names = [name for name in vars(Settings) if name.startswith("PUSH_")]
    assert len(names) >= 20
    for name in names:
        assert f"``{name}``" in reference, f"{name} is missing from docs/settings.rst"
    ids = set(re.findall(r"django_push\.[EW]\d{3}", Path(checks.__file__).read_text()))
    for check_id in ids:
        assert check_id in reference, f"{check_id} is missing from docs/settings.rst"


@pytest.mark.django_db
def test_settings_example_passes_the_checks():
    values = runpy.run_path(str(QUICKSTART / "settings.py"))
    push = {name: value for name, value in values.items() if name.startswith("PUSH_")}
    assert "django_tasks_db" in values["INSTALLED_APPS"]
    with override_settings(**push, PUSH_HUB_ALLOW_PRIVATE_ADDRESSES=False):  # tests turn it on
        for check in (
            checks.check_publisher_settings,
            checks.check_subscriber_settings,
            checks.check_hub_settings,
        ):
            assert check() == [], check.__name__


@pytest.mark.django_db
def test_publisher_example(rf, server, settings, django_capture_on_commit_callbacks):
    from docs.examples import publisher_example as example

    settings.PUSH_HUB = server.url + "/hub"
    server.default = Reply(204)
    response = example.EntryFeed()(rf.get("/feed/"))
    assert f'<{server.url}/hub>; rel="hub"' in response["Link"]
    assert b'rel="hub"' in response.content
    assert b'"https://hub.example.com/"' in example.OtherHubFeed()(rf.get("/feed/")).content
    assert 'rel="self"' in example.status_page(rf.get("/status/"))["Link"]
    with django_capture_on_commit_callbacks(execute=True):
        example.publish_entry("News", "http://example.com/feed/")
    assert example.ENTRIES[0]["title"] == "News"
    assert example.ping_now("http://example.com/feed/", server.url + "/other").status == 204
    assert [r.form["hub.url"] for r in server.requests] == [["http://example.com/feed/"]] * 2


@pytest.mark.django_db
def test_subscriber_example(client, server, django_capture_on_commit_callbacks, caplog):
    from docs.examples import subscriber_example as example

    from django_push.subscriber.models import Subscription

    server.replies["/topic"] = Reply(200, b"", {"Link": f'<{server.url}/hub>; rel="hub"'})
    server.replies["/hub"] = Reply(202)
    with django_capture_on_commit_callbacks(execute=True):
        followed = example.follow(server.url + "/topic")
        other = example.follow_at("http://example.com/other", server.url + "/hub")
    assert followed.hub == other.hub == server.url + "/hub"
    assert [r.form["hub.mode"] for r in server.requests if r.path == "/hub"] == [["subscribe"]] * 2

    Subscription.objects.filter(pk=followed.pk).update(verified=True)
    callback = followed.callback_url.removeprefix("http://testserver.com")
    client.post(callback, data=b"news", content_type="text/plain")
    assert example.received[-1] == (followed.topic, b"news")

    request = (
        __import__("django.test", fromlist=["RequestFactory"])
        .RequestFactory()
        .post(f"/?token={followed.callback_token}", data=b"abc", content_type="text/plain")
    )
    with caplog.at_level(logging.INFO):
        assert example.LoggingCallback.as_view()(request, pk=followed.pk).status_code == 200
    assert "sent 3 bytes" in caplog.text

    example.stop_following(server.url + "/topic")
    assert server.requests[-1].form["hub.mode"] == ["unsubscribe"]


# The quickstart (docs/quickstart.rst) and the deployment guide (docs/deployment.rst) ------


def test_quickstart_is_first_in_the_toctree():
    index = (DOCS / "index.rst").read_text()
    toctree = index.split(".. toctree::", 1)[1]
    entries = [line.strip() for line in toctree.splitlines() if line.strip()]
    assert entries[1] == "quickstart", entries  # after ":maxdepth: 2"
    assert "literalinclude" not in index  # the install steps moved to the quickstart


@pytest.mark.django_db
def test_quickstart_own_hub_accepts_only_its_topics(client):
    from django_push.hub.models import Ping

    values = runpy.run_path(str(QUICKSTART / "settings.py"))
    push = {name: value for name, value in values.items() if name.startswith("PUSH_HUB")}
    assert push["PUSH_HUB"] == push["PUSH_HUB_URL"]  # the feeds declare this site's hub
    from tests.hub_rows import subscribe

    subscribe("https://subscriber.example/cb", "https://www.example.com/feed/")  # followed
    with override_settings(**push):
        ours = client.post(
            "/hub/", {"hub.mode": "publish", "hub.url": "https://www.example.com/feed/"}
        )
        theirs = client.post(
            "/hub/", {"hub.mode": "publish", "hub.url": "https://elsewhere.example.org/feed/"}
        )
    assert ours.status_code == 202
    assert theirs.status_code == 400
    assert b"not published through this hub" in theirs.content
    ping = Ping.objects.get()
    assert (ping.topic, ping.hub_url) == ("https://www.example.com/feed/", push["PUSH_HUB_URL"])


@pytest.mark.django_db
def test_proxy_settings_example(rf):
    from django_push.hub.views import HubView

    values = runpy.run_path(str(DOCS / "examples" / "quickstart_proxy_settings.py"))
    names = {name: value for name, value in values.items() if name.isupper()}
    assert names["DATA_UPLOAD_MAX_MEMORY_SIZE"] >= names["PUSH_MAX_BODY_SIZE"]
    nginx = (DOCS / "deployment.rst").read_text()
    limit = int(re.search(r"location /subscriber/ \{\n\s+client_max_body_size (\d+)m;", nginx)[1])
    assert limit * 1024 * 1024 == names["PUSH_MAX_BODY_SIZE"]
    with override_settings(**names, PUSH_HUB_ALLOW_PRIVATE_ADDRESSES=False):
        for check in (
            checks.check_publisher_settings,
            checks.check_subscriber_settings,
            checks.check_hub_settings,
            checks.check_common_settings,
        ):
            assert check() == [], check.__name__
        # What nginx forwards: Django sees HTTPS, so URLs built from requests say https.
        request = rf.post("/hub/", HTTP_HOST="www.example.com", HTTP_X_FORWARDED_PROTO="https")
        assert request.is_secure()
        assert request.build_absolute_uri("/hub/") == "https://www.example.com/hub/"
        assert HubView().hub_url(rf.post("/hub/")) == "https://www.example.com/hub/"


def test_deployment_names_real_check_ids():
    known = set(re.findall(r"django_push\.[EW]\d{3}", Path(checks.__file__).read_text()))
    text = (DOCS / "deployment.rst").read_text()
    checklist = text.split("Checklist before going live", 1)[1]
    named = set(re.findall(r"django_push\.[EW]\d{3}", checklist))
    assert {"django_push.W001", "django_push.W101", "django_push.E002"} <= named
    assert named <= known


def _command_lines():
    for page in ("quickstart.rst", "deployment.rst"):
        for line in (DOCS / page).read_text().splitlines():
            for match in re.finditer(r"manage\.py ([a-z_]+)([^`\n]*)", line):
                args = []
                for token in match[2].split():
                    if token.startswith(("#", ">", "2>", "&", "|", ";")):
                        break
                    args.append(token)
                yield page, match[1], args


def test_documented_commands_and_flags_exist():
    from django.core.management import get_commands, load_command_class

    commands = dict(get_commands())
    commands.setdefault("rqworker", "django_rq")  # installed on the RQ leg only
    seen = set()
    # db_worker checks that its backend is a database backend, as in the documented settings.
    with override_settings(TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}):
        for page, name, args in _command_lines():
            assert name in commands, f"{page}: no command {name}"
            parser = load_command_class(commands[name], name).create_parser("manage.py", name)
            parser.parse_args(args)  # raises CommandError on an unknown flag or value
            seen.add(name)
    assert {
        "migrate",
        "db_worker",
        "rqworker",
        "hub_sweep",
        "renew_subscriptions",
        "prune_db_task_results",
        "check",
    } <= seen
    deployment = (DOCS / "deployment.rst").read_text()
    # The worker flags the test suite's own workers use (tests/conftest.py).
    assert "rqworker --with-scheduler --job-class django_tasks_rq.Job default" in deployment


# The testing kit (docs/testing.rst) and the troubleshooting page ---------------------------


def test_testing_and_troubleshooting_pages_are_in_the_toctree():
    toctree = (DOCS / "index.rst").read_text().split(".. toctree::", 1)[1]
    entries = [line.strip() for line in toctree.splitlines() if line.strip()]
    assert {"testing", "troubleshooting"} <= set(entries)


def test_testing_conftest_example_loads_the_fixture():
    import importlib

    values = runpy.run_path(str(DOCS / "examples" / "testing_conftest.py"))
    assert values["pytest_plugins"] == ["django_push.testing.pytest"]
    plugin = importlib.import_module(values["pytest_plugins"][0])
    assert {"push_hub", "live_push_hub"} <= set(plugin.__all__)
    # The suite loads it the same way (tests/conftest.py), so the examples' tests run with it.
    assert "django_push.testing.pytest" in Path(__file__).with_name("conftest.py").read_text()


def _source_text():
    src = Path(checks.__file__).resolve().parent
    return "\n".join(path.read_text() for path in sorted(src.rglob("*.py")))


def test_troubleshooting_quotes_only_what_the_code_says():
    page = (DOCS / "troubleshooting.rst").read_text()
    quoted = re.findall(r"^:(Log|Answer|Error|Check): ``(.+)``$", page, re.M)
    assert len(quoted) >= 30
    source = _source_text()
    for kind, text in quoted:
        assert text in source, f"troubleshooting.rst quotes {kind} {text!r}, not in src/"
    for heading in (
        "pending",
        "404",
        "signature",
        "private address",
        "429",
        "retried",
        "Tasks never run",
        "database is locked",
        "System check ids",
    ):
        assert heading in page, heading


def test_troubleshooting_names_every_logger_the_code_uses():
    page = (DOCS / "troubleshooting.rst").read_text()
    used = set(re.findall(r'getLogger\("([\w.]+)"\)', _source_text()))
    assert used == {
        "django_push.hub",
        "django_push.publisher",
        "django_push.subscriber",
        "django_push.signals",
    }
    for name in used:
        assert f"``{name}``" in page, name


def test_project_urls_point_at_pages_that_exist():
    import tomllib

    urls = tomllib.loads((DOCS.parent / "pyproject.toml").read_text())["project"]["urls"]
    assert {"Documentation", "Changelog", "Troubleshooting"} <= set(urls)
    for url in urls.values():
        page = re.fullmatch(r"https://django-push\.readthedocs\.io/en/latest/([\w-]+)\.html", url)
        if page:
            assert (DOCS / f"{page[1]}.rst").exists(), url


def test_engine_settings_are_the_ones_the_benchmark_measured(monkeypatch):
    """docs/deployment.rst sizes the workers with bench/hub_deployed.py's figures: its
    configurations must be the ones the benchmark site runs."""
    example = runpy.run_path(str(DOCS / "examples" / "hub_engine_settings.py"))
    bench = DOCS.parent / "bench" / "hub_site" / "settings.py"
    monkeypatch.setenv("BENCH_DB", "sqlite")
    sqlite = runpy.run_path(str(bench))
    assert (
        example["SQLITE"]["DATABASES"]["default"]["OPTIONS"]
        == (sqlite["DATABASES"]["default"]["OPTIONS"])
    )
    assert example["SQLITE"]["TASKS"] == example["POSTGRES"]["TASKS"] == sqlite["TASKS"]
    monkeypatch.setenv("BENCH_DB", "postgres")
    monkeypatch.setenv("BENCH_TASKS", "rq")
    rq = runpy.run_path(str(bench))
    assert (
        example["POSTGRES"]["DATABASES"]["default"]["CONN_MAX_AGE"]
        == (rq["DATABASES"]["default"]["CONN_MAX_AGE"])
    )
    assert example["RQ"]["TASKS"] == rq["TASKS"]
    assert (
        example["RQ"]["RQ_QUEUES"]["default"]["DEFAULT_TIMEOUT"]
        == (rq["RQ_QUEUES"]["default"]["DEFAULT_TIMEOUT"])
    )


@pytest.mark.django_db
def test_quickstart_local_settings_pass_the_checks():
    from django_push.checks import deferred_sqlite

    values = runpy.run_path(str(QUICKSTART / "settings_local.py"))
    assert deferred_sqlite(values["DATABASES"]) == []  # no W106
    assert values["LOGGING"]["loggers"]["django_push"]["level"] == "INFO"
    push = {name: value for name, value in values.items() if name.startswith("PUSH_")}
    with override_settings(**push, DEBUG=True):
        found = [
            message.id
            for check in (
                checks.check_publisher_settings,
                checks.check_subscriber_settings,
                checks.check_hub_settings,
                checks.check_common_settings,
            )
            for message in check()
        ]
    assert found == ["django_push.W001"]  # secrets over plain HTTP: said, and meant

"""The metrics view's samples, read over HTTP as Prometheus would."""

from __future__ import annotations

import urllib.request
from typing import Any

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(live_server: Any) -> Samples:
    """Every sample of ``/metrics/`` on ``live_server``: {(name, labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(live_server.url + "/metrics/") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def unlabelled(live_server: Any) -> dict[str, float]:
    """The samples without labels, by name."""
    return {name: value for (name, labels), value in scrape(live_server).items() if not labels}

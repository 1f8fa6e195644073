"""What a feed diff costs the hub per publish, and what it saves per subscriber.

For Atom and RSS feeds of growing size with one new entry, times ``feeddiff.diff()`` (run
once per stored version, whatever the number of subscribers) against a baseline measured in
the same run: one safe parse of the same document with ``defusedxml.ElementTree.fromstring``.
Also prints the size of the diff against the whole feed: the bytes each subscriber is sent.

    .venv/test-django6-py3.12/bin/python bench/feed_diff.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from defusedxml import ElementTree  # noqa: E402
from tests import feeds  # noqa: E402

from django_push.hub import feeddiff  # noqa: E402

ROUNDS = 7


def best_of(function, *args):
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    print(
        f"{'feed':<6} {'entries':>7} {'bytes':>9} {'parse ms':>9} {'diff ms':>8} "
        f"{'ratio':>6} {'diff bytes':>10} {'share':>6}"
    )
    for name, make, content_type in (
        ("atom", feeds.atom, feeds.ATOM_TYPE),
        ("rss", feeds.rss, feeds.RSS_TYPE),
    ):
        for entries in (20, 100, 1000, 5000):
            previous = make(range(entries, 0, -1))
            current = make(range(entries + 1, 1, -1))  # one new, the oldest gone
            diff = feeddiff.diff(previous, current, content_type)
            assert diff is not None
            assert diff.new == 1
            parse = best_of(ElementTree.fromstring, current)
            cost = best_of(feeddiff.diff, previous, current, content_type)
            print(
                f"{name:<6} {entries:>7} {len(current):>9} {parse * 1000:>9.2f} "
                f"{cost * 1000:>8.2f} {cost / parse:>6.2f} {len(diff.body):>10} "
                f"{len(diff.body) / len(current):>6.3f}"
            )


if __name__ == "__main__":
    main()

"""WebSub discovery for any view: ``Link: <hub>; rel="hub"`` and ``<topic>; rel="self"`` (P-2)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from django.http import HttpRequest, HttpResponseBase

from django_push.conf import conf
from django_push.links import format_links, parse_links, rels

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponseBase])


def hub_urls(hubs: str | Iterable[Any] | None) -> list[str]:
    """``hubs`` as a list of URLs: one URL or several, empty ones dropped."""
    values = [hubs] if isinstance(hubs, str) else list(hubs or [])
    return [str(hub) for hub in values if hub]


@overload
def or_push_hub(hubs: str | None) -> str | None: ...
@overload
def or_push_hub(hubs: str | Iterable[str] | None) -> str | Iterable[str] | None: ...
def or_push_hub(hubs: str | Iterable[str] | None) -> str | Iterable[str] | None:
    """The publisher's rule "no hub given: use ``PUSH_HUB``", in one place: ``hubs`` when it
    names a URL, else ``PUSH_HUB``. ``None``, ``""``, ``[]`` and ``[""]`` all name none."""
    return hubs if hub_urls(hubs) else conf.PUSH_HUB


def add_link_headers(
    response: HttpResponseBase, *, hubs: str | Iterable[str] | None, self_url: str
) -> HttpResponseBase:
    """Add one ``Link`` header naming ``hubs`` and the canonical ``self_url`` to ``response``.

    A ``rel="self"`` the response already carries is kept and ``self_url`` is left out:
    there must be exactly one (P-2), and the view knows its canonical URL best (P-5).
    """
    links = [(hub, "hub") for hub in hub_urls(hubs)]
    existing = response.headers.get("Link")
    if not (existing and rels(parse_links(existing), "self")):
        links.append((self_url, "self"))
    if links:
        value = format_links(links)
        response.headers["Link"] = f"{existing}, {value}" if existing else value
    return response


def hub_links(
    hub: str | Iterable[str] | None = None,
    *,
    self_url: str | Callable[[HttpRequest], str] | None = None,
) -> Callable[[ViewFunc], ViewFunc]:
    """Decorate a view so that its responses advertise a hub and their topic URL.

    ``hub`` defaults to ``PUSH_HUB``; ``self_url`` defaults to the request's absolute URL
    and may be a callable taking the request.
    """

    def decorator(view: ViewFunc) -> ViewFunc:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            response = view(request, *args, **kwargs)
            return add_link_headers(
                response,
                hubs=or_push_hub(hub),
                self_url=_self_url(request, self_url),
            )

        return wrapper  # type: ignore[return-value]  # same signature as ``view``

    return decorator


class HubLinksMixin:
    """Class-based-view twin of :func:`hub_links`: set ``hub`` or override ``get_hub()``."""

    hub: str | Iterable[str] | None = None

    def get_hub(self) -> str | Iterable[str] | None:
        """The hub URL (or URLs) to link: the ``hub`` attribute, else ``PUSH_HUB``."""
        return or_push_hub(self.hub)

    def get_self_url(self, request: HttpRequest) -> str:
        """The topic's canonical URL for ``rel="self"``: by default the URL requested."""
        return request.build_absolute_uri()

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response: HttpResponseBase = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        return add_link_headers(response, hubs=self.get_hub(), self_url=self.get_self_url(request))


def _self_url(request: HttpRequest, self_url: str | Callable[[HttpRequest], str] | None) -> str:
    if callable(self_url):
        return self_url(request)
    return self_url or request.build_absolute_uri()

"""``{% websub_links %}``: discovery ``<link>`` elements for HTML topics (P-4).

Link headers (:mod:`django_push.publisher.headers`) can be lost by caches, proxies or a
page saved to disk; links in ``<head>`` travel with the document itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from django import template
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from django_push.publisher.headers import hub_urls, or_push_hub

register = template.Library()


@register.simple_tag(takes_context=True)
def websub_links(
    context: template.Context,
    hub: str | Iterable[str] | None = None,
    self: str | None = None,  # the template keyword is ``self=``, as the rel it fills
) -> SafeString:
    """Render ``<link rel="hub">`` for each hub and one ``<link rel="self">``, escaped.

    ``hub`` (a URL or a list of them) defaults to ``PUSH_HUB``, also when it is ``""``,
    which is what a missing template variable resolves to. ``self`` defaults to the
    request's absolute URL, as the ``Link`` headers of ``hub_links`` do. Without any hub
    only the self link is rendered: the page still names its canonical topic URL.
    """
    hubs = or_push_hub(hub)
    links = [("hub", url) for url in hub_urls(hubs)]
    links.append(("self", self or _request_url(context)))
    return format_html_join("\n", '<link rel="{}" href="{}">', links)


def _request_url(context: template.Context) -> str:
    # RequestContext carries the request whether or not the "request" context processor
    # is on; a plain Context may still hold it as a variable.
    request = getattr(context, "request", None) or context.get("request")
    if not isinstance(request, HttpRequest):
        raise ImproperlyConfigured(
            '{% websub_links %} needs the request to build the rel="self" URL: render the '
            "template with it (render(request, ...), render_to_string(..., request=request), "
            "or a context holding 'request' from the "
            "'django.template.context_processors.request' context processor), "
            'or pass the topic URL: {% websub_links self="https://..." %}.'
        )
    return request.build_absolute_uri()

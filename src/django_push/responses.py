"""Answers of django-push's views: plain text that browsers won't sniff (WebSub 8.2)."""

from __future__ import annotations

from django.http import HttpResponse


def plain_text(status: int, message: str = "") -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    response["X-Content-Type-Options"] = "nosniff"
    return response

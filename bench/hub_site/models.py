"""The baseline's table: what a bare view inserts one row into."""

from __future__ import annotations

from django.db import models


class Hit(models.Model):
    callback = models.URLField(max_length=2048)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.callback

from __future__ import annotations

from django.db import models
from django.urls import reverse


class Post(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    published_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-published_at"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("post", args=[self.pk])


class Notification(models.Model):
    """What the subscriber side received from the hub."""

    topic = models.URLField(max_length=1023)
    received_at = models.DateTimeField(auto_now_add=True)
    content_type = models.CharField(max_length=255, blank=True)
    signature = models.CharField(max_length=200, blank=True)
    signature_valid = models.BooleanField(null=True)
    titles = models.JSONField(default=list)
    size = models.PositiveIntegerField(default=0)
    polled = models.BooleanField(default=False)  # found by reconciliation, not pushed
    # The hub's Push-Sequence (PUSH_HUB_SEQUENCE_HEADER): a skipped number is a missed content.
    sequence = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]

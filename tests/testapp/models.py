from __future__ import annotations

from django.contrib.sites.models import Site
from django.db import models
from django.urls import reverse
from django.utils import timezone

from django_push.publisher import ping_hub, publish_on_commit


class MyModel(models.Model):
    """The model of the 1.1 docs' "Ping the hub on feed updates" example."""

    title = models.CharField(max_length=100, default="entry")
    published = models.BooleanField(default=False)
    timestamp = models.DateTimeField(null=True)

    def get_absolute_url(self):
        return f"/mymodel/{self.pk}/"

    def publish(self):
        # As in the seed docs, with today's imports: Site instead of get_current_site().
        self.published = True
        self.timestamp = timezone.now()
        self.save()

        ping_hub("http://%s%s" % (Site.objects.get_current().domain, reverse("feed_for_mymodel")))

    def publish_later(self):
        """The 2.0 way: ping once the transaction commits, from a background task."""
        self.published = True
        self.save()
        publish_on_commit(
            "http://%s%s" % (Site.objects.get_current().domain, reverse("feed_for_mymodel"))
        )

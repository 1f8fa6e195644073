from django.urls import include, path
from docs.examples.publisher_example import EntryFeed

urlpatterns = [
    path("feed/", EntryFeed(), name="entry_feed"),
    path("hub/", include("django_push.hub.urls")),
    path("subscriber/", include("django_push.subscriber.urls")),
]

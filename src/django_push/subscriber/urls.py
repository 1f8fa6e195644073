from __future__ import annotations

from django.urls import path

from django_push.subscriber.views import callback

urlpatterns = [
    path("<int:pk>/", callback, name="subscriber_callback"),
]

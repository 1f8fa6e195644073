# ruff: noqa
# 1.1's documented setup: the subscriber's URLs under ^subscriber/.
from django.conf.urls import include, url

urlpatterns = [url(r"^subscriber/", include("django_push.subscriber.urls"))]

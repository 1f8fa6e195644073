"""A WebSub hub as a Django app: include ``django_push.hub.urls`` and run a task worker."""

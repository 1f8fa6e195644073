# In "python manage.py shell": subscribe to the feed by its URL alone.
from django_push.subscriber.models import Subscription

subscription = Subscription.objects.subscribe("http://127.0.0.1:8000/feed/")

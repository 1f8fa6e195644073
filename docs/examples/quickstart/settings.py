# settings.py of a site that publishes, subscribes and runs its own hub: replace
# INSTALLED_APPS, and add the rest.
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tasks_db",  # the task queue in your database (others: see "Deployment")
    "django_push.publisher",
    "django_push.subscriber",
    "django_push.hub",
    "blog",  # your app (step 2)
]

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

PUSH_HUB = "https://www.example.com/hub/"  # the hub your feeds declare
PUSH_HUB_URL = "https://www.example.com/hub/"  # this site's hub, as subscribers see it
PUSH_DOMAIN = "www.example.com"  # host of callback URLs (or use django.contrib.sites)
PUSH_SSL_CALLBACK = True  # callbacks over https
PUSH_LEASE_SECONDS = 7 * 24 * 3600
PUSH_TIMEOUT = 10
PUSH_HUB_TOPICS = ["https://www.example.com/"]  # what your hub may publish

BLOG_FEED_URL = "https://www.example.com/feed/"  # your app's own setting: the feed's URL

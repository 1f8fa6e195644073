# In "python manage.py shell": a new post, saved like any other.
from blog.models import Post

Post.objects.create(title="Hello, world", body="The first post.")

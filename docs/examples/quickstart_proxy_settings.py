# settings.py, production, behind the nginx server block above.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # nginx always sets it
ALLOWED_HOSTS = ["www.example.com"]

PUSH_HUB = "https://www.example.com/hub/"
PUSH_HUB_URL = "https://www.example.com/hub/"
PUSH_HUB_TOPICS = ["https://www.example.com/"]
PUSH_DOMAIN = "www.example.com"
PUSH_SSL_CALLBACK = True

# The largest notification accepted: the smallest of these two and nginx's limit (10m).
PUSH_MAX_BODY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = PUSH_MAX_BODY_SIZE

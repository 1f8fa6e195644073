"""A small Django project serving the hub as users deploy it, for ``bench/hub_deployed.py``."""

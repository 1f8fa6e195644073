"""Sphinx configuration of the django-push documentation."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
project = "django-push"
author = "django-push contributors"
copyright = "2026, django-push contributors"
release = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
version = release

extensions = ["sphinx.ext.intersphinx"]
html_theme = "furo"
html_title = f"django-push {release}"
highlight_language = "none"  # Python comes in through literalinclude, from tested files
exclude_patterns = ["_build", "examples"]
intersphinx_mapping = {}  # no network here; links to Django's docs are plain URLs
nitpicky = False

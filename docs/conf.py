"""Sphinx configuration of the django-push documentation."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import django
from sphinx.application import Sphinx

ROOT = Path(__file__).resolve().parent.parent
# autodoc imports the modules: document this source tree, with Django set up (models need it).
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "docs")]
os.environ["DJANGO_SETTINGS_MODULE"] = "django_settings"
django.setup()

project = "django-push"
author = "django-push contributors"
copyright = "2026, django-push contributors"
release = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
version = release

extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx"]
html_theme = "furo"
html_title = f"django-push {release}"
highlight_language = "none"  # Python comes in through literalinclude, from tested files
exclude_patterns = ["_build", "examples"]
intersphinx_mapping = {}  # no network here; links to Django's docs are plain URLs
nitpicky = False
autodoc_member_order = "bysource"
autodoc_preserve_defaults = True


def plain_signature(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, signature: str, annotation: str
) -> tuple[str, None] | None:
    """Drop the constructor of classes users never build by hand (models, managers, views,
    feed generators): a long or ``(*args, **kwargs)`` signature says nothing there."""
    from django.db import models
    from django.utils.feedgenerator import SyndicationFeed
    from django.views import View

    built_by_django = (models.Model, models.Manager, View, SyndicationFeed)
    if what == "class" and issubclass(obj, built_by_django):
        return "", None
    return None


def setup(app: Sphinx) -> None:
    app.connect("autodoc-process-signature", plain_signature)

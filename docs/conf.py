"""Sphinx configuration: the documentation of django-mailserver (Read the Docs builds it)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "docs" / "_ext")]

# Autodoc imports the package, models included: Django is set up first, with
# every app of ours installed and nothing else configured.
import django  # noqa: E402
from django.conf import settings  # noqa: E402

settings.configure(
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "mailserver",
        "mailserver.store",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    USE_TZ=True,
)
django.setup()

import mailserver  # noqa: E402

project = "django-mailserver"
author = "the django-mailserver authors"
copyright = "the django-mailserver authors"  # noqa: A001 - Sphinx's name
release = mailserver.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "mailserver_docs",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
# Anchors for headings down to ####, so that "page.md#a-heading" links work.
myst_heading_anchors = 4

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True}
# Docstrings are written for the code and the page alike: their ``names``
# are code, not references to resolve.
default_role = "code"

html_theme = "furo"
html_title = f"django-mailserver {release}"
html_static_path = []

"""The identity package is pure: no database. Its lazy translatable reasons need configured
settings only, so when the suite runs without pytest-django (``-p no:django``) minimal
settings are configured here."""

from __future__ import annotations

from django.conf import settings

if not settings.configured:
    settings.configure(USE_I18N=False)

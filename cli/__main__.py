"""``python -m cli`` runs lg (what the tests use, so they need no PATH set-up)."""

from .main import entry

entry()

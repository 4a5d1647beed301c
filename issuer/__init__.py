"""The municipal issuer service (Flask).  ``create_app`` builds one deployment."""

from .app import create_app

__all__ = ["create_app"]

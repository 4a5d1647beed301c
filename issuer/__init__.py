"""The municipal issuer service.

- ``dualres.issuer.domain``: registrations, rules, offers, keys, status lists, audit and the
  database models; imports no Flask.
- ``dualres.issuer.web``: the HTTP layer (the app factory, blueprints, the request context).
- ``dualres.issuer.bootstrap``: start-up checks, the demo set-up, the WSGI app.
- ``dualres.issuer.cli``: ``dualres-issuer``.

``create_app`` is importable from here; it is loaded on first use so that importing the
domain does not load Flask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dualres.issuer.web.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from dualres.issuer.web.app import create_app

        return create_app
    raise AttributeError(name)

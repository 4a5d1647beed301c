"""The municipal staff console, ``/console/``: server-rendered pages over the
same domain functions as the JSON API (:mod:`dualres.issuer.domain.registrations`).

Security in brief: staff sign in with a username and a password (scrypt,
:mod:`dualres.issuer.domain.staff`); the session is Flask's signed cookie (Secure except on a
loopback http base URL, HttpOnly, SameSite=Lax, path ``/console/``) and ends
after 30 minutes without a request; every POST carries a per-session CSRF
token; a clerk sees only their own municipality, and a registration of another
one answers 404 exactly as if it did not exist; revoking needs a supervisor.
"""

from dualres.issuer.web.console.base import bp

# The views attach their routes to ``bp`` when imported; they import ``base``, not this
# package, so there is no import cycle.
from dualres.issuer.web.console import bulk, issue, paper, review, views  # noqa: F401  isort: skip

__all__ = ["bp"]

"""The WSGI application for production servers::

    dualres-issuer db upgrade                      # the release step, once
    DUALRES_DATA_DIR=/srv/dualres DATABASE_URL=postgresql://... \\
    DUALRES_KEY_PASSPHRASE=... DUALRES_BASE_URL=https://issuer.example.jp \\
        gunicorn -w 4 -b 0.0.0.0:8080 'dualres.issuer.wsgi:app'

Configured from the environment only (see issuer/config.py).  Each worker
makes the checks ``dualres-issuer serve --check`` makes and refuses to boot
if one fails (gunicorn then stops rather than serve errors): the schema must
be current and every key that may sign must load, which outside demo mode
means encrypted at rest and not a published development key.

Request limits (request line, header count and size), timeouts and the access
logger (issuer/accesslog.py: gunicorn's lines for less CPU) are in
``gunicorn.conf.py`` at the top of the repository, which gunicorn reads from
its working directory (or pass ``-c``).  Behind a TLS-terminating proxy set
``DUALRES_TRUSTED_PROXIES=1`` so that https requests are seen as such (HSTS,
client addresses); see issuer/config.py.

It does not migrate: N workers booting at once would race to run the same
migration, and a schema change is a step an operator chooses.
``DUALRES_DEMO=1`` runs the demo set-up (development keys) behind gunicorn.
Outside demo mode ``DUALRES_BASE_URL`` is required.  A refused start is one line
on standard error and exit status 4 (gunicorn's "app failed to load"), no traceback.
"""

from __future__ import annotations

import sys

from dualres.issuer.bootstrap import StartupError, wsgi_app

# gunicorn's exit status for "the application could not be loaded": its master then
# stops instead of respawning workers that would fail the same way.
APP_LOAD_ERROR = 4

try:
    app = wsgi_app()
except StartupError as exc:
    # One line, as the CLI says it: a traceback would bury the reason and adds nothing
    # (the refusal is a configuration problem, not a bug).
    print(f"dualres-issuer: エラー: {exc.ja} / {exc.en}", file=sys.stderr, flush=True)
    raise SystemExit(APP_LOAD_ERROR) from None

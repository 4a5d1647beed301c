"""gunicorn settings for the issuer (issuer/wsgi.py); gunicorn reads ./gunicorn.conf.py
by itself when started from the repository or release directory::

    gunicorn 'dualres.issuer.wsgi:app'     # or: gunicorn -c /path/to/gunicorn.conf.py

Bind address and worker count stay on the command line (issuer/wsgi.py); every value
here can be overridden there too, or with GUNICORN_CMD_ARGS.  The
limits are what a hostile client meets before any Python of ours runs: the
application's own limits (1 MiB bodies, 413) are in issuer/config.py.
"""

from __future__ import annotations

# --- request size limits (oversized requests get 400 from gunicorn itself) ----------
# The longest legitimate request line is an API listing with its query (< 300 bytes).
limit_request_line = 4094
# A wallet or browser sends about 15 fields; 50 leaves room for proxies' additions.
limit_request_fields = 50
# One field line, name included.  A DPoP proof with its P-256 jwk is under 1 KiB; a
# console cookie under 4 KiB.
limit_request_field_size = 8190

# --- slow clients -------------------------------------------------------------------
# Sync workers: a client that trickles its request holds a worker, so cut it off.
# Behind a buffering reverse proxy (nginx), the proxy absorbs slow clients.
timeout = 30
graceful_timeout = 30
keepalive = 5

# --- proxies --------------------------------------------------------------------------
# Which proxy to believe is decided in one place, DUALRES_TRUSTED_PROXIES (werkzeug's
# ProxyFix in issuer/web/app.py): gunicorn itself must not turn X-Forwarded-Proto into https.
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}
# Header names with "_" would alias "-" ones in the WSGI environ: drop them.
header_map = "drop"

# --- access log -------------------------------------------------------------------------
# The same lines as gunicorn's own logger (format, quoting, "-" for what is missing; the
# My Number mask of issuer/web/app.py still applies) for a fraction of its CPU: it
# computes only the atoms access_log_format names (issuer/accesslog.py).  Whether there
# is an access log, where and in which format stays the deployment's choice
# (--access-logfile, --access-logformat).
logger_class = "dualres.issuer.accesslog.AccessLogger"

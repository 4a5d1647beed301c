"""The browser apps: static files only, no build step.

    webapps/lib/      ES modules both apps share (base64url, Base45, the DR1 transport)
                      and the pinned npm packages they use, vendored under lib/vendor/
    webapps/wallet/   the resident's wallet (served at /wallet/)
    webapps/verify/   the shop's verifier (served at /verify/)

The issuer serves them (issuer/web/webapps.py), but any web server or CDN can:
the directory layout is the URL layout, and every import is relative.
This package holds no Python beyond ``ROOT``.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent

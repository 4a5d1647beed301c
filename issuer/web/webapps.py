"""Serves the static browser apps in ``webapps/`` at /lib/, /wallet/ and /verify/.

Static files only: any web server or CDN can serve the same tree.  What this
adds is what such a server should be told to add too: the right MIME types
for ES modules, manifests and WebAssembly; service workers revalidated on
every load (so a fixed app reaches phones); and a CSP that lets the verifier
compile its vendored WebAssembly QR decoder and nothing else.
"""

from __future__ import annotations

import mimetypes

from flask import Blueprint, Response, abort, redirect, send_from_directory

from dualres.webapps import ROOT

bp = Blueprint("webapps", __name__)

APPS = ("lib", "wallet", "verify")
_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".svg": "image/svg+xml",
}
CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; img-src 'self' data: blob:; "
    "media-src 'self' blob: data:; connect-src {connect}; style-src 'self'; "
    "worker-src 'self'; manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
# The wallet collects credentials from whichever issuer the resident's offer
# names (any HTTPS origin); the verifier talks only to its own deployment.
_CONNECT = {"wallet": "'self' https:"}


def _serve(app: str, path: str) -> Response:
    if app not in APPS:
        abort(404)
    resp = send_from_directory(ROOT / app, path, max_age=0)
    suffix = "." + path.rsplit(".", 1)[-1] if "." in path else ""
    if suffix in _TYPES:
        resp.mimetype = _TYPES[suffix]
    if path.endswith("sw.js"):
        # The browser must see a new service worker the day it is deployed.
        resp.headers["Cache-Control"] = "no-cache"
    resp.headers["Content-Security-Policy"] = CSP.format(connect=_CONNECT.get(app, "'self'"))
    return resp


@bp.get("/<any(lib, wallet, verify):app>")
def app_root_redirect(app: str) -> Response:
    return redirect(f"/{app}/", code=308)  # type: ignore[return-value]


@bp.get("/<any(wallet, verify):app>/")
def app_index(app: str) -> Response:
    return _serve(app, "index.html")


@bp.get("/<any(lib, wallet, verify):app>/<path:path>")
def app_file(app: str, path: str) -> Response:
    return _serve(app, path)


mimetypes.add_type("text/javascript", ".mjs")

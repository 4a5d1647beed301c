"""The deployment's front page, its set-up QR for verifiers, and the anchor's public key.

``/`` says what this server is (Japanese first) and links to the staff
console and the two browser apps.  It shows the **set-up QR** a shop, school
or shelter scans once with the verifier app: a link to the app whose fragment
carries the trust list's URL and the RFC 7638 thumbprint of the trust anchor
(``/verify/#setup=1&tl=…&a=…``; a fragment never reaches a server).  The app
then fetches ``/trust-anchor`` and pins the key only if its thumbprint is the
one in the QR, so the QR, printed on the municipality's notice, is the trust
decision and the network only carries the key.  Experts can still paste the
PEM (docs/verify-app.md).
"""

from __future__ import annotations

import base64
from urllib.parse import quote

from flask import Blueprint, Response, jsonify, redirect, render_template

from dualres.issuer.domain import offers
from dualres.issuer.web.context import services
from dualres.verifier.wire import jws

bp = Blueprint("home", __name__, template_folder="templates")


def anchor_jwk() -> dict[str, str]:
    jwk = jws.public_jwk(services().keys.anchor())
    return {**jwk, "kid": jws.thumbprint(jwk), "use": "sig", "alg": jws.ES256}


def setup_uri() -> str:
    base = services().settings.base_url.rstrip("/")
    thumb = anchor_jwk()["kid"]
    return f"{base}/verify/#setup=1&tl={quote(base + '/trust-list', safe='')}&a={thumb}"


@bp.get("/")
def index() -> str:
    uri = setup_uri()
    qr = "data:image/png;base64," + base64.b64encode(offers.qr_png(uri)).decode("ascii")
    return render_template("home.html", setup_uri=uri, setup_qr=qr, thumbprint=anchor_jwk()["kid"])


@bp.get("/trust-anchor")
def trust_anchor() -> Response:
    """The anchor's public JWK: useful only with a thumbprint obtained apart from it."""
    resp = jsonify(anchor_jwk())
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Cache-Control"] = "public, max-age=3600"
    return resp


@bp.get("/favicon.ico")
def favicon() -> Response:
    return redirect("/verify/icons/icon.svg", code=301)  # type: ignore[return-value]

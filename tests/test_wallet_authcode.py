"""``dualres-wallet``'s authorization code flow (wallet/authcode.py) against the issuer:
PAR, the resident's sign-in in the "browser", state and iss checked, a DPoP-bound token,
a batch of one-time credentials that present and verify like a counter's."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from dualres.wallet import authcode
from dualres.wallet.oid4vci import Client, IssuanceError
from tests.test_apply import BASE, signed_in
from tests.test_authcode import approved

REDIRECT = "http://127.0.0.1:8765/cb"


class AppClient(Client):
    """The wallet's HTTP, routed into the app under test."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.c = app.test_client()

    def _exchange(self, method: str, url: str, data: bytes | None, headers: dict[str, str]):
        u = urlsplit(url)
        r = self.c.open(u.path, query_string=u.query, method=method, data=data,
                        headers=headers, base_url=f"{u.scheme}://{u.netloc}")  # fmt: skip
        out = json.loads(r.data or b"{}")
        if r.status_code >= 400:
            raise IssuanceError(f"{method} {url}: {out}", out.get("error"), r.status_code)
        return out


def browser(c: Any):
    def open_browser(url: str) -> str:
        u = urlsplit(url)
        r = c.get(u.path, query_string=u.query, base_url=BASE)
        assert r.status_code == 303, r.get_data(as_text=True)[:400]
        return str(r.headers["Location"])

    return open_browser


def test_wallet_collects_a_batch(app, clock) -> None:
    clock.now = datetime.now(UTC)  # the wallet's proofs carry the real time
    c = signed_in(app)
    approved(app, c)
    batch = authcode.collect(AppClient(app), f"{BASE}/lg/203211", redirect_uri=REDIRECT,
                             open_browser=browser(c), n=3)  # fmt: skip
    assert len(batch.credentials) == 3 and batch.refresh_token
    assert batch.endpoints.credential_issuer == f"{BASE}/lg/203211"


def test_wallet_refuses_a_mixed_up_response(app, clock) -> None:
    clock.now = datetime.now(UTC)  # the wallet's proofs carry the real time
    c = signed_in(app)
    approved(app, c)
    real = browser(c)

    def swapped(url: str) -> str:
        return real(url).replace("iss=https", "iss=https%3A%2F%2Fevil.example%2Fx&x=https")

    with pytest.raises(IssuanceError, match="RFC 9207"):
        authcode.collect(AppClient(app), f"{BASE}/lg/203211", redirect_uri=REDIRECT,
                         open_browser=swapped)  # fmt: skip


def test_no_registration_is_refused(app, clock) -> None:
    clock.now = datetime.now(UTC)  # the wallet's proofs carry the real time
    c = signed_in(app, "sato")
    with pytest.raises(IssuanceError, match="access_denied"):
        authcode.collect(AppClient(app), f"{BASE}/lg/203211", redirect_uri=REDIRECT,
                         open_browser=browser(c))  # fmt: skip


def test_loopback_redirect_receives_the_response() -> None:
    import threading
    import urllib.request

    redirect_uri, open_browser = authcode.loopback_browser(timeout=10)
    assert redirect_uri.startswith("http://127.0.0.1:") and redirect_uri.endswith("/cb")
    target = redirect_uri + "?code=c&state=s&iss=i"

    def the_browser() -> None:
        urllib.request.urlopen(target, timeout=10).read()

    import webbrowser

    orig = webbrowser.open
    webbrowser.open = lambda url: threading.Thread(target=the_browser).start() or True  # type: ignore[assignment]
    try:
        assert open_browser("https://issuer.test/apply/authorize/x") == target
    finally:
        webbrowser.open = orig

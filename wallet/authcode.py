"""The wallet's side of the authorization code flow (issue 12, docs/oid4vci.md): PAR with
PKCE S256 and ``authorization_details``, the resident's sign-in in a browser, the
authorization response checked for ``state`` and ``iss`` (RFC 9207: a response from
another authorization server is refused), a DPoP-bound token, then a batch of one-time
credentials exactly as after a counter offer (oid4vci._fetch_batch)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import urllib.parse
from collections.abc import Callable
from typing import Final

from dualres.verifier.wire import jws
from dualres.wallet.oid4vci import Batch, Client, Endpoints, IssuanceError, _fetch_batch

CLIENT_ID: Final = "dualres-wallet"


def collect(
    client: Client,
    credential_issuer: str,
    *,
    redirect_uri: str,
    open_browser: Callable[[str], str],
    n: int | None = None,
) -> Batch:
    """Run the flow; ``open_browser(url)`` shows the authorization page to the person and
    returns the URL the browser was sent back to (the redirect_uri with the response)."""
    if client.dpop_key is None:
        client.dpop_key = jws.generate_key()  # HAIP: the token is DPoP-bound
    meta, auth = client.metadata(credential_issuer)
    par_endpoint = auth.get("pushed_authorization_request_endpoint")
    if not isinstance(par_endpoint, str) or not isinstance(auth.get("authorization_endpoint"), str):
        raise IssuanceError("the issuer does not offer the authorization code flow with PAR")
    supported = meta.get("credential_configurations_supported") or {}
    config = next(iter(supported), None)
    if config is None:
        raise IssuanceError("the issuer offers no credential configuration")
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    state = secrets.token_urlsafe(16)
    pushed = client._request("POST", par_endpoint, form={
        "client_id": CLIENT_ID, "response_type": "code", "redirect_uri": redirect_uri,
        "code_challenge": challenge.rstrip(b"=").decode(), "code_challenge_method": "S256",
        "state": state,
        "authorization_details": json.dumps(
            [{"type": "openid_credential", "credential_configuration_id": config}]),
    })  # fmt: skip
    request_uri = pushed.get("request_uri")
    if not isinstance(request_uri, str):
        raise IssuanceError("the PAR answer has no request_uri")
    q = urllib.parse.urlencode({"client_id": CLIENT_ID, "request_uri": request_uri})
    back = open_browser(f"{auth['authorization_endpoint']}?{q}")
    if not back.startswith(redirect_uri):
        raise IssuanceError("the browser came back somewhere else")
    resp = {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(back).query).items()}
    if resp.get("state") != state:
        raise IssuanceError("the authorization response's state is not ours")
    if resp.get("iss") != auth.get("issuer"):
        raise IssuanceError("the authorization response comes from another issuer (RFC 9207)")
    if "error" in resp:
        raise IssuanceError(f"authorization refused: {resp['error']}", resp["error"])
    token_endpoint = auth["token_endpoint"]
    access = client._request("POST", token_endpoint, form={
        "grant_type": "authorization_code", "code": resp.get("code", ""),
        "code_verifier": verifier, "redirect_uri": redirect_uri, "client_id": CLIENT_ID,
    }, headers={"DPoP": client._dpop_proof("POST", token_endpoint)})  # fmt: skip
    size = (meta.get("batch_credential_issuance") or {}).get("batch_size", 1)
    ends = Endpoints(
        credential_issuer=credential_issuer,
        token_endpoint=token_endpoint,
        nonce_endpoint=meta["nonce_endpoint"],
        credential_endpoint=meta["credential_endpoint"],
        configuration_id=config,
        batch_size=size if isinstance(size, int) and size >= 1 else 1,
    )
    return _fetch_batch(client, ends, access, n)


def loopback_browser(port: int = 0, *, timeout: float = 600) -> tuple[str, Callable[[str], str]]:
    """A redirect URI on this machine (RFC 8252 §7.3) and an ``open_browser`` that shows
    the page in the person's browser and waits for the one request coming back."""
    import http.server
    import webbrowser

    got: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            got.append(self.path)
            body = "ウォレットに戻ってください / You can close this page.".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass  # the query carries the code: never to a log

    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    server.timeout = timeout
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/cb"

    def open_browser(url: str) -> str:
        print(f"ブラウザで開いてください / open in a browser:\n{url}", flush=True)
        webbrowser.open(url)
        try:
            while not got:
                server.handle_request()
                if not got:
                    raise IssuanceError("no answer from the browser in time")
        finally:
            server.server_close()
        return f"http://127.0.0.1:{server.server_address[1]}{got[0]}"

    return redirect_uri, open_browser

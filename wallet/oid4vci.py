"""A small OpenID4VCI 1.0 wallet client: the pre-authorized code flow, on urllib.

Enough for the demo and for tests: resolve a credential offer (by value or by
reference), read the issuer's metadata, redeem the code with the tx_code
(plain bearer or DPoP), fetch a c_nonce, prove possession of the holder key
and collect one ``dc+sd-jwt`` credential, or a batch of one-time credentials
(``batch_credential_issuance``: one fresh holder key and proof each, issue 13)
with the refresh token that refills it later.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ec

from dualres.verifier.wire import jws
from dualres.verifier.wire.b64 import b64e

PRE_AUTH_GRANT: Final = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
OFFER_SCHEME: Final = "openid-credential-offer://"
TIMEOUT: Final = 30
MAX_RESPONSE: Final = 1024 * 1024
LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})


class IssuanceError(Exception):
    """The flow stopped; ``error`` is the issuer's OAuth code when it sent one."""

    def __init__(self, message: str, error: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.status = status


@dataclass(frozen=True)
class Issued:
    credential: str
    credential_issuer: str
    configuration_id: str


@dataclass(frozen=True)
class Endpoints:
    """What a refill needs to know about the issuer, kept with the batch."""

    credential_issuer: str
    token_endpoint: str
    nonce_endpoint: str
    credential_endpoint: str
    configuration_id: str
    batch_size: int


@dataclass(frozen=True)
class Batch:
    """One-time credentials, each bound to its own holder key (used once each)."""

    endpoints: Endpoints
    credentials: list[tuple[ec.EllipticCurvePrivateKey, str]]
    refresh_token: str | None


def check_url(url: str, *, insecure_http: bool = False) -> str:
    """Only https, except plain http to this machine when asked (the demo server)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and insecure_http and parts.hostname in LOOPBACK:
        return url
    raise IssuanceError(f"refusing {parts.scheme or 'a relative'} URL {url!r}: https only")


class Client:
    """One issuance session: holds the URL policy and the optional DPoP key."""

    def __init__(
        self, *, insecure_http: bool = False, dpop_key: ec.EllipticCurvePrivateKey | None = None
    ) -> None:
        self.insecure_http = insecure_http
        self.dpop_key = dpop_key
        # The latest DPoP-Nonce the server sent (RFC 9449 §8): proofs carry it.
        self.dpop_nonce: str | None = None

    # --- HTTP ---

    def _request(
        self,
        method: str,
        url: str,
        *,
        form: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        check_url(url, insecure_http=self.insecure_http)
        data = None
        hdrs = {"Accept": "application/json", **(headers or {})}
        if form is not None:
            data = urllib.parse.urlencode(form).encode("ascii")
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        return self._exchange(method, url, data, hdrs)

    def _exchange(
        self, method: str, url: str, data: bytes | None, headers: dict[str, str]
    ) -> dict[str, Any]:
        """One request on the wire; its answer as a JSON object, or IssuanceError."""
        # _request checked the scheme: https, or http to loopback only.
        req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # noqa: S310
                raw = resp.read(MAX_RESPONSE)
                self._note_nonce(resp.headers.get("DPoP-Nonce"))
        except urllib.error.HTTPError as exc:
            self._note_nonce(exc.headers.get("DPoP-Nonce"))
            try:
                err = json.loads(exc.read(MAX_RESPONSE) or b"{}")
            except ValueError:
                err = {}
            code = err.get("error") if isinstance(err, dict) else None
            desc = err.get("error_description", exc.reason) if isinstance(err, dict) else ""
            raise IssuanceError(
                f"{method} {url}: {exc.code} {code}: {desc}", code, exc.code
            ) from None
        except OSError as exc:
            raise IssuanceError(f"{method} {url}: {exc}") from None
        try:
            out = json.loads(raw)
        except ValueError:
            raise IssuanceError(f"{method} {url}: the answer is not JSON") from None
        if not isinstance(out, dict):
            raise IssuanceError(f"{method} {url}: the answer is not a JSON object")
        return out

    def _note_nonce(self, value: str | None) -> None:
        if value and len(value) <= 256 and value.isprintable():
            self.dpop_nonce = value

    def _with_dpop(self, send: Any) -> dict[str, Any]:
        """``send()`` once more when the server asks for its DPoP nonce (RFC 9449 §8, §9)."""
        try:
            out: dict[str, Any] = send()
        except IssuanceError as exc:
            if exc.error != "use_dpop_nonce" or self.dpop_nonce is None:
                raise
            out = send()
        return out

    def _dpop_proof(self, method: str, url: str, access_token: str | None = None) -> str:
        assert self.dpop_key is not None
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jws.public_jwk(self.dpop_key)}
        payload: dict[str, Any] = {
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
            "jti": secrets.token_urlsafe(16),
        }
        if access_token is not None:
            payload["ath"] = b64e(hashlib.sha256(access_token.encode("ascii")).digest())
        if self.dpop_nonce is not None:
            payload["nonce"] = self.dpop_nonce
        return jws.sign(header, payload, self.dpop_key)

    # --- the steps ---

    def resolve_offer(self, offer_uri: str) -> dict[str, Any]:
        if not offer_uri.startswith(OFFER_SCHEME):
            raise IssuanceError(f"not a credential offer (expected {OFFER_SCHEME}...)")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(offer_uri).query)
        if "credential_offer" in query:
            offer = json.loads(query["credential_offer"][0])
        elif "credential_offer_uri" in query:
            offer = self._request("GET", query["credential_offer_uri"][0])
        else:
            raise IssuanceError("the offer has neither credential_offer nor credential_offer_uri")
        if not isinstance(offer, dict) or not isinstance(offer.get("credential_issuer"), str):
            raise IssuanceError("the credential offer has no credential_issuer")
        return offer

    def metadata(self, credential_issuer: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The issuer's and its authorization server's metadata (RFC 8414 path insertion)."""
        parts = urllib.parse.urlsplit(
            check_url(credential_issuer, insecure_http=self.insecure_http)
        )
        origin = f"{parts.scheme}://{parts.netloc}"
        issuer = self._request("GET", f"{origin}/.well-known/openid-credential-issuer{parts.path}")
        if issuer.get("credential_issuer") != credential_issuer:
            raise IssuanceError("the metadata names another credential issuer")
        as_id = (issuer.get("authorization_servers") or [credential_issuer])[0]
        as_parts = urllib.parse.urlsplit(as_id)
        auth = self._request(
            "GET",
            f"{as_parts.scheme}://{as_parts.netloc}/.well-known/oauth-authorization-server"
            f"{as_parts.path}",
        )
        if auth.get("issuer") != as_id:
            raise IssuanceError("the authorization server metadata names another issuer")
        return issuer, auth

    def token(self, token_endpoint: str, code: str, tx_code: str | None) -> dict[str, Any]:
        form = {"grant_type": PRE_AUTH_GRANT, "pre-authorized_code": code}
        if tx_code is not None:
            form["tx_code"] = tx_code

        def send() -> dict[str, Any]:
            headers = {}
            if self.dpop_key is not None:  # a fresh proof each time: a jti is spent once seen
                headers["DPoP"] = self._dpop_proof("POST", token_endpoint)
            return self._request("POST", token_endpoint, form=form, headers=headers)

        return self._with_dpop(send)

    def nonce(self, nonce_endpoint: str) -> str:
        value = self._request("POST", nonce_endpoint).get("c_nonce")
        if not isinstance(value, str):
            raise IssuanceError("the nonce endpoint sent no c_nonce")
        return value

    def credential(
        self,
        endpoint: str,
        access: dict[str, Any],
        *,
        configuration_id: str,
        proof: str,
    ) -> str:
        token = access["access_token"]

        def send() -> dict[str, Any]:
            headers = {"Authorization": f"{access.get('token_type', 'Bearer')} {token}"}
            if str(access.get("token_type", "")).lower() == "dpop":
                headers["DPoP"] = self._dpop_proof("POST", endpoint, token)
            return self._request(
                "POST",
                endpoint,
                body={"credential_configuration_id": configuration_id, "proofs": {"jwt": [proof]}},
                headers=headers,
            )

        out = self._with_dpop(send)
        creds = out.get("credentials")
        if not isinstance(creds, list) or not creds or not isinstance(creds[0], dict):
            raise IssuanceError("the credential response holds no credential")
        value = creds[0].get("credential")
        if not isinstance(value, str):
            raise IssuanceError("the credential response holds no credential")
        return value

    def credentials(
        self,
        endpoint: str,
        access: dict[str, Any],
        *,
        configuration_id: str,
        proofs: list[str],
    ) -> list[str]:
        """One credential per proof (OpenID4VCI 1.0 ``proofs``, a batch)."""
        token = access["access_token"]
        headers = {"Authorization": f"{access.get('token_type', 'Bearer')} {token}"}
        if str(access.get("token_type", "")).lower() == "dpop":
            headers["DPoP"] = self._dpop_proof("POST", endpoint, token)
        out = self._request(
            "POST",
            endpoint,
            body={"credential_configuration_id": configuration_id, "proofs": {"jwt": proofs}},
            headers=headers,
        )
        creds = out.get("credentials")
        if not isinstance(creds, list) or len(creds) != len(proofs):
            raise IssuanceError("the credential response does not hold one credential per proof")
        values = [c.get("credential") if isinstance(c, dict) else None for c in creds]
        if not all(isinstance(v, str) for v in values):
            raise IssuanceError("the credential response holds no credential")
        return [str(v) for v in values]

    def refresh(self, token_endpoint: str, refresh_token: str) -> dict[str, Any]:
        headers = {}
        if self.dpop_key is not None:
            headers["DPoP"] = self._dpop_proof("POST", token_endpoint)
        return self._request(
            "POST",
            token_endpoint,
            form={"grant_type": "refresh_token", "refresh_token": refresh_token},
            headers=headers,
        )


def key_proof(holder_key: ec.EllipticCurvePrivateKey, *, aud: str, nonce: str) -> str:
    """The holder's proof of possession (OpenID4VCI Appendix F.1)."""
    header = {"typ": "openid4vci-proof+jwt", "alg": "ES256", "jwk": jws.public_jwk(holder_key)}
    return jws.sign(header, {"aud": aud, "iat": int(time.time()), "nonce": nonce}, holder_key)


def accept_offer(
    offer_uri: str,
    holder_key: ec.EllipticCurvePrivateKey,
    *,
    tx_code: str | None,
    insecure_http: bool = False,
    dpop: bool = False,
) -> Issued:
    """Run the whole pre-authorized flow; return the issued compact SD-JWT."""
    client = Client(insecure_http=insecure_http, dpop_key=jws.generate_key() if dpop else None)
    return run_flow(client, offer_uri, holder_key, tx_code=tx_code)


def _read_offer(
    client: Client, offer_uri: str, tx_code: str | None
) -> tuple[str, str, str, dict[str, Any], dict[str, Any]]:
    """The offer's issuer, pre-authorized code and first supported configuration, with the
    issuer's and the authorization server's metadata; refused with a reason otherwise."""
    offer = client.resolve_offer(offer_uri)
    issuer_id: str = offer["credential_issuer"]
    grant = (offer.get("grants") or {}).get(PRE_AUTH_GRANT)
    if not isinstance(grant, dict) or not isinstance(grant.get("pre-authorized_code"), str):
        raise IssuanceError("the offer carries no pre-authorized code")
    if grant.get("tx_code") is not None and not tx_code:
        raise IssuanceError("this offer needs the transaction code given at the counter")
    ids = offer.get("credential_configuration_ids") or []
    meta, auth = client.metadata(issuer_id)
    supported = meta.get("credential_configurations_supported") or {}
    config = next((c for c in ids if c in supported), None)
    if config is None:
        raise IssuanceError("the issuer supports none of the offered credentials")
    return issuer_id, grant["pre-authorized_code"], config, meta, auth


def run_flow(
    client: Client,
    offer_uri: str,
    holder_key: ec.EllipticCurvePrivateKey,
    *,
    tx_code: str | None,
) -> Issued:
    """``accept_offer`` on a client of the caller's (one that times or routes its requests)."""
    issuer_id, code, config, meta, auth = _read_offer(client, offer_uri, tx_code)
    access = client.token(auth["token_endpoint"], code, tx_code)
    nonce = client.nonce(meta["nonce_endpoint"])
    proof = key_proof(holder_key, aud=issuer_id, nonce=nonce)
    cred = client.credential(
        meta["credential_endpoint"], access, configuration_id=config, proof=proof
    )
    return Issued(cred, issuer_id, config)


def _fetch_batch(client: Client, ends: Endpoints, access: dict[str, Any], n: int | None) -> Batch:
    count = ends.batch_size if n is None else max(1, min(n, ends.batch_size))
    keys = [jws.generate_key() for _ in range(count)]
    # One c_nonce for the whole batch; each proof by its own fresh key.
    nonce = client.nonce(ends.nonce_endpoint)
    proofs = [key_proof(k, aud=ends.credential_issuer, nonce=nonce) for k in keys]
    creds = client.credentials(
        ends.credential_endpoint, access, configuration_id=ends.configuration_id, proofs=proofs
    )
    refresh = access.get("refresh_token")
    return Batch(
        ends, list(zip(keys, creds, strict=True)), refresh if isinstance(refresh, str) else None
    )


def accept_batch(
    client: Client, offer_uri: str, *, tx_code: str | None, n: int | None = None
) -> Batch:
    """The pre-authorized flow for a batch of one-time credentials (issue 13)."""
    issuer_id, code, config, meta, auth = _read_offer(client, offer_uri, tx_code)
    size = (meta.get("batch_credential_issuance") or {}).get("batch_size", 1)
    ends = Endpoints(
        credential_issuer=issuer_id,
        token_endpoint=auth["token_endpoint"],
        nonce_endpoint=meta["nonce_endpoint"],
        credential_endpoint=meta["credential_endpoint"],
        configuration_id=config,
        batch_size=size if isinstance(size, int) and size >= 1 else 1,
    )
    access = client.token(ends.token_endpoint, code, tx_code)
    return _fetch_batch(client, ends, access, n)


def refill(client: Client, ends: Endpoints, refresh_token: str, n: int | None = None) -> Batch:
    """A new batch with the refresh token of the last one (online only)."""
    access = client.refresh(ends.token_endpoint, refresh_token)
    return _fetch_batch(client, ends, access, n)

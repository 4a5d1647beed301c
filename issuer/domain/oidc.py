"""Remote sign-in: the issuer as an OpenID Connect relying party (like デジタル認証アプリ).

Authorization code flow with PKCE (S256), configured by the provider's issuer URL alone
(discovery, RFC 8414 / OpenID Connect Discovery), so a real provider plugs in where the
demo runs the stub (:mod:`dualres.issuer.web.idp`).  The code exchange is Authlib's
``OAuth2Session``; the ID token is verified with joserfc (Authlib's JOSE library):
signature by a key of the provider's JWKS, ``iss``, ``aud``, ``exp``, ``iat`` and the
``nonce`` this sign-in sent.  Any failure is an :class:`OidcError` with a stable code.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from dualres.issuer.domain.errors import IssuerError

ALGORITHMS = ["ES256", "RS256"]


class OidcError(IssuerError):
    status = 401


@dataclass(frozen=True)
class Pending:
    """What the RP keeps between sending the resident away and their return."""

    state: str
    nonce: str
    code_verifier: str


class OidcClient:
    def __init__(
        self,
        issuer: str,
        client_id: str,
        redirect_uri: str,
        *,
        http: requests.Session | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.http = http or requests.Session()
        self._meta: dict[str, Any] | None = None

    def metadata(self) -> dict[str, Any]:
        if self._meta is None:
            r = self.http.get(f"{self.issuer}/.well-known/openid-configuration", timeout=10)
            meta = r.json() if r.ok else None
            # The document must name the issuer we were configured with (OIDC Discovery §4.3).
            if not isinstance(meta, dict) or meta.get("issuer") != self.issuer:
                raise OidcError("oidc_discovery_failed", "the provider's metadata is unusable")
            self._meta = meta
        return self._meta

    def _session(self, pending: Pending | None = None) -> Any:
        sess = OAuth2Session(
            client_id=self.client_id,
            redirect_uri=self.redirect_uri,
            scope="openid",
            code_challenge_method="S256",
            state=pending.state if pending else None,
        )
        # The code exchange goes the way discovery went (the HTTP session given, with
        # its adapters: a proxy, pinned TLS, or in tests the app itself).
        for prefix, adapter in self.http.adapters.items():
            sess.mount(prefix, adapter)
        return sess

    def start(self) -> tuple[str, Pending]:
        """The URL to send the resident to, and what to keep until they return."""
        pending = Pending(
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            code_verifier=secrets.token_urlsafe(48),
        )
        url, _ = self._session(pending).create_authorization_url(
            self.metadata()["authorization_endpoint"],
            state=pending.state,
            code_verifier=pending.code_verifier,
            nonce=pending.nonce,
        )
        return url, pending

    def finish(self, callback_url: str, pending: Pending) -> dict[str, Any]:
        """Exchange the code (with the PKCE verifier) and return the ID token's claims."""
        meta = self.metadata()
        client = self._session(pending)
        try:
            token = client.fetch_token(
                meta["token_endpoint"],
                authorization_response=callback_url,
                state=pending.state,
                code_verifier=pending.code_verifier,
            )
        except Exception as exc:  # Authlib raises its own OAuthError and requests' errors
            raise OidcError("oidc_token_failed", f"the code exchange failed: {exc}") from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("oidc_token_failed", "no ID token in the token response")
        return self.validate(id_token, pending.nonce)

    def validate(self, id_token: str, nonce: str) -> dict[str, Any]:
        keys = self.http.get(self.metadata()["jwks_uri"], timeout=10).json()
        try:
            key_set = KeySet.import_key_set(keys)
            token = jwt.decode(id_token, key_set, algorithms=ALGORITHMS)
            jwt.JWTClaimsRegistry(
                now=int(time.time()),
                leeway=60,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                exp={"essential": True},
                iat={"essential": True},
                sub={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise OidcError("invalid_id_token", f"the ID token is not valid: {exc}") from None
        return dict(token.claims)

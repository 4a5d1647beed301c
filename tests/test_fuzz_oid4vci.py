"""Property-based fuzzing of every OpenID4VCI parser the network reaches: the offer
by reference, the token endpoint (form bodies), the nonce endpoint, the credential
request (JSON of any shape), the key proof JWT and DPoP proofs.

Properties, for every input: never a 5xx; the answer is JSON with an OAuth-style
``error`` from the spec's codes and ``Cache-Control: no-store``; no traceback text
anywhere in it; and a refused request changes nothing in the database (no offer
failure counted unless the real code was sent, no nonce or token spent, no row
added), so the real flow still succeeds after the storm.

Budget: ``EXAMPLES`` per property on SQLite and a quarter of it on PostgreSQL
(the parsers are the same; PostgreSQL adds its own refusals of odd strings, e.g.
NUL).  Derandomized by default so CI is repeatable; ``DUALRES_FUZZ=random`` and
``DUALRES_FUZZ_EXAMPLES=2000`` turn it into a longer random search.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import secrets
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from dualres.issuer.domain.models import (
    AuditEntry,
    Credential,
    CredentialOffer,
    OAuthAccessToken,
    OneTimeValue,
)
from dualres.issuer.domain.offers import PRE_AUTH_GRANT
from dualres.issuer.web.context import services
from dualres.verifier.wire import jws
from tests.test_oid4vci import (
    BASE,
    CONFIG,
    ISS,
    code_of,
    credential_req,
    dpop,
    make_offer,
    nonce,
    now_s,
    proof,
    redeem,
    redeem_dpop,
    token_req,
)
from tests.test_oid4vci import reg_id as reg_id
from tests.test_oid4vci import staff as staff

EXAMPLES = int(os.environ.get("DUALRES_FUZZ_EXAMPLES", "60"))
RANDOM = os.environ.get("DUALRES_FUZZ") == "random"

TOKEN_ERRORS = {
    "invalid_request",
    "invalid_grant",
    "unsupported_grant_type",
    "invalid_dpop_proof",
    "request_too_large",
    "slow_down",
}
CREDENTIAL_ERRORS = {
    "invalid_token",
    "invalid_proof",
    "invalid_nonce",
    "invalid_credential_request",
    "unknown_credential_configuration",
    "unknown_credential_identifier",
    "invalid_dpop_proof",
    "request_too_large",
}
LEAKS = ("Traceback", 'File "', "sqlalchemy", "psycopg", "sqlite3", "IntegrityError")


_ADDRESSES = itertools.count(1)


def somewhere() -> dict[str, str]:
    """A new client address per request: the per-address throttle (issuer/web/throttle.py)
    is tested in test_bruteforce.py; here it would only end the storm early."""
    i = next(_ADDRESSES)
    return {"REMOTE_ADDR": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"}


def budget(database_url: str) -> Any:
    """Hypothesis settings for this backend: the full budget on SQLite, a quarter on PG."""
    n = EXAMPLES if database_url.startswith("sqlite") else max(10, EXAMPLES // 4)
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


def check(r, errors: set[str], *, ok: tuple[int, ...] = ()) -> None:
    """The properties every answer keeps, accepted or refused."""
    text = r.get_data(as_text=True)
    assert r.status_code < 500, (r.status_code, text[:300])
    for leak in LEAKS:
        assert leak not in text, (leak, text[:300])
        assert all(leak not in v for _, v in r.headers.items()), leak
    if r.status_code == 308:
        # Werkzeug folds an empty path segment ("/lg//nonce") into a redirect to the
        # path without it, which answers for itself; the HTML body has the page headers.
        assert (
            r.headers["Location"]
            and "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        )
        return
    assert r.is_json, (r.status_code, r.mimetype, text[:200])
    assert r.headers.get("X-Content-Type-Options") == "nosniff"
    if r.status_code in ok:
        return
    assert 400 <= r.status_code < 500, (r.status_code, text[:200])
    body = r.json
    assert isinstance(body, dict) and body.get("error") in errors, (r.status_code, body)
    assert isinstance(body.get("error_description"), str)
    assert r.headers.get("Cache-Control") == "no-store", r.headers


def snapshot(app) -> dict[str, Any]:
    """What a refused request must not change."""
    with app.app_context(), services().db.session() as s:

        def count(model: Any, *where: Any) -> int:
            n: int = s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()
            return n

        return {
            "once": count(OneTimeValue),
            "tokens": count(OAuthAccessToken),
            "tokens_used": count(OAuthAccessToken, OAuthAccessToken.used_at.is_not(None)),
            "failures": s.execute(
                select(func.coalesce(func.sum(CredentialOffer.failures), 0))
            ).scalar_one(),
            "redeemed": count(CredentialOffer, CredentialOffer.redeemed_at.is_not(None)),
            "credentials": count(Credential),
            "audit": count(AuditEntry),
        }


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def forge(
    header: Any,
    payload: Any,
    key: ec.EllipticCurvePrivateKey | None = None,
    sig: bytes | None = None,
) -> str:
    """A compact JWS of any header and payload; ES256-signed with ``key`` when given."""
    h64 = b64(json.dumps(header).encode())
    p64 = b64(json.dumps(payload).encode())
    if sig is None and key is not None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(key.sign(f"{h64}.{p64}".encode(), ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{h64}.{p64}.{b64(sig or b'')}"


# --- shared strategies -----------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(10**300, 10**400)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)
ODD_TEXT = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=60),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "%00",
            "..",
            "../..",
            "null",
            "[]",
            "{}",
            "\ufeff",
            "' OR 1=1 --",
            "A" * 64,
            "A" * 65,
            "é",
            "\u202e",
            "\ud7ff",
        ]
    ),
    st.integers(200, 200_000).map(lambda n: "x" * n),
)
LG_CODES = st.one_of(
    st.sampled_from(
        ["203211", "011002", "999999", "20321", "2032110", "２０３２１１", "203211 ", "abc"]
    ),
    st.text(max_size=10),
)


# --- the offer, by reference -----------------------------------------------------------------


def test_offer_by_reference_fuzz(app, client, staff, reg_id, database_url) -> None:
    offer = make_offer(client, staff, reg_id)
    real = offer["offer_id"]
    before = snapshot(app)

    def mutate(data: st.DataObject) -> str:
        kind = data.draw(st.sampled_from(["flip", "cut", "extend", "case", "any"]))
        if kind == "flip":
            i = data.draw(st.integers(0, len(real) - 1))
            c = data.draw(st.characters(codec="utf-8").filter(lambda c: c != real[i]))
            return real[:i] + c + real[i + 1 :]
        if kind == "cut":
            return real[: data.draw(st.integers(0, len(real) - 1))]
        if kind == "extend":
            return real + data.draw(st.text(min_size=1, max_size=20))
        if kind == "case":
            swapped = real.swapcase()
            return swapped if swapped != real else real + "x"
        return data.draw(ODD_TEXT)

    @budget(database_url)
    @given(data=st.data(), lg=LG_CODES, method=st.sampled_from(["GET", "GET", "POST", "PUT"]))
    def probe(data: st.DataObject, lg: str, method: str) -> None:
        oid = mutate(data)
        assert oid != real
        r = client.open(f"/lg/{quote(lg, safe='')}/offers/{quote(oid, safe='')}", method=method)
        check(r, {"not_found", "method_not_allowed"})

    probe()
    assert snapshot(app) == before
    # The real offer is still there, and still redeemable.
    assert token_req(client, code_of(client, offer), offer["tx_code"]).status_code == 200


# --- the token endpoint ------------------------------------------------------------------------

CTYPES = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        "application/x-www-form-urlencoded; charset=utf-16",
        "APPLICATION/X-WWW-FORM-URLENCODED",
        "application/json",
        "multipart/form-data; boundary=xyz",
        "text/plain",
        "",
        "application/x-www-form-urlencoded;;;",
        "*/*",
    ]
)


def test_token_endpoint_fuzz(app, client, staff, reg_id, database_url) -> None:
    offer = make_offer(client, staff, reg_id)
    real_code = code_of(client, offer)
    real_tx = offer["tx_code"]
    used_real: list[bool] = []

    codes = st.one_of(
        st.just(real_code),
        st.builds(
            lambda i, c: real_code[:i] + c + real_code[i + 1 :],
            st.integers(0, len(real_code) - 1),
            st.sampled_from("A_-0=%+ "),
        ),
        st.just(real_code + "="),
        st.just(real_code.upper()),
        st.just(" " + real_code),
        ODD_TEXT,
    )
    tx_codes = st.one_of(
        st.text(alphabet="0123456789", min_size=0, max_size=8),
        ODD_TEXT,
        st.sampled_from(
            [
                "０００００" + "０",
                real_tx + " ",
                " " + real_tx,
                real_tx + "\x00",
                real_tx[:5],
                real_tx + "0",
                "-" + real_tx[1:],
                "+" + real_tx[1:],
            ]
        ),
    ).filter(lambda t: t != real_tx)
    grants = st.one_of(
        st.just(PRE_AUTH_GRANT),
        st.sampled_from(
            [
                "",
                "password",
                "authorization_code",
                "client_credentials",
                PRE_AUTH_GRANT.upper(),
                PRE_AUTH_GRANT + " ",
                "urn:ietf:params:oauth:grant-type:pre-authorized_code\x00",
                "refresh_token",
            ]
        ),
        ODD_TEXT,
    )
    extra = st.lists(st.tuples(st.text(max_size=12), st.text(max_size=30)), max_size=5)

    @st.composite
    def forms(draw: st.DrawFn) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        for name, strat in (
            ("grant_type", grants),
            ("pre-authorized_code", codes),
            ("tx_code", tx_codes),
        ):
            times = draw(st.sampled_from([1, 1, 1, 0, 2]))  # missing or repeated sometimes
            pairs += [(name, draw(strat)) for _ in range(times)]
        pairs += draw(extra)
        return draw(st.permutations(pairs))

    @budget(database_url)
    @given(form=forms(), ctype=CTYPES, raw=st.none() | st.binary(max_size=300))
    def probe(form: list[tuple[str, str]], ctype: str, raw: bytes | None) -> None:
        data = (
            raw
            if raw is not None
            else urlencode(
                [
                    (k.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass"))
                    for k, v in form
                ]
            ).encode("ascii")
        )
        sends_real = any(k == "pre-authorized_code" and v == real_code for k, v in form)
        before = snapshot(app)
        r = client.post("/lg/203211/token", data=data, content_type=ctype, environ_base=somewhere())
        check(r, TOKEN_ERRORS)
        after = snapshot(app)
        if sends_real and after["failures"] != before["failures"]:
            # Only the real code with a wrong tx_code counts a try (and nothing else).
            used_real.append(True)
            assert after["failures"] == before["failures"] + 1
            after["failures"] = before["failures"]
        assert after == before

    probe()
    # However many tries were counted, no more than five: then the offer is locked.
    with app.app_context(), services().db.session() as s:
        failures = s.execute(select(CredentialOffer.failures)).scalars().all()
    assert all(f <= 5 for f in failures)
    fresh = make_offer(client, staff, reg_id)
    assert token_req(client, code_of(client, fresh), fresh["tx_code"]).status_code == 200


# --- the nonce endpoint ------------------------------------------------------------------------


def test_nonce_endpoint_fuzz(app, client, database_url) -> None:
    seen: set[str] = set()

    @budget(database_url)
    @given(
        lg=LG_CODES,
        raw=st.binary(max_size=500),
        ctype=CTYPES,
        headers=st.dictionaries(
            st.sampled_from(["Authorization", "DPoP", "Accept", "X-Forwarded-For", "Origin"]),
            st.text(
                alphabet=st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=80
            ),
            max_size=3,
        ),
    )
    def probe(lg: str, raw: bytes, ctype: str, headers: dict[str, str]) -> None:
        r = client.post(
            f"/lg/{quote(lg, safe='')}/nonce",
            data=raw,
            content_type=ctype,
            headers=headers,
            environ_base=somewhere(),
        )
        check(r, {"not_found", "method_not_allowed"}, ok=(200,))
        if r.status_code == 200:
            assert lg == "203211" or lg in ("011002",), lg
            value = r.json["c_nonce"]
            assert isinstance(value, str) and len(value) >= 32 and value not in seen
            assert r.headers["Cache-Control"] == "no-store"
            seen.add(value)

    probe()


# --- the credential request: JSON of any shape ----------------------------------------------------


def test_credential_request_json_fuzz(app, client, clock, staff, reg_id, database_url) -> None:
    tok = redeem(client, staff, reg_id)
    hk = jws.generate_key()
    live = nonce(client)
    good = proof(hk, clock, live)

    shaped = st.fixed_dictionaries(
        {},
        optional={
            "credential_configuration_id": st.one_of(st.just(CONFIG), JSON_VALUES),
            "proofs": st.one_of(
                st.fixed_dictionaries(
                    {"jwt": st.lists(st.one_of(ODD_TEXT, JSON_VALUES), max_size=3)}
                ),
                st.fixed_dictionaries({"jwt": st.just([good, good])}),
                st.fixed_dictionaries({"jwt": st.just([good]), "ldp_vp": JSON_VALUES}),
                JSON_VALUES,
            ),
            "proof": st.one_of(
                st.fixed_dictionaries(
                    {"proof_type": st.just("jwt"), "jwt": st.one_of(ODD_TEXT, JSON_VALUES)}
                ),
                JSON_VALUES,
            ),
            "credential_identifier": JSON_VALUES,
            "format": JSON_VALUES,
            "credential_response_encryption": JSON_VALUES,
        },
    ).filter(
        lambda b: (
            not (
                b.get("credential_configuration_id") == CONFIG
                and (
                    b.get("proofs") == {"jwt": [good]}
                    or (b.get("proof") == {"proof_type": "jwt", "jwt": good} and "proofs" not in b)
                )
            )
        )
    )
    bodies = st.one_of(
        shaped.map(lambda b: json.dumps(b).encode()),
        JSON_VALUES.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=200),
    )
    auths = st.one_of(
        st.just(f"Bearer {tok}"),
        st.just(f"Bearer {tok}"),
        st.just(f"DPoP {tok}"),
        st.just(f"bearer  {tok} "),
        st.just(f"Bearer {tok}x"),
        st.just("Bearer"),
        st.just(""),
        st.text(alphabet=st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=60),
    )
    before = snapshot(app)

    @budget(database_url)
    @given(
        raw=bodies,
        auth=auths,
        ctype=st.sampled_from(
            ["application/json", "text/plain", "application/x-www-form-urlencoded"]
        ),
    )
    def probe(raw: bytes, auth: str, ctype: str) -> None:
        r = client.post(
            "/lg/203211/credential",
            data=raw,
            content_type=ctype,
            headers={"Authorization": auth} if auth else {},
        )
        check(r, CREDENTIAL_ERRORS)
        if r.status_code == 401:
            assert "WWW-Authenticate" in r.headers

    probe()
    assert snapshot(app) == before  # no token spent, no nonce consumed, nothing issued
    r = credential_req(
        client, tok, {"credential_configuration_id": CONFIG, "proofs": {"jwt": [good]}}
    )
    assert r.status_code == 200, r.json


# --- the key proof JWT: almost valid, one defect at least ----------------------------------


def _p384_jwk() -> dict[str, str]:
    k = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-384",
        "x": b64(k.x.to_bytes(48, "big")),
        "y": b64(k.y.to_bytes(48, "big")),
    }


def _proof_defects(
    hk: ec.EllipticCurvePrivateKey, other: ec.EllipticCurvePrivateKey, now: int, live: str
) -> dict[str, Any]:
    """Each a function (header, payload) -> compact JWT that must be refused."""
    pub = jws.public_jwk(hk)
    d = hk.private_numbers().private_value.to_bytes(32, "big")

    def signed(h: dict[str, Any], p: dict[str, Any]) -> str:
        return forge(h, p, hk)

    def edit(**changes: Any):
        def make(h: dict[str, Any], p: dict[str, Any]) -> str:
            h, p = dict(h), dict(p)
            for k, v in changes.items():
                where, name = k.split("__")
                target = h if where == "h" else p
                if v is _DROP:
                    target.pop(name, None)
                else:
                    target[name] = v
            return signed(h, p)

        return make

    return {
        "typ JWT": edit(h__typ="JWT"),
        "typ dpop": edit(h__typ="dpop+jwt"),
        "no typ": edit(h__typ=_DROP),
        "typ case": edit(h__typ="OPENID4VCI-PROOF+JWT"),
        "alg none": lambda h, p: forge({**h, "alg": "none"}, p, sig=b""),
        "alg HS256 keyed with the public key": lambda h, p: _hs256(
            {**h, "alg": "HS256"}, p, json.dumps(pub).encode()
        ),
        "alg ES384": edit(h__alg="ES384"),
        "no alg": edit(h__alg=_DROP),
        "alg list": edit(h__alg=["ES256"]),
        "jwk with d": edit(h__jwk={**pub, "d": b64(d)}),
        "jwk P-384": edit(h__jwk=_p384_jwk()),
        "jwk crv says P-384": edit(h__jwk={**pub, "crv": "P-384"}),
        "jwk RSA": edit(h__jwk={"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        "jwk off the curve": edit(h__jwk={**pub, "y": pub["x"]}),
        "jwk short x": edit(h__jwk={**pub, "x": pub["x"][:20]}),
        "jwk as string": edit(h__jwk=json.dumps(pub)),
        "kid instead of jwk": edit(h__jwk=_DROP, h__kid="holder-key-1"),
        "x5c instead of jwk": edit(h__jwk=_DROP, h__x5c=["MIIB"]),
        "jwk of another key": edit(h__jwk=jws.public_jwk(other)),
        "crit": edit(h__crit=["b64"], h__b64=False),
        "huge header": edit(h__pad="x" * 9000),
        "no aud": edit(p__aud=_DROP),
        "aud other issuer": edit(p__aud=f"{BASE}/lg/011002"),
        "aud slash": edit(p__aud=ISS + "/"),
        "aud list": edit(p__aud=[ISS]),
        "no nonce": edit(p__nonce=_DROP),
        "nonce int": edit(p__nonce=123456),
        "nonce list": edit(p__nonce=[live]),
        "nonce made up": edit(p__nonce=secrets.token_urlsafe(32)),
        "no iat": edit(p__iat=_DROP),
        "iat string": edit(p__iat=str(now)),
        "iat float": edit(p__iat=now + 0.5),
        "iat bool": edit(p__iat=True),
        "iat far past": edit(p__iat=now - 301),
        "iat far future": edit(p__iat=now + 301),
        "iat huge": edit(p__iat=10**400),
        "iat -huge": edit(p__iat=-(10**400)),
        "payload array": lambda h, p: forge(h, [p], hk),
        "header array": lambda h, p: forge([h], p, hk),
        "signature by another key": lambda h, p: forge(h, p, other),
        "signature cut": lambda h, p: signed(h, p)[:-10],
        "signature zero": lambda h, p: forge(h, p, sig=b"\x00" * 64),
        "two segments": lambda h, p: ".".join(signed(h, p).split(".")[:2]),
        "four segments": lambda h, p: signed(h, p) + ".e30",
        "padded": lambda h, p: signed(h, p) + "==",
        "whitespace": lambda h, p: " " + signed(h, p),
        "JWE-like": lambda h, p: ".".join([b64(b'{"alg":"RSA-OAEP","enc":"A256GCM"}')] * 5),
    }


_DROP = object()


def _hs256(header: Any, payload: Any, secret: bytes) -> str:
    h64 = b64(json.dumps(header).encode())
    p64 = b64(json.dumps(payload).encode())
    mac = hmac.new(secret, f"{h64}.{p64}".encode(), hashlib.sha256).digest()
    return f"{h64}.{p64}.{b64(mac)}"


def test_proof_jwt_fuzz(app, client, clock, staff, reg_id, database_url) -> None:
    tok = redeem(client, staff, reg_id)
    hk, other = jws.generate_key(), jws.generate_key()
    live = nonce(client)
    now = now_s(clock)
    defects = _proof_defects(hk, other, now, live)
    header = {"typ": "openid4vci-proof+jwt", "alg": "ES256", "jwk": jws.public_jwk(hk)}
    payload = {"aud": ISS, "iat": now, "nonce": live}
    before = snapshot(app)

    @budget(database_url)
    @given(
        name=st.sampled_from(sorted(defects)),
        extra_header=st.dictionaries(
            st.sampled_from(["cty", "x5u", "jku", "zip", "b64"]), JSON_VALUES, max_size=2
        ),
        extra_claims=st.dictionaries(
            st.sampled_from(["iss", "exp", "nbf", "jti", "sub"]), JSON_VALUES, max_size=2
        ),
        legacy=st.booleans(),
    )
    def probe(
        name: str, extra_header: dict[str, Any], extra_claims: dict[str, Any], legacy: bool
    ) -> None:
        # One defect at least; unknown members around it must not rescue it (or crash).
        jwt = defects[name]({**header, **extra_header}, {**payload, **extra_claims})
        body = (
            {"credential_configuration_id": CONFIG, "proof": {"proof_type": "jwt", "jwt": jwt}}
            if legacy
            else {"credential_configuration_id": CONFIG, "proofs": {"jwt": [jwt]}}
        )
        r = credential_req(client, tok, body)
        check(r, {"invalid_proof", "invalid_nonce", "invalid_credential_request"})

    probe()
    # Every defect alone, once, deterministically: none is accepted.
    for name, make in defects.items():
        r = credential_req(
            client,
            tok,
            {"credential_configuration_id": CONFIG, "proofs": {"jwt": [make(header, payload)]}},
        )
        check(r, {"invalid_proof", "invalid_nonce"})
    # Refused proofs spent neither the token nor the nonce they carried.
    assert snapshot(app) == before
    r = credential_req(
        client,
        tok,
        {"credential_configuration_id": CONFIG, "proofs": {"jwt": [proof(hk, clock, live)]}},
    )
    assert r.status_code == 200, r.json


# --- DPoP proofs -------------------------------------------------------------------------------


def _dpop_defects(
    dk: ec.EllipticCurvePrivateKey,
    other: ec.EllipticCurvePrivateKey,
    now: int,
    url: str,
    method: str,
    token: str | None,
) -> dict[str, Any]:
    pub = jws.public_jwk(dk)
    ath = b64(hashlib.sha256(token.encode()).digest()) if token else None

    def claims(**over: Any) -> dict[str, Any]:
        p: dict[str, Any] = {
            "htm": method,
            "htu": url,
            "iat": now,
            "jti": secrets.token_urlsafe(12),
        }
        if ath:
            p["ath"] = ath
        for k, v in over.items():
            if v is _DROP:
                p.pop(k, None)
            else:
                p[k] = v
        return p

    head = {"typ": "dpop+jwt", "alg": "ES256", "jwk": pub}
    out: dict[str, Any] = {
        "garbage": lambda: "not a jwt",
        "empty": lambda: "",
        "alg none": lambda: forge({**head, "alg": "none"}, claims(), sig=b""),
        "HS256": lambda: _hs256({**head, "alg": "HS256"}, claims(), json.dumps(pub).encode()),
        "typ JWT": lambda: forge({**head, "typ": "JWT"}, claims(), dk),
        "typ proof": lambda: forge({**head, "typ": "openid4vci-proof+jwt"}, claims(), dk),
        "jwk with d": lambda: forge({**head, "jwk": {**pub, "d": b64(b"\x01" * 32)}}, claims(), dk),
        "kid instead of jwk": lambda: forge(
            {"typ": "dpop+jwt", "alg": "ES256", "kid": "k"}, claims(), dk
        ),
        "other key signed": lambda: forge(head, claims(), other),
        "wrong htm": lambda: forge(head, claims(htm="GET"), dk),
        "htm lower": lambda: forge(head, claims(htm=method.lower()), dk),
        "no htm": lambda: forge(head, claims(htm=_DROP), dk),
        "htu other path": lambda: forge(head, claims(htu=f"{ISS}/nonce"), dk),
        "htu http": lambda: forge(head, claims(htu=url.replace("https:", "http:")), dk),
        "htu slash": lambda: forge(head, claims(htu=url + "/"), dk),
        # A query is ignored (RFC 9449 §4.3): test_oid4vci_conformance.py accepts it.
        "htu other port": lambda: forge(head, claims(htu=url.replace(".test/", ".test:8443/")), dk),
        "htu other issuer": lambda: forge(head, claims(htu=url.replace("203211", "011002")), dk),
        "no htu": lambda: forge(head, claims(htu=_DROP), dk),
        "iat past": lambda: forge(head, claims(iat=now - 301), dk),
        "iat future": lambda: forge(head, claims(iat=now + 301), dk),
        "iat huge": lambda: forge(head, claims(iat=10**400), dk),
        "iat string": lambda: forge(head, claims(iat=str(now)), dk),
        "no iat": lambda: forge(head, claims(iat=_DROP), dk),
        "no jti": lambda: forge(head, claims(jti=_DROP), dk),
        "jti short": lambda: forge(head, claims(jti="abc"), dk),
        "jti long": lambda: forge(head, claims(jti="j" * 129), dk),
        "jti int": lambda: forge(head, claims(jti=12345678901), dk),
        "huge": lambda: forge({**head, "pad": "x" * 9000}, claims(), dk),
    }
    if token:
        out["no ath"] = lambda: forge(head, claims(ath=_DROP), dk)
        out["ath of another token"] = lambda: forge(
            head, claims(ath=b64(hashlib.sha256(b"other").digest())), dk
        )
        out["ath not base64url"] = lambda: forge(head, claims(ath=ath + "="), dk)  # type: ignore[operator]
    return out


def test_dpop_fuzz_at_the_token_endpoint(app, client, clock, staff, reg_id, database_url) -> None:
    offer = make_offer(client, staff, reg_id)
    code, tx = code_of(client, offer), offer["tx_code"]
    dk, other = jws.generate_key(), jws.generate_key()
    defects = _dpop_defects(dk, other, now_s(clock), f"{ISS}/token", "POST", None)
    spent = dpop(dk, clock, "POST", f"{ISS}/token")
    other_offer = make_offer(client, staff, reg_id)
    assert (
        token_req(
            client, code_of(client, other_offer), other_offer["tx_code"], headers={"DPoP": spent}
        ).status_code
        == 200
    )
    before = snapshot(app)

    @budget(database_url)
    @given(
        name=st.sampled_from([*sorted(defects), "replay", "two headers"]),
        junk=st.text(
            alphabet=st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=100
        ),
    )
    def probe(name: str, junk: str) -> None:
        if name == "replay":
            headers: Any = {"DPoP": spent}
        elif name == "two headers":
            headers = [("DPoP", dpop(dk, clock, "POST", f"{ISS}/token")), ("DPoP", junk)]
        elif name == "garbage":
            headers = {"DPoP": junk or "x"}
        else:
            headers = {"DPoP": defects[name]()}
        r = client.post(
            "/lg/203211/token",
            headers=headers,
            environ_base=somewhere(),
            data={"grant_type": PRE_AUTH_GRANT, "pre-authorized_code": code, "tx_code": tx},
        )
        check(r, {"invalid_dpop_proof"})

    probe()
    # The DPoP check comes before the code: nothing spent, nothing counted.
    assert snapshot(app) == before
    r = token_req(client, code, tx, headers={"DPoP": dpop(dk, clock, "POST", f"{ISS}/token")})
    assert r.status_code == 200 and r.json["token_type"] == "DPoP", r.json


def test_dpop_fuzz_at_the_credential_endpoint(
    app, client, clock, staff, reg_id, database_url
) -> None:
    dk, tok = redeem_dpop(client, clock, staff, reg_id)
    other = jws.generate_key()
    url = f"{ISS}/credential"
    defects = _dpop_defects(dk, other, now_s(clock), url, "POST", tok)
    hk = jws.generate_key()
    live = nonce(client)
    body = {"credential_configuration_id": CONFIG, "proofs": {"jwt": [proof(hk, clock, live)]}}
    before = snapshot(app)

    @budget(database_url)
    @given(
        name=st.sampled_from(sorted(defects)),
        scheme=st.sampled_from(["DPoP", "DPoP", "dpop", "Bearer"]),
    )
    def probe(name: str, scheme: str) -> None:
        r = client.post(
            "/lg/203211/credential",
            json=body,
            headers={"Authorization": f"{scheme} {tok}", "DPoP": defects[name]()},
        )
        check(r, {"invalid_dpop_proof", "invalid_token"})
        assert r.status_code == 401 and "WWW-Authenticate" in r.headers

    probe()
    assert snapshot(app) == before
    good = dpop(dk, clock, "POST", url, tok)
    r = client.post(
        "/lg/203211/credential", json=body, headers={"Authorization": f"DPoP {tok}", "DPoP": good}
    )
    assert r.status_code == 200, r.json


@pytest.mark.parametrize("iat", [10**400, -(10**400), 2**63, -(2**63)])
def test_huge_iat_is_a_refusal_not_a_crash(client, clock, staff, reg_id, iat) -> None:
    """The input that once answered 500 (int - float overflow in the iat check)."""
    tok = redeem(client, staff, reg_id)
    hk = jws.generate_key()
    jwt = forge(
        {"typ": "openid4vci-proof+jwt", "alg": "ES256", "jwk": jws.public_jwk(hk)},
        {"aud": ISS, "iat": iat, "nonce": nonce(client)},
        hk,
    )
    r = credential_req(
        client, tok, {"credential_configuration_id": CONFIG, "proofs": {"jwt": [jwt]}}
    )
    check(r, {"invalid_proof"})
    offer = make_offer(client, staff, reg_id)
    dk = jws.generate_key()
    r = token_req(
        client,
        code_of(client, offer),
        offer["tx_code"],
        headers={"DPoP": dpop(dk, clock, "POST", f"{ISS}/token", iat=iat)},
    )
    check(r, {"invalid_dpop_proof"})

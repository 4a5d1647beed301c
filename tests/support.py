"""A small self-contained trust world for tests: anchor, municipalities, lists, holders.

Everything is made with fresh keys in memory, at a fixed clock, through the
same wire functions the issuer uses, so a test can change one thing (a
signature, a claim, a status bit) and expect exactly one reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from dualres.verifier import Bundle
from dualres.verifier.wire import credential, jws, sdjwt, statuslist, transport, trustlist
from dualres.verifier.wire.b64 import b64d, b64e
from dualres.verifier.wire.base45 import encode as b45encode
from dualres.wallet import holder

NOW = 1_795_000_000  # 2026-11-18T09:46:40Z
# The SRI digest of some type metadata document: what a credential carries as
# vct#integrity and the trust list lists under its vct.
TYPE_INTEGRITY = "sha256-" + base64.b64encode(hashlib.sha256(b"type metadata").digest()).decode()
HOST = "https://dualres.example.jp"
DAY = 86_400
LIST_SIZE = 131_072

PERSON = {
    "family_name": "山田",
    "given_name": "花子",
    "family_name_kana": "ヤマダ",
    "given_name_kana": "ハナコ",
    "birthdate": "1985-06-15",
}
DISCLOSABLE: dict[str, Any] = {
    "person": PERSON,
    "primary_residence": {"lg_code": "131016", "name": "東京都千代田区"},
    "second_home": {"address": "長野県北佐久郡軽井沢町大字軽井沢1323-1", "postal_code": "389-0102"},
    "activities": ["telework", "volunteer"],
    "registered_since": "2026-04-01",
    "sub": "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5",
}
MUNICIPALITIES = {
    "203211": ("軽井沢町", "長野県", "Karuizawa"),
    "011002": ("札幌市", "北海道", "Sapporo"),
    "131016": ("千代田区", "東京都", "Chiyoda"),
}


class TypeRestorer:
    """What a bundle tells the QR transport, for tests with no bundle at hand:
    the integrity of the test type metadata (and no certificate chains)."""

    def x5c(self, header: Mapping[str, Any], payload: Mapping[str, Any]) -> None:
        return None

    def types(self) -> dict[str, list[str]]:
        return {credential.vct_for(HOST): [TYPE_INTEGRITY]}


@dataclass
class Municipality:
    lg_code: str
    name: str
    prefecture: str
    name_en: str
    key: ec.EllipticCurvePrivateKey
    kid: str
    host: str = HOST

    @property
    def iss(self) -> str:
        return f"{self.host}/lg/{self.lg_code}"

    @property
    def status_uri(self) -> str:
        return f"{self.iss}/status/1"

    def entry(self, extra_keys: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
        return {
            "iss": self.iss,
            "lg_code": self.lg_code,
            "name": self.name,
            "name_en": self.name_en,
            "prefecture": self.prefecture,
            "keys": [{"kid": self.kid, "jwk": jws.public_jwk(self.key)}, *extra_keys],
            "status_lists": [self.status_uri],
        }


@dataclass
class World:
    anchor: ec.EllipticCurvePrivateKey = field(default_factory=jws.generate_key)
    holder_key: ec.EllipticCurvePrivateKey = field(default_factory=jws.generate_key)
    lgs: dict[str, Municipality] = field(default_factory=dict)
    # Where issuers and status lists live; a test serving them over a real
    # local HTTP server passes e.g. "http://127.0.0.1:PORT".
    host: str = HOST

    def __post_init__(self) -> None:
        for code, (name, pref, en) in MUNICIPALITIES.items():
            self.lgs[code] = Municipality(
                code, name, pref, en, jws.generate_key(), f"{code}-1", self.host
            )

    @property
    def karuizawa(self) -> Municipality:
        return self.lgs["203211"]

    def trust_list(
        self,
        *,
        iat: int = NOW - DAY,
        exp: int = NOW + 6 * DAY,
        anchor: ec.EllipticCurvePrivateKey | None = None,
        entries: list[dict[str, Any]] | None = None,
        issuing_cas: list[str] | None = None,
    ) -> str:
        return trustlist.sign(
            iss=self.host,
            iat=iat,
            exp=exp,
            anchor_key=anchor or self.anchor,
            issuers=entries if entries is not None else [m.entry() for m in self.lgs.values()],
            types={credential.vct_for(self.host): [TYPE_INTEGRITY]},
            issuing_cas=issuing_cas or (),
        )

    def status_token(
        self,
        lg: Municipality,
        *,
        statuses: Mapping[int, int] | None = None,
        iat: int = NOW - 3600,
        exp: int = NOW + DAY,
        size: int = LIST_SIZE,
    ) -> str:
        lst = statuslist.StatusList.new(size, 2)
        for idx, st in (statuses or {}).items():
            lst.set(idx, st)
        return statuslist.sign_token(
            lst, uri=lg.status_uri, iat=iat, exp=exp, ttl=3600, key=lg.key, kid=lg.kid
        )

    def bundle(
        self,
        *,
        statuses: Mapping[int, int] | None = None,
        trust_list: str | None = None,
        status_iat: int = NOW - 3600,
        status_exp: int = NOW + DAY,
    ) -> Bundle:
        tokens = {
            m.status_uri: self.status_token(
                m,
                statuses=statuses if m is self.karuizawa else None,
                iat=status_iat,
                exp=status_exp,
            )
            for m in self.lgs.values()
        }
        return Bundle.from_tokens(
            trust_list=trust_list or self.trust_list(),
            status_lists=tokens,
            anchors=[self.anchor.public_key()],
            created_at=NOW,
        )

    def issue(
        self,
        *,
        lg: Municipality | None = None,
        tier: str = "premium",
        iat: int = NOW - 30 * DAY,
        exp: int = NOW + 300 * DAY,
        status_idx: int = 4242,
        holder_key: ec.EllipticCurvePrivateKey | None = None,
        disclosable: Mapping[str, Any] | None = None,
        paper: bool = False,
    ) -> str:
        lg = lg or self.karuizawa
        return credential.issue(
            iss=lg.iss,
            kid=lg.kid,
            key=lg.key,
            holder_jwk=None if paper else jws.public_jwk(holder_key or self.holder_key),
            tier=tier,
            iat=iat,
            exp=exp,
            status_uri=lg.status_uri,
            status_idx=status_idx,
            disclosable=DISCLOSABLE if disclosable is None else disclosable,
            vct=credential.vct_for(self.host),
            vct_integrity=TYPE_INTEGRITY,
            # As the issuer writes it (issuance.py): the always-visible prefecture code.
            prefecture=_prefecture_code(lg.lg_code),
        ).compact

    def present(
        self,
        issued: str | None = None,
        *,
        profile: str = "counter",
        now: int = NOW,
        holder_key: ec.EllipticCurvePrivateKey | None = None,
        audience: str | None = None,
        nonce: str | None = None,
        qr: bool = True,
    ) -> str:
        text = holder.present(
            issued or self.issue(),
            holder_key or self.holder_key,
            now=now,
            profile=profile,
            audience=audience,
            nonce=nonce,
        )
        return transport.encode(text) if qr else text


def paper_payload(issued: str, *, qr: bool = True) -> str:
    """What a paper 登録証's QR holds: the office's disclosures and no KB-JWT."""
    text = sdjwt.select(issued, ("person", "primary_residence")).compact
    return transport.encode(text) if qr else text


def sign_raw(
    header: dict[str, Any], payload: dict[str, Any], key: ec.EllipticCurvePrivateKey
) -> str:
    """Sign exactly the header given (``alg`` included), for forging tests."""
    alg = header.get("alg", "ES256")
    token = jws.sign({k: v for k, v in header.items() if k != "alg"}, payload, key)
    if alg == "ES256":
        return token
    h64 = jws.b64e(jws._json.dumps(header))  # type: ignore[attr-defined]
    _, p64, s64 = token.split(".")
    return f"{h64}.{p64}.{s64}"


def reissue_payload(
    issued: str,
    key: ec.EllipticCurvePrivateKey,
    change: Mapping[str, Any] | None = None,
    header: Mapping[str, Any] | None = None,
    drop: Iterable[str] = (),
) -> str:
    """Re-sign an issued credential after editing its payload or header."""
    sd = sdjwt.parse_compact(issued)
    tok = jws.parse(sd.issuer_jwt)
    payload = {k: v for k, v in tok.payload.items() if k not in set(drop)}
    payload.update(change or {})
    head = {k: v for k, v in tok.header.items() if k != "alg"}
    head.update(header or {})
    new_jwt = jws.sign(head, payload, key)
    return "~".join([new_jwt, *sd.disclosures]) + "~"


# --- Helpers for hostile and wire tests -------------------------------------------------


def sign_bytes(header: bytes, payload: bytes, key: ec.EllipticCurvePrivateKey) -> str:
    """ES256 over exactly these header and payload bytes (any JSON text, or none)."""
    signing_input = f"{b64e(header)}.{b64e(payload)}"
    r, s = decode_dss_signature(key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256())))
    sig = b64e(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    return f"{signing_input}.{sig}"


def with_kb(
    sd_jwt: str,
    holder_key: ec.EllipticCurvePrivateKey,
    *,
    now: int = NOW,
    aud: str = credential.COUNTER_AUDIENCE,
    nonce: str | None = None,
) -> str:
    """Append a correct KB-JWT to ``<JWT>~<D1>~...~`` whatever its disclosures are."""
    sd = sdjwt.parse_compact(sd_jwt)
    assert sd.kb_jwt is None, "pass the SD-JWT without its KB-JWT"
    return sdjwt.present(sd, holder_key, aud=aud, nonce=nonce or holder.new_nonce(), iat=now)


def replace_disclosures(compact: str, disclosures: Iterable[str]) -> str:
    """The SD-JWT (no KB-JWT) of ``compact``'s issuer JWT with other disclosures."""
    sd = sdjwt.parse_compact(compact)
    return "~".join([sd.issuer_jwt, *disclosures]) + "~"


def signature_altered(token: str) -> str:
    """``token`` with one character of its signature (20 from the end) changed."""
    i = len(token) - 20
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


def exp_pushed_on(token: str) -> str:
    """``token``'s expiry pushed a year on, as a forger would, its JSON still valid."""
    h, p, sig = token.split(".")
    payload = json.loads(b64d(p))
    payload["exp"] += 365 * DAY
    return f"{h}.{b64e(json.dumps(payload).encode())}.{sig}"


def misissued_status_lists(lg: Municipality, other: Municipality) -> tuple[str, str, str]:
    """Tokens for ``lg``'s status list that a bundle refuses: signed with ``other``'s key
    under ``lg``'s kid, under a kid nobody has, and naming ``other``'s list."""
    lst = statuslist.StatusList.new(1024, 2)
    forged = statuslist.sign_token(
        lst, uri=lg.status_uri, iat=NOW, exp=NOW + DAY, ttl=1, key=other.key, kid=lg.kid
    )
    unknown_kid = statuslist.sign_token(
        lst, uri=lg.status_uri, iat=NOW, exp=NOW + DAY, ttl=1, key=lg.key, kid="nobody"
    )
    misnamed = statuslist.sign_token(
        lst, uri=other.status_uri, iat=NOW, exp=NOW + DAY, ttl=1, key=lg.key, kid=lg.kid
    )
    return forged, unknown_kid, misnamed


def dr1_frame(skeleton: bytes, blobs: bytes = b"", *, level: int = 9) -> str:
    """A ``DR1:`` string around any skeleton, bypassing the encoder's checks."""
    deflater = zlib.compressobj(
        level, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, transport.DICTIONARY_V1
    )
    packed = deflater.compress(skeleton) + deflater.flush()
    return transport.PREFIX + b45encode(transport._varint(len(packed)) + packed + blobs)


class NoReplay:
    """A replay store that remembers nothing: for tests that verify one payload often."""

    def remember(self, nonce: str, *, now: int, until: int) -> bool:
        return True


# --- A real HTTP server for sync tests ---------------------------------------------------


class LocalServer:
    """Serves ``routes`` (URL path → body) over real HTTP on 127.0.0.1, in a thread.

    Start it first, build ``World(host=server.url)``, then ``publish`` what the
    trust list names, so ``dualres-verify sync`` fetches over a real socket.
    """

    def __init__(self) -> None:
        import http.server

        routes: dict[str, bytes] = {}
        self.routes = routes
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                body = routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/jwt")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep pytest output clean

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread: Any = None

    def publish(self, url: str, body: str | bytes) -> None:
        """Serve ``body`` at ``url``, an absolute URL on this server."""
        assert url.startswith(self.url), url
        self.routes[url[len(self.url) :] or "/"] = body.encode() if isinstance(body, str) else body

    def __enter__(self) -> LocalServer:
        import threading

        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


def windowed_keys(world: World) -> tuple[str, dict[str, str]]:
    """A trust list where Karuizawa also has a key retired 30 days ago and the next key,
    announced to start in 7 days; and status lists for its URI signed by each:
    ``retired-after`` (signed an hour ago by the retired key), ``next-early`` (an hour
    ago by the next key) are refused ``key_not_valid``; ``retired-within`` (signed
    31 days ago, while the key was current) and ``current`` are not."""
    kz = world.karuizawa
    retired, upcoming = jws.generate_key(), jws.generate_key()
    extra = [
        {
            "kid": f"{kz.lg_code}-0",
            "jwk": jws.public_jwk(retired),
            "not_before": NOW - 400 * DAY,
            "not_after": NOW - 30 * DAY,
        },
        {"kid": f"{kz.lg_code}-2", "jwk": jws.public_jwk(upcoming), "not_before": NOW + 7 * DAY},
    ]
    entries = [m.entry(extra) if m is kz else m.entry() for m in world.lgs.values()]
    lst = statuslist.StatusList.new(LIST_SIZE, 2)

    def signed(key: ec.EllipticCurvePrivateKey, kid: str, iat: int) -> str:
        return statuslist.sign_token(
            lst, uri=kz.status_uri, iat=iat, exp=NOW + DAY, ttl=3600, key=key, kid=kid
        )

    return world.trust_list(entries=entries), {
        "retired-after": signed(retired, f"{kz.lg_code}-0", NOW - 3600),
        "next-early": signed(upcoming, f"{kz.lg_code}-2", NOW - 3600),
        "retired-within": signed(retired, f"{kz.lg_code}-0", NOW - 31 * DAY),
        "current": signed(kz.key, kz.kid, NOW - 3600),
    }


def _prefecture_code(lg_code: str) -> str | None:
    from dualres.schemas import lgcodes

    pref = lgcodes.prefecture_of(lg_code)
    return pref.lg_code if pref else None


def resigned(cert: str, signer: Any, *extensions: tuple[Any, bool]) -> str:
    """``cert`` (base64 DER) signed again by ``signer``, with each of ``extensions``
    (value, critical) in place of its own of the same type, or after them: a
    certificate made odd on purpose, for the vectors and tests/test_x509.py."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    good = x509.load_der_x509_certificate(base64.b64decode(cert))
    new = {value.oid: (value, critical) for value, critical in extensions}
    b = (
        x509.CertificateBuilder()
        .subject_name(good.subject)
        .issuer_name(good.issuer)
        .public_key(good.public_key())
        .serial_number(good.serial_number)
        .not_valid_before(good.not_valid_before_utc)
        .not_valid_after(good.not_valid_after_utc)
    )
    for ext in good.extensions:
        value, critical = new.pop(ext.oid, (ext.value, ext.critical))
        b = b.add_extension(value, critical=critical)
    for value, critical in new.values():
        b = b.add_extension(value, critical=critical)
    return base64.b64encode(b.sign(signer, hashes.SHA256()).public_bytes(Encoding.DER)).decode()

"""A verified bundle remembered, so that the next process need not verify it again.

Loading a nationwide bundle re-verifies 1,742 signatures, imports 3,482 keys
and inflates 1,741 status lists: a third of a second of CPU in a process that
a shop may start for every scan.  After a full load, ``save`` writes what the
verification established (issuers, their keys as JWKs, each status list still
compressed) to a cache file in the verifier's own state directory; ``load``
gives it back only for the very same bundle bytes (SHA-256 of the file) and
the very same trust anchors, and builds an issuer's keys or a status list's
bits only when a scan first asks for them.

The cache is plain JSON (what a damaged file can do to a JSON parser is
raise ValueError, nothing worse), written atomically.  Anything unexpected in
it (another format, a damaged file, a different bundle) means a full load,
never an error.  Whoever can write the cache can
change what the verifier trusts, exactly as whoever can write the replay
memory can reopen a replay window: it belongs in the scanner's state
directory, never beside a bundle that travels through untrusted hands.
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec

from dualres.verifier.wire import jws, statuslist, trustlist

# /3: keys carry their certificate chain and its window, and the trust list its
# types (issue 15); a /2 cache lacks them and is simply not used.
# /4: each entry is base64 of its JSON text, not the text itself (issue 16v).
FORMAT = "dualres-bundle-cache/4"
MAX_CACHE_BYTES = 256 * 1024 * 1024

V = TypeVar("V")


class LazyMap(Mapping[str, V]):
    """A read-only mapping whose values are built from plain data on first access,
    by ``make(key, plain_value)``."""

    __slots__ = ("_built", "_make", "_plain")

    def __init__(self, plain: Mapping[str, Any], make: Callable[[str, Any], V]) -> None:
        self._plain = plain
        self._make = make
        self._built: dict[str, V] = {}

    def __getitem__(self, key: str) -> V:
        try:
            return self._built[key]
        except KeyError:
            value = self._make(key, self._plain[key])  # KeyError for an unknown key
            self._built[key] = value
            return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._plain)

    def __len__(self) -> int:
        return len(self._plain)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def anchor_ids(anchors: Sequence[ec.EllipticCurvePublicKey]) -> list[str]:
    return sorted(trustlist.anchor_kid(a) for a in anchors)


def dump(
    *,
    file_digest: str,
    anchors: list[str],
    raw: Mapping[str, Any],
    trust: trustlist.TrustList,
    owners: Mapping[str, str],
) -> bytes:
    """The cache of a bundle that was just verified in full."""
    # Each entry is a JSON text of its own inside the file (as base64, _text):
    # reading the cache parses 1,741 strings, and only the entries a scan touches
    # are parsed further (a third of the cost of parsing every entry up front).
    issuers = {
        iss.iss: _text(
            iss.lg_code,
            iss.name,
            iss.prefecture,
            iss.name_en,
            tuple(iss.status_lists),
            [
                (
                    k.kid,
                    dict(k.jwk),
                    k.not_before,
                    k.not_after,
                    list(k.x5c),
                    k.cert_not_before,
                    k.cert_not_after,
                )
                for k in iss.keys.values()
            ],
        )
        for iss in trust.issuers.values()
    }
    status = {}
    for uri, text in raw["status_lists"].items():
        # Verified moments ago; only the compressed list is kept, inflated on use.
        token = jws.parse(text)
        p = token.payload
        sl = p["status_list"]
        status[uri] = _text(
            owners[uri],
            p["sub"],
            p["iat"],
            p.get("exp"),
            p.get("ttl"),
            token.header.get("kid"),
            sl["bits"],
            sl["lst"],
        )
    plain = {
        "format": FORMAT,
        "file": file_digest,
        "anchors": anchors,
        "created_at": raw["created_at"],
        "source": raw.get("source"),
        "anchor": raw["anchor"],
        "trust": (trust.iss, trust.iat, trust.exp),
        "types": {vct: list(values) for vct, values in trust.types.items()},
        "issuers": issuers,
        "status": status,
    }
    return json.dumps(plain, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _text(*fields: Any) -> str:
    # Base64 of the JSON text: a JSON text inside a JSON string is all escaped
    # quotes, which the file's parser reads at half the speed of plain characters;
    # with x5c (3,482 certificates) that was 6 of a from-cache start-up's 100 ms.
    text = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return binascii.b2a_base64(text, newline=False).decode("ascii")


def _fields(entry: str) -> Any:
    return json.loads(binascii.a2b_base64(entry))


def read(path: Path, file_digest: str, anchors: list[str]) -> dict[str, Any] | None:
    """The cached data for exactly this bundle and these anchors, or None."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CACHE_BYTES + 1)
        if len(data) > MAX_CACHE_BYTES:
            return None
        plain = json.loads(data)
    except (OSError, ValueError, RecursionError):
        return None
    if (
        not isinstance(plain, dict)
        or plain.get("format") != FORMAT
        or plain.get("file") != file_digest
        or plain.get("anchors") != anchors
    ):
        return None
    return plain


def write(path: Path, data: bytes) -> None:
    """Atomically, and silently not at all when the directory is not writable."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _issuer(iss: str, text: str) -> trustlist.TrustedIssuer:
    lg_code, name, prefecture, name_en, lists, keys = _fields(text)
    return trustlist.TrustedIssuer(
        iss,
        lg_code,
        name,
        prefecture,
        {
            # The chain was checked against the anchor when the bundle was
            # verified in full; the cache is as trusted as that verification.
            kid: trustlist.IssuerKey(
                kid, jwk, jws.key_from_jwk(jwk), nb, na, tuple(x5c), cert_nb, cert_na
            )
            for kid, jwk, nb, na, x5c, cert_nb, cert_na in keys
        },
        tuple(lists),
        name_en,
    )


def issuers(plain: Mapping[str, Any]) -> LazyMap[trustlist.TrustedIssuer]:
    """The trust list's issuers, each (with its keys) built when first looked up."""
    return LazyMap(plain, _issuer)


def status_token(entry: str) -> tuple[str, statuslist.StatusListToken]:
    owner, sub, iat, exp, ttl, kid, bits, lst = _fields(entry)
    lst_obj = statuslist.StatusList.from_json({"bits": bits, "lst": lst})
    return owner, statuslist.StatusListToken(sub, iat, exp, ttl, kid, lst_obj)


def types(plain: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """The trust list's ``types`` (vct -> integrity values) as cached."""
    raw = plain.get("types", {})
    return {vct: tuple(values) for vct, values in raw.items()}

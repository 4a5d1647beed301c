"""The floor: a counter presentation checked by hand, straight on cryptography and the stdlib.

This is what the fastest sensible Python could do for exactly the checks
``verifier.verify(..., "counter")`` makes on a ``DR1:`` presentation, with no
abstractions: no dataclasses, no result object, no reason enum, one pass over
the bytes.  ``verifier.verify`` is measured against it; the ratio ours/floor is
the price of the library's structure.

Only the preset dictionary is imported from the verifier (it is a constant of
the format); Base45, the varints, the inflate, the skeleton and the lifted
strings are decoded here.  Trust data comes pre-digested by ``prepare``
(keys by issuer and kid, status lists already inflated), as a real verifier
would hold it in memory between scans.

Checks, in order: transport framing and size caps; trust-list expiry; issuer
header (``typ``, ``alg``, no ``crit``); issuer and key from the trust list;
the issuer ES256 signature; the key's validity period; ``vct``, ``iat``,
``exp``, ``nbf``, ``tier``; every disclosure referenced once by ``_sd`` with
``_sd_alg`` sha-256 (a counter presentation has none); the holder key from
``cnf.jwk``; KB-JWT header, signature, ``sd_hash``, ``aud``, nonce length and
``iat`` window; the status bits and the status list's expiry; the profile's
tiers; the nonce not seen in its window.  Anything else raises ``Rejected``.

Two liberties a hand-written verifier takes and ours does not: the JSON is
parsed from the bytes the transport just gave back instead of from their
base64url text (the signing inputs and ``sd_hash`` still use that text), and
the ``cnf.jwk`` coordinates are decoded without a canonical-form check (a
non-canonical spelling still names the same point, and the issuer signed it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from dualres.verifier.wire.transport import DICTIONARY_V1, DICTIONARY_V2

_ALPHABET = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_B45 = bytes(_ALPHABET.index(i) if i in _ALPHABET else 0xFF for i in range(256))
_TO_URL = bytes.maketrans(b"+/", b"-_")
_ECDSA = ec.ECDSA(hashes.SHA256())
_P256 = ec.SECP256R1()
_VCT = "urn:dualres:dual-residence:1"  # credentials issued before the https vct
_DICTIONARIES = {"DR1:": DICTIONARY_V1, "DR2:": DICTIONARY_V2}
_RESERVED = frozenset({"iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "status", "tier", "iat"})


class Rejected(Exception):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        raise Rejected("duplicate JSON member")
    return d


def _const(name: str) -> Any:
    raise Rejected("JSON constant")


def _b64e(raw: bytes) -> bytes:
    return binascii.b2a_base64(raw, newline=False).rstrip(b"=").translate(_TO_URL)


def prepare(bundle: Any, profile: Any) -> dict[str, Any]:
    """Flatten a verified ``verifier.Bundle`` and profile into plain dicts (not timed)."""
    tl = bundle.trust_list
    keys = {
        (iss.iss, kid): (k.key, k.not_before, k.not_after)
        for iss in tl.issuers.values()
        for kid, k in iss.keys.items()
    }
    status = {
        uri: (e.issuer, e.token.status_list.bits, bytes(e.token.status_list.data), e.token.exp)
        for uri, e in bundle.status.items()
    }
    return {
        "keys": keys,
        "status": status,
        "tl_exp": tl.exp,
        "tl_grace": profile.trust_list_grace,
        "sl_grace": profile.status_list_grace,
        "skew": profile.clock_skew,
        "max_age": profile.presentation_max_age,
        "aud": profile.audience,
        "tiers": profile.accepted_tiers,
        "vcts": {_VCT, tl.iss.rstrip("/") + "/vct/dual-residence/1"},
        # (first two digest bytes) -> the "vct" and "vct#integrity" members DR2 leaves out
        "types": {
            base64.b64decode(i.removeprefix("sha256-"))[:2]: (
                b'"vct":' + json.dumps(v).encode() + b',"vct#integrity":' + json.dumps(i).encode()
            )
            for v, values in tl.types.items()
            for i in values
        },
    }


def verify(text: str, trust: dict[str, Any], nonces: dict[str, int], now: int) -> tuple[str, str]:
    """Accept a ``DR2:``/``DR1:`` counter presentation or raise ``Rejected``; return (iss, tier)."""
    try:
        return _verify(text, trust, nonces, now)
    except Rejected:
        raise
    except Exception as exc:
        raise Rejected(f"malformed ({type(exc).__name__})") from exc


def _verify(text: str, trust: dict[str, Any], nonces: dict[str, int], now: int) -> tuple[str, str]:
    # ---- transport: "DR2:" (or "DR1:") + Base45( varint(len Z) | Z | blobs ) -------------
    dictionary = _DICTIONARIES.get(text[:4])
    if len(text) > 4296 or dictionary is None:
        raise Rejected("not DR1/DR2 or too long")
    v = text[4:].encode("ascii").translate(_B45)
    if 0xFF in v or len(v) % 3 == 1:
        raise Rejected("base45 alphabet")
    # Base45 without a per-triple Python loop: each triple's three digits are
    # spread into 3-byte lanes of three big integers, summed with weights
    # 1, 45, 2025 (no lane can carry: 44 * 2071 < 2**24), and read back.
    full = len(v) - len(v) % 3
    a = bytearray(full)
    a[2::3] = v[0:full:3]
    b = bytearray(full)
    b[2::3] = v[1:full:3]
    c = bytearray(full)
    c[2::3] = v[2:full:3]
    w = (
        int.from_bytes(a, "big") + 45 * int.from_bytes(b, "big") + 2025 * int.from_bytes(c, "big")
    ).to_bytes(full, "big")
    if w[0::3].count(0) != full // 3:
        raise Rejected("base45 range")  # a triple above 0xFFFF
    data = bytearray(full // 3 * 2)
    data[0::2] = w[1::3]
    data[1::2] = w[2::3]
    if full != len(v):
        last = v[full] + 45 * v[full + 1]
        if last > 0xFF:
            raise Rejected("base45 range")
        data.append(last)
    zlen = data[0]
    pos = 1
    if zlen & 0x80:
        if data[1] & 0x80:
            raise Rejected("varint")
        zlen = (zlen & 0x7F) | (data[1] << 7)
        pos = 2
    packed = bytes(data[pos : pos + zlen])
    if len(packed) != zlen:
        raise Rejected("truncated")
    blobs = bytes(data[pos + zlen :])
    inflater = zlib.decompressobj(-15, zdict=dictionary)
    sk = inflater.decompress(packed, 8192)
    if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
        raise Rejected("inflate")

    # ---- skeleton: flags, n, JSON segments with lifted strings, signature lengths ----------
    flags = sk[0]
    if flags & ~(3 | 8):
        raise Rejected("flags")  # bit 2 (x5c left out): not in the benchmark's credentials
    lifted = flags & 2
    n = sk[1]
    p = 2
    if n & 0x80:
        raise Rejected("too many disclosures")  # > 127, and the cap is 64
    if n > 64:
        raise Rejected("too many disclosures")
    if not flags & 1:
        raise Rejected("holder binding missing")  # the counter profile requires a KB-JWT
    selector = b""
    if flags & 8:
        selector = bytes(sk[p : p + 2])
        p += 2
    segs = []
    bp = 0
    for _ in range(4 + n):
        ln = sk[p]
        p += 1
        if ln & 0x80:
            if sk[p] & 0x80:
                raise Rejected("varint")
            ln = (ln & 0x7F) | (sk[p] << 7)
            p += 1
        body = sk[p : p + ln]
        if len(body) != ln:
            raise Rejected("truncated")
        p += ln
        if lifted and 1 in body:
            out = []
            i = 0
            while True:
                j = body.find(1, i)
                if j < 0:
                    out.append(body[i:])
                    break
                out.append(body[i:j])
                bl = body[j + 1]
                i = j + 2
                if bl & 0x80:
                    if body[i] & 0x80:
                        raise Rejected("varint")
                    bl = (bl & 0x7F) | (body[i] << 7)
                    i += 1
                raw = blobs[bp : bp + bl]
                if len(raw) != bl:
                    raise Rejected("truncated")
                bp += bl
                out.append(b'"' + _b64e(raw) + b'"')
            body = b"".join(out)
        segs.append(body)
    sigs = []
    for _ in range(2):
        ln = sk[p]
        p += 1
        if ln & 0x80:
            raise Rejected("signature length")
        sigs.append(blobs[bp : bp + ln])
        bp += ln
    if p != len(sk) or bp != len(blobs):
        raise Rejected("trailing bytes")
    ih, ip, kh, kp = segs[0], segs[1], segs[2], segs[3]
    if flags & 8:  # put back the vct and vct#integrity the wallet left out
        members = trust["types"].get(selector)
        at = ip.find(b'"vct":"')
        if members is None or at < 0 or ip[at + 7 : at + 8] != b'"':
            raise Rejected("type not in the trust list")
        ip = ip[:at] + members + ip[at + 8 :]
    isig, ksig = sigs
    disclosures = [_b64e(d) for d in segs[4:]]
    issuer_input = _b64e(ih) + b"." + _b64e(ip)
    sd_jwt = b"~".join([issuer_input + b"." + _b64e(isig), *disclosures]) + b"~"

    if now >= trust["tl_exp"] + trust["tl_grace"]:
        raise Rejected("trust list expired")

    # ---- issuer JWT ---------------------------------------------------------------------
    header = json.loads(ih.decode("utf-8"), object_pairs_hook=_pairs, parse_constant=_const)
    if type(header) is not dict or "crit" in header:
        raise Rejected("issuer header")
    if header.get("typ") != "dc+sd-jwt":
        raise Rejected("bad typ")
    if header.get("alg") != "ES256":
        raise Rejected("alg")
    body = json.loads(ip.decode("utf-8"), object_pairs_hook=_pairs, parse_constant=_const)
    if type(body) is not dict:
        raise Rejected("issuer payload")
    iss = body.get("iss")
    entry = trust["keys"].get((iss, header.get("kid")))
    if entry is None:
        raise Rejected("unknown issuer or key")
    key, not_before, not_after = entry
    if len(isig) != 64:
        raise Rejected("signature length")
    try:
        key.verify(
            encode_dss_signature(
                int.from_bytes(isig[:32], "big"), int.from_bytes(isig[32:], "big")
            ),
            issuer_input,
            _ECDSA,
        )
    except InvalidSignature:
        raise Rejected("bad issuer signature") from None
    if body.get("vct") not in trust["vcts"]:
        raise Rejected("vct")
    iat, exp, nbf = body.get("iat"), body.get("exp"), body.get("nbf")
    if type(iat) is not int or type(exp) is not int or (nbf is not None and type(nbf) is not int):
        raise Rejected("iat/exp/nbf")
    if (not_before is not None and iat < not_before) or (not_after is not None and iat > not_after):
        raise Rejected("key not valid at iat")
    tier = body.get("tier")
    if tier not in ("basic", "premium"):
        raise Rejected("tier")
    skew = trust["skew"]
    if (nbf if nbf is not None else iat) > now + skew or iat > now + skew:
        raise Rejected("not yet valid")
    if now >= exp + skew:
        raise Rejected("expired")

    # ---- disclosures (top-level _sd; a counter presentation carries none) ----------------
    if body.get("_sd_alg", "sha-256") != "sha-256":
        raise Rejected("_sd_alg")
    sd = body.get("_sd", [])
    if type(sd) is not list or not all(type(d) is str for d in sd) or len(set(sd)) != len(sd):
        raise Rejected("_sd")
    if disclosures:
        digests = set(sd)
        seen = set()
        for d64, raw in zip(disclosures, segs[4:], strict=True):
            dg = _b64e(hashlib.sha256(d64).digest()).decode("ascii")
            if dg not in digests or dg in seen:
                raise Rejected("disclosure not referenced or repeated")
            seen.add(dg)
            c = json.loads(raw.decode("utf-8"), object_pairs_hook=_pairs, parse_constant=_const)
            if (
                type(c) is not list
                or len(c) != 3
                or type(c[0]) is not str
                or type(c[1]) is not str
                or c[1] in body
                or c[1] in _RESERVED
                or c[1] in ("_sd", "...")
            ):
                raise Rejected("bad disclosure")

    # ---- holder key and KB-JWT ---------------------------------------------------------
    cnf = body.get("cnf")
    jwk = cnf.get("jwk") if type(cnf) is dict else None
    if (
        type(jwk) is not dict
        or jwk.get("kty") != "EC"
        or jwk.get("crv") != "P-256"
        or "d" in jwk
        or type(jwk.get("x")) is not str
        or type(jwk.get("y")) is not str
    ):
        raise Rejected("cnf")
    x64, y64 = jwk["x"], jwk["y"]
    x = binascii.a2b_base64(x64.translate(_FROM_URL_STR) + "=" * (-len(x64) % 4))
    y = binascii.a2b_base64(y64.translate(_FROM_URL_STR) + "=" * (-len(y64) % 4))
    if len(x) != 32 or len(y) != 32:
        raise Rejected("cnf")
    holder = ec.EllipticCurvePublicKey.from_encoded_point(_P256, b"\x04" + x + y)
    kh_obj = json.loads(kh.decode("utf-8"), object_pairs_hook=_pairs, parse_constant=_const)
    if type(kh_obj) is not dict or "crit" in kh_obj or kh_obj.get("typ") != "kb+jwt":
        raise Rejected("KB header")
    if kh_obj.get("alg") != "ES256":
        raise Rejected("KB alg")
    if len(ksig) != 64:
        raise Rejected("KB signature length")
    try:
        holder.verify(
            encode_dss_signature(
                int.from_bytes(ksig[:32], "big"), int.from_bytes(ksig[32:], "big")
            ),
            _b64e(kh) + b"." + _b64e(kp),
            _ECDSA,
        )
    except InvalidSignature:
        raise Rejected("bad KB signature") from None
    kb = json.loads(kp.decode("utf-8"), object_pairs_hook=_pairs, parse_constant=_const)
    if type(kb) is not dict:
        raise Rejected("KB payload")
    if kb.get("sd_hash") != _b64e(hashlib.sha256(sd_jwt).digest()).decode("ascii"):
        raise Rejected("sd_hash")
    if kb.get("aud") != trust["aud"]:
        raise Rejected("aud")
    nonce = kb.get("nonce")
    if type(nonce) is not str or not 16 <= len(nonce) <= 128:
        raise Rejected("nonce")
    kb_iat = kb.get("iat")
    max_age = trust["max_age"]
    if type(kb_iat) is not int or kb_iat > now + skew or now - kb_iat > max_age + skew:
        raise Rejected("stale presentation")

    # ---- status --------------------------------------------------------------------------
    st = body.get("status")
    ref = st.get("status_list") if type(st) is dict else None
    if type(ref) is not dict:
        raise Rejected("status reference")
    idx, uri = ref.get("idx"), ref.get("uri")
    if type(idx) is not int or idx < 0 or type(uri) is not str:
        raise Rejected("status reference")
    lst = trust["status"].get(uri)
    if lst is None or lst[0] != iss:
        raise Rejected("status list unavailable")
    _, bits, bits_data, sl_exp = lst
    bit = idx * bits
    if bit >> 3 >= len(bits_data):
        raise Rejected("status index")
    if (bits_data[bit >> 3] >> (bit & 7)) & ((1 << bits) - 1):
        raise Rejected("revoked or suspended")
    if sl_exp is not None and now >= sl_exp + trust["sl_grace"]:
        raise Rejected("status list expired")
    if tier not in trust["tiers"]:
        raise Rejected("tier not accepted")

    # ---- replay --------------------------------------------------------------------------
    seen_until = nonces.get(nonce)
    if seen_until is not None and seen_until >= now:
        raise Rejected("replayed")
    nonces[nonce] = kb_iat + max_age + skew
    return iss, tier


_FROM_URL_STR = str.maketrans("-_", "+/")

"""The compact QR transport: an SD-JWT presentation small enough for a phone screen.

    DR2: + Base45( varint(len(Z)) || Z || blobs )
    Z = raw DEFLATE( skeleton ), preset dictionary of version 2

(``DR1:`` is the same frame with version 1's dictionary, made for the URN
``vct``; it is still decoded.  Version 2's dictionary expects the ``vct`` left
out, as below.)

A presentation is mostly random bytes (signatures, digests, key coordinates,
salts, nonce) wrapped in JSON that every credential shares.  DEFLATE's
Huffman codes do badly on a mix of the two, so they are separated: the
skeleton holds the JSON with every quoted base64url string of 20+ characters
replaced by a marker, and compresses to a few dozen bytes against the
dictionary; the random bytes follow as they are.

Skeleton::

    flags           1 byte   bit 0: a KB-JWT follows; bit 1: strings were lifted;
                             bit 2: the issuer header's x5c was left out;
                             bit 3: the issuer payload's vct and vct#integrity
                             values were left out (``"vct":""`` stays)
    n               varint   number of disclosures
    [selector]      2 bytes  (bit 3) the first two bytes of that integrity digest
    JSON segments   varint length + bytes: issuer header, issuer payload,
                    [KB header, KB payload,] disclosures 1..n; a lifted string
                    is 0x01 + varint(byte length), its bytes taken from blobs
    signatures      varint length of the issuer signature, [of the KB signature]

``blobs`` holds the lifted strings' bytes in the order their markers appear,
then the signatures.  Decoding gives back the exact compact string (base64url
here is canonical, so bytes have one spelling), which matters because the
KB-JWT's ``sd_hash`` is over that string.  Every decoded size is capped before
it is allocated.  Base45 keeps to the QR alphanumeric alphabet, so the code is
dense and keyboard-wedge scanners type it unchanged.

Two parts of a credential are long, incompressible and already known to every
verifier: the issuer's certificate chain (``x5c``, about 500 bytes a
certificate) is in the trust list next to the key it certifies, and the SRI
digest of the type metadata (``vct#integrity``) is in the trust list's
``types``, under the ``vct`` (an https URL: with the digest, ~60 characters of
QR code for what the verifier knows already).  The encoder leaves them out
when they sit where the issuer puts them (``x5c`` the header's last member,
``vct#integrity`` right after ``vct``), and ``decode`` puts them back, byte
for byte, from what a ``Restorer`` (the verifier's bundle) knows; two bytes of
the digest pick the (vct, integrity) pair, so several types or several
versions of the metadata can be listed at once.  Without a restorer, or when it does
not know them, decoding fails: a signature over a guessed header proves nothing.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol

from dualres.verifier.wire import _json
from dualres.verifier.wire.b64 import b64d, b64e
from dualres.verifier.wire.base45 import decode as b45decode
from dualres.verifier.wire.base45 import encode as b45encode
from dualres.verifier.wire.errors import (
    MalformedError,
    TooLargeError,
    UnknownKeyError,
    UnknownTypeError,
    UnsupportedVersionError,
)

PREFIX = "DR2:"
MAX_TEXT = 4296  # what a version-40 QR code holds in alphanumeric mode
MAX_FRAME = 8192
MAX_DISCLOSURES = 64
_VERSION = re.compile(r"DR([0-9]{1,3}):")

# Version 1's preset dictionary: fixed forever for "DR1:".  It is the
# skeleton of our own credentials (lifted strings already replaced by their
# 0x01 markers); DEFLATE codes a near match more cheaply than a far one, so
# the likeliest strings come last.
DICTIONARY_V1 = (
    b'\x01\x10,"registered_since","20\x01\x10,"activities",["telework","'
    b'\x01\x10,"second_home",{"address":"'
    b'[\x01\x10,"primary_residence",{"lg_code":"1","name":"'
    b'[\x01\x10,"person",{"family_name":"","given_name":"",'
    b'"family_name_kana":"","given_name_kana":"","birthdate":"19'
    b'"tier":"basic",'
    b'{"alg":"ES256","typ":"dc+sd-jwt","kid":"'
    b'{"iss":"https://'
    b'/lg/","iat":17,"exp":18,"vct":"urn:dualres:dual-residence:1","tier":"premium",'
    b'"status":{"status_list":{"idx":'
    b',"uri":"https:///status/1"}},'
    b'"cnf":{"jwk":{"kty":"EC","crv":"P-256","x":\x01 ,"y":\x01 }},'
    b'"_sd":[\x01 ,\x01 ,\x01 ,\x01 ,\x01 ,\x01 ],"_sd_alg":"sha-256"}'
    b'{"alg":"ES256","typ":"kb+jwt"}'
    b'{"iat":17,"aud":"urn:dualres:counter","nonce":\x01\x10,"sd_hash":\x01 }'
)
# Version 2: version 1 with, where the URN was, the always-visible prefecture
# code (issue 12; 15 characters of QR fewer than a dictionary without it) and
# the vct as the encoder leaves it when the trust list knows the type (empty:
# see Restorer).
DICTIONARY_V2 = DICTIONARY_V1.replace(
    b'"vct":"urn:dualres:dual-residence:1"', b'"prefecture":"000","vct":""'
)
DICTIONARIES = {"DR1:": DICTIONARY_V1, "DR2:": DICTIONARY_V2}


_HAS_KB, _LIFTED, _NO_X5C, _NO_INTEGRITY = 1, 2, 4, 8
_VCT = re.compile(rb'"vct":"([^"\\]*)"')
_INTEGRITY = re.compile(rb',"vct#integrity":"(sha256-[A-Za-z0-9+/]{43}=)"')


class Restorer(Protocol):
    """What the verifier knows that a transport string may leave out."""

    def x5c(self, header: Mapping[str, Any], payload: Mapping[str, Any]) -> Sequence[str] | None:
        """The certificate chain the issuer put in this header, or None."""

    def types(self) -> Mapping[str, Sequence[str]]:
        """Each known ``vct`` with every ``vct#integrity`` its credentials may carry."""


def _digest(integrity: bytes | str) -> bytes:
    text = integrity.decode("ascii") if isinstance(integrity, bytes) else integrity
    try:
        return base64.b64decode(text.removeprefix("sha256-"), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _x5c_suffix(header_json: bytes) -> bytes | None:
    """``,"x5c":[...]}`` if the header ends with exactly that, as the issuer writes it."""
    try:
        header = _json.loads_object(header_json)
    except MalformedError:
        return None
    chain = header.get("x5c")
    if not isinstance(chain, list) or not all(isinstance(c, str) for c in chain):
        return None
    suffix = b',"x5c":' + _json.dumps(chain) + b"}"
    return suffix if header_json.endswith(suffix) else None


def _strip_type(payload_json: bytes) -> tuple[bytes, bytes] | None:
    """The payload with ``"vct":""`` for ``"vct":"V","vct#integrity":"I"`` and the
    first two bytes of I's digest, when the first ``"vct":"`` is that pair."""
    vct = _VCT.search(payload_json)
    if vct is None or not vct.group(1):
        return None
    m = _INTEGRITY.match(payload_json, vct.end())
    if m is None:
        return None
    selector = _digest(m.group(1))[:2]
    if len(selector) != 2:
        return None
    return payload_json[: vct.start()] + b'"vct":""' + payload_json[m.end() :], selector


@lru_cache(maxsize=64)
def _type_insert(name: str, integrity: str) -> tuple[bytes, bytes]:
    """The selector of a (vct, vct#integrity) pair and the JSON the verifier puts
    back for it: the same few pairs on every scan, so made once."""
    insert = b'"vct":' + _json.dumps(name) + b',"vct#integrity":' + _json.dumps(integrity)
    return _digest(integrity)[:2], insert


def _known_type(restorer: Restorer, selector: bytes) -> bytes | None:
    """The JSON to put back for the first known (vct, integrity) pair ``selector`` picks."""
    for name, values in restorer.types().items():
        for integrity in values:
            tag, insert = _type_insert(name, integrity)
            if tag == selector:
                return insert
    return None


# What ``decode_parts`` hands ``jws.parse`` per segment: its bytes, or, for the issuer
# header and payload the restorer had to read, the objects already parsed from them.
Known = dict[str, bytes | dict[str, Any]]


def _restore(
    header_json: bytes, payload_json: bytes, flags: int, selector: bytes, restorer: Restorer | None
) -> tuple[bytes, bytes, tuple[dict[str, Any], dict[str, Any]] | None]:
    if restorer is None:
        raise UnknownKeyError("this transport string needs the verifier's trust data to decode")
    if flags & _NO_INTEGRITY:
        vct = _VCT.search(payload_json)
        if vct is None or vct.group(1):
            raise MalformedError("the type was left out but the vct is not empty")
        insert = _known_type(restorer, selector)
        if insert is None:
            raise UnknownTypeError(
                "the type and its metadata's integrity are not in the trust list"
            )
        payload_json = payload_json[: vct.start()] + insert + payload_json[vct.end() :]
    if flags & _NO_X5C:
        header = _json.loads_object(header_json)
        payload = _json.loads_object(payload_json)
        if "x5c" in header or not header_json.endswith(b"}"):
            raise MalformedError("x5c was left out but the header has one")
        chain = restorer.x5c(header, payload)
        if not chain:
            raise UnknownKeyError("the issuer's certificate chain is not in the trust list")
        header_json = header_json[:-1] + b',"x5c":' + _json.dumps(list(chain)) + b"}"
        # The restored header parses to this header with x5c last: the verifier need
        # not parse either document again (about a tenth of a scan's work besides).
        header["x5c"] = list(chain)
        return header_json, payload_json, (header, payload)
    return header_json, payload_json, None


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varint(self) -> int:
        # Two bytes reach 16,383: more than any frame may hold.
        data, pos = self.data, self.pos
        if pos + 1 > len(data):
            raise MalformedError("frame is truncated")
        first = data[pos]
        if first < 0x80:
            self.pos = pos + 1
            return first
        if pos + 2 > len(data):
            raise MalformedError("frame is truncated")
        second = data[pos + 1]
        if second >= 0x80:
            raise MalformedError("varint too long")
        self.pos = pos + 2
        return (first & 0x7F) | (second << 7)

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise MalformedError("frame is truncated")
        out = self.data[self.pos : end]
        self.pos = end
        return out


_LIFT = re.compile(rb'"([A-Za-z0-9_-]{20,})"')
_TO_URL = bytes.maketrans(b"+/", b"-_")  # standard base64 to base64url, as wire/b64.py
_MARK = 0x01


def _split_jws(text: str) -> tuple[bytes, bytes, bytes]:
    parts = text.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS")
    return b64d(parts[0]), b64d(parts[1]), b64d(parts[2])


def _lift(segment: bytes, blobs: bytearray) -> bytes:
    def repl(m: re.Match[bytes]) -> bytes:
        text = m.group(1).decode("ascii")
        try:
            raw = b64d(text)
        except MalformedError:
            return m.group(0)  # not canonical base64url: stays text
        blobs.extend(raw)
        return bytes([_MARK]) + _varint(len(raw))

    return _LIFT.sub(repl, segment)


# A wallet encodes the same issuer JWT again for every presentation (a new
# KB-JWT each time): its decoded parts and lifted segments are kept, so a new
# QR text pays only for the KB-JWT.  Pure functions of their input; bounded.
@lru_cache(maxsize=16)
def _issuer_parts(issuer_jwt: str) -> tuple[bytes, bytes, bytes, int, bytes]:
    """The issuer JWS's header, payload and signature, with what the verifier's
    bundle knows left out, the flags saying so, and the type selector."""
    ih, ip, isig = _split_jws(issuer_jwt)
    omitted = 0
    selector = b""
    suffix = _x5c_suffix(ih)
    if suffix is not None:
        ih = ih[: -len(suffix)] + b"}"
        omitted |= _NO_X5C
    stripped = _strip_type(ip)
    if stripped is not None:
        ip, selector = stripped
        omitted |= _NO_INTEGRITY
    return ih, ip, isig, omitted, selector


@lru_cache(maxsize=32)
def _lift_issuer(segment: bytes) -> tuple[bytes, bytes]:
    blobs = bytearray()
    body = _lift(segment, blobs)
    return body, bytes(blobs)


def encode(compact: str) -> str:
    """Encode a compact SD-JWT (with or without KB-JWT) for a QR code.

    Raises ``ValueError`` for input that would not come back unchanged.  The
    issuer's ``x5c`` and ``vct#integrity`` are left out (module docstring).
    """
    parts = compact.split("~")
    if len(parts) < 2:
        raise ValueError("not a compact SD-JWT")
    issuer_jwt, *disclosures, kb = parts
    if len(disclosures) > MAX_DISCLOSURES:
        raise ValueError("too many disclosures")
    ih, ip, isig, omitted, selector = _issuer_parts(issuer_jwt)
    json_segments = [ih, ip]
    sigs = [isig]
    if kb:
        kh, kp, ksig = _split_jws(kb)
        json_segments += [kh, kp]
        sigs.append(ksig)
    json_segments += [b64d(d) for d in disclosures]
    # A raw 0x01 cannot occur in JSON text, but these bytes need not be JSON.
    lift = not any(bytes([_MARK]) in seg for seg in json_segments)
    blobs = bytearray()
    skeleton = bytearray([(_HAS_KB if kb else 0) | (_LIFTED if lift else 0) | omitted])
    skeleton += _varint(len(disclosures)) + selector
    for i, seg in enumerate(json_segments):
        if not lift:
            body = seg
        elif i < 2:
            body, lifted = _lift_issuer(seg)
            blobs += lifted
        else:
            body = _lift(seg, blobs)
        skeleton += _varint(len(body)) + body
    for sig in sigs:
        skeleton += _varint(len(sig))
        blobs += sig
    if len(skeleton) > MAX_FRAME:
        raise ValueError("presentation too large for the transport")
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, DICTIONARY_V2)
    packed = deflater.compress(bytes(skeleton)) + deflater.flush()
    text = PREFIX + b45encode(_varint(len(packed)) + packed + blobs)
    if len(text) > MAX_TEXT:
        raise ValueError("presentation too large for a QR code")
    return text


def is_transport(text: str) -> bool:
    return _VERSION.match(text) is not None


def decode(text: str, restorer: Restorer | None = None) -> str:
    """Give back the exact compact SD-JWT a transport string carries.

    ``restorer`` supplies what the encoder left out (the verifier passes its
    bundle); a string that left nothing out decodes without one.
    """
    return decode_parts(text, restorer)[0]


def decode_parts(text: str, restorer: Restorer | None = None) -> tuple[str, Known]:
    """``decode``, plus the bytes of every base64url segment of the result, by its text.

    The transport holds those bytes already: a verifier given them need not
    decode the base64url text it was just handed back (each segment is the
    canonical spelling of its bytes, so decoding it would give exactly these).
    Where the x5c left out was put back, the issuer header and payload come as the
    objects the restorer parsed them into, checked as ``jws.parse`` checks them.
    """
    m = _VERSION.match(text)
    if m is None:
        raise MalformedError("not a dualres transport string")
    dictionary = DICTIONARIES.get(m.group(0))
    if dictionary is None:
        raise UnsupportedVersionError(f"transport version {m.group(1)} is not supported")
    if len(text) > MAX_TEXT:
        raise TooLargeError("transport string too long")
    data = _Reader(b45decode(text[len(m.group(0)) :]))
    packed = data.take(data.varint())
    blobs = _Reader(data.data[data.pos :])
    inflater = zlib.decompressobj(-15, zdict=dictionary)
    try:
        skeleton = inflater.decompress(packed, MAX_FRAME)
    except zlib.error as exc:
        raise MalformedError("transport payload is not DEFLATE data") from exc
    if inflater.unconsumed_tail:
        raise TooLargeError("transport payload inflates beyond the limit")
    if not inflater.eof or inflater.unused_data:
        raise MalformedError("transport payload is truncated or has trailing data")
    r = _Reader(skeleton)
    flags = r.take(1)[0]
    if flags & ~(_HAS_KB | _LIFTED | _NO_X5C | _NO_INTEGRITY):
        raise MalformedError("unknown transport flags")
    has_kb, lifted = bool(flags & _HAS_KB), bool(flags & _LIFTED)
    n = r.varint()
    if n > MAX_DISCLOSURES:
        raise TooLargeError("too many disclosures")
    selector = r.take(2) if flags & _NO_INTEGRITY else b""
    raw: list[bytes] = []
    # The segments' frames read on locals, as _unlift does: one method call per
    # length and per slice was a tenth of this function on the verifier's hot path.
    pos, size = r.pos, len(skeleton)
    for _ in range((4 if has_kb else 2) + n):
        if pos >= size:
            raise MalformedError("frame is truncated")
        length = skeleton[pos]
        pos += 1
        if length >= 0x80:
            if pos >= size:
                raise MalformedError("frame is truncated")
            second = skeleton[pos]
            if second >= 0x80:
                raise MalformedError("varint too long")
            length = (length & 0x7F) | (second << 7)
            pos += 1
        end = pos + length
        if end > size:
            raise MalformedError("frame is truncated")
        body = skeleton[pos:end]
        pos = end
        raw.append(_unlift(body, blobs) if lifted else body)
    r.pos = pos
    known: Known = {}
    sigs = []
    for _ in range(2 if has_kb else 1):
        sig = blobs.take(r.varint())
        seg = b64e(sig)
        known[seg] = sig
        sigs.append(seg)
    if r.pos != len(skeleton) or blobs.pos != len(blobs.data):
        raise MalformedError("trailing bytes after the frame")
    parsed = None
    if flags & (_NO_X5C | _NO_INTEGRITY):
        raw[0], raw[1], parsed = _restore(raw[0], raw[1], flags, selector, restorer)
    segs = []
    for seg_bytes in raw:
        seg = b64e(seg_bytes)
        known[seg] = seg_bytes
        segs.append(seg)
    if parsed is not None:
        known[segs[0]], known[segs[1]] = parsed
    issuer = f"{segs[0]}.{segs[1]}.{sigs[0]}"
    if has_kb:
        kb = f"{segs[2]}.{segs[3]}.{sigs[1]}"
        disclosures = segs[4:]
    else:
        kb = ""
        disclosures = segs[2:]
    return "~".join([issuer, *disclosures]) + "~" + kb, known


def _unlift(body: bytes, blobs: _Reader) -> bytes:
    # Straight-line on locals (no _Reader calls per mark): a counter
    # presentation lifts 17 strings, and this is the verifier's hot path.
    if _MARK not in body:
        return body
    out: list[bytes] = []
    b2a, to_url = binascii.b2a_base64, _TO_URL
    data, bpos = blobs.data, blobs.pos
    end = len(body)
    i = 0
    while True:
        j = body.find(_MARK, i)
        if j < 0:
            out.append(body[i:])
            break
        out.append(body[i:j])
        if j + 1 >= end:
            raise MalformedError("frame is truncated")
        n = body[j + 1]
        i = j + 2
        if n >= 0x80:
            if i >= end:
                raise MalformedError("frame is truncated")
            second = body[i]
            if second >= 0x80:
                raise MalformedError("varint too long")
            n = (n & 0x7F) | (second << 7)
            i += 1
        stop = bpos + n
        if stop > len(data):
            raise MalformedError("frame is truncated")
        # b64e_bytes inlined: a counter presentation lifts 17 strings.
        out.append(b'"' + b2a(data[bpos:stop], newline=False).rstrip(b"=").translate(to_url) + b'"')
        bpos = stop
        if i >= end:
            break
    blobs.pos = bpos
    return b"".join(out)

"""The compact QR transport: an SD-JWT presentation small enough for a phone screen.

    DR1: + Base45( varint(len(Z)) || Z || blobs )
    Z = raw DEFLATE( skeleton ), preset dictionary of version 1

A presentation is mostly random bytes (signatures, digests, key coordinates,
salts, nonce) wrapped in JSON that every credential shares.  DEFLATE's
Huffman codes do badly on a mix of the two, so they are separated: the
skeleton holds the JSON with every quoted base64url string of 20+ characters
replaced by a marker, and compresses to a few dozen bytes against the
dictionary; the random bytes follow as they are.

Skeleton::

    flags           1 byte   bit 0: a KB-JWT follows; bit 1: strings were lifted
    n               varint   number of disclosures
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
"""

from __future__ import annotations

import re
import zlib
from functools import lru_cache

from dualres.verifier.wire.b64 import b64d, b64e, b64e_bytes
from dualres.verifier.wire.base45 import decode as b45decode
from dualres.verifier.wire.base45 import encode as b45encode
from dualres.verifier.wire.errors import MalformedError, TooLargeError, UnsupportedVersionError

PREFIX = "DR1:"
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
_split_issuer_jws = lru_cache(maxsize=16)(_split_jws)


@lru_cache(maxsize=32)
def _lift_issuer(segment: bytes) -> tuple[bytes, bytes]:
    blobs = bytearray()
    body = _lift(segment, blobs)
    return body, bytes(blobs)


def encode(compact: str) -> str:
    """Encode a compact SD-JWT (with or without KB-JWT) for a QR code.

    Raises ``ValueError`` for input that would not come back unchanged.
    """
    parts = compact.split("~")
    if len(parts) < 2:
        raise ValueError("not a compact SD-JWT")
    issuer_jwt, *disclosures, kb = parts
    if len(disclosures) > MAX_DISCLOSURES:
        raise ValueError("too many disclosures")
    ih, ip, isig = _split_issuer_jws(issuer_jwt)
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
    skeleton = bytearray([(1 if kb else 0) | (2 if lift else 0)])
    skeleton += _varint(len(disclosures))
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
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, DICTIONARY_V1)
    packed = deflater.compress(bytes(skeleton)) + deflater.flush()
    text = PREFIX + b45encode(_varint(len(packed)) + packed + blobs)
    if len(text) > MAX_TEXT:
        raise ValueError("presentation too large for a QR code")
    return text


def is_transport(text: str) -> bool:
    return _VERSION.match(text) is not None


def decode(text: str) -> str:
    """Give back the exact compact SD-JWT a transport string carries."""
    return decode_parts(text)[0]


def decode_parts(text: str) -> tuple[str, dict[str, bytes]]:
    """``decode``, plus the bytes of every base64url segment of the result, by its text.

    The transport holds those bytes already: a verifier given them need not
    decode the base64url text it was just handed back (each segment is the
    canonical spelling of its bytes, so decoding it would give exactly these).
    """
    m = _VERSION.match(text)
    if m is None:
        raise MalformedError("not a dualres transport string")
    if m.group(0) != PREFIX:
        raise UnsupportedVersionError(f"transport version {m.group(1)} is not supported")
    if len(text) > MAX_TEXT:
        raise TooLargeError("transport string too long")
    data = _Reader(b45decode(text[len(PREFIX) :]))
    packed = data.take(data.varint())
    blobs = _Reader(data.data[data.pos :])
    inflater = zlib.decompressobj(-15, zdict=DICTIONARY_V1)
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
    if flags & ~3:
        raise MalformedError("unknown transport flags")
    has_kb, lifted = bool(flags & 1), bool(flags & 2)
    n = r.varint()
    if n > MAX_DISCLOSURES:
        raise TooLargeError("too many disclosures")
    segs = []
    known: dict[str, bytes] = {}
    for _ in range((4 if has_kb else 2) + n):
        body = r.take(r.varint())
        raw = _unlift(body, blobs) if lifted else body
        seg = b64e(raw)
        known[seg] = raw
        segs.append(seg)
    sigs = []
    for _ in range(2 if has_kb else 1):
        raw = blobs.take(r.varint())
        seg = b64e(raw)
        known[seg] = raw
        sigs.append(seg)
    if r.pos != len(skeleton) or blobs.pos != len(blobs.data):
        raise MalformedError("trailing bytes after the frame")
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
        out.append(b'"' + b64e_bytes(data[bpos:stop]) + b'"')
        bpos = stop
        if i >= end:
            break
    blobs.pos = bpos
    return b"".join(out)

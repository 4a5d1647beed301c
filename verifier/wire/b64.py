"""Strict base64url without padding (RFC 7515 §2)."""

from __future__ import annotations

import binascii

from dualres.verifier.wire.errors import MalformedError

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_VALUE = {c: i for i, c in enumerate(_ALPHABET)}
# To the standard alphabet for binascii; the standard-only characters '+', '/'
# and padding become '!', which strict mode refuses.
_TO_STD = bytes.maketrans(b"-_+/=", b"+/!!!")
_TO_URL = bytes.maketrans(b"+/", b"-_")
_PAD = (b"", None, b"==", b"=")
# Bits of the last character that carry no data: must be zero to be canonical.
_SPARE = (0, 0, 0x0F, 0x03)


def b64e_bytes(data: bytes) -> bytes:
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_TO_URL)


def b64e(data: bytes) -> str:
    return b64e_bytes(data).decode("ascii")


def b64d(text: str) -> bytes:
    """Decode, refusing padding, foreign characters and non-canonical trailing bits.

    Refusing the non-canonical forms keeps every encoded string the only
    spelling of its bytes, which the compact QR transport relies on to give
    back the exact string a KB-JWT's ``sd_hash`` covers.
    """
    rest = len(text) % 4
    pad = _PAD[rest]
    if pad is None:
        raise MalformedError("invalid base64url length")
    if rest and _VALUE.get(text[-1], 0) & _SPARE[rest]:
        raise MalformedError("non-canonical base64url")
    try:
        # bytes.translate: str.translate costs ten times as much here.
        std = text.encode("ascii").translate(_TO_STD)
        return binascii.a2b_base64(std + pad, strict_mode=True)
    except (binascii.Error, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise MalformedError("invalid base64url") from exc

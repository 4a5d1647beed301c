"""Strict base64url without padding (RFC 7515 §2)."""

from __future__ import annotations

import base64
import binascii
import re

from .errors import MalformedError

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    """Decode, refusing padding, foreign characters and non-canonical trailing bits.

    Refusing the non-canonical forms keeps every encoded string the only
    spelling of its bytes, which the compact QR transport relies on to give
    back the exact string a KB-JWT's ``sd_hash`` covers.
    """
    if len(text) % 4 == 1 or not _B64URL.fullmatch(text):
        raise MalformedError("invalid base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedError("invalid base64url") from exc
    if b64e(raw) != text:
        raise MalformedError("non-canonical base64url")
    return raw

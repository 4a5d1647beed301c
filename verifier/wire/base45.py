"""Base45 (RFC 9285): bytes as text in the QR alphanumeric alphabet."""

from __future__ import annotations

from .errors import MalformedError

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
# Two characters at a time: a table of 2,025 entries halves the Python-level work.
_PAIR = {a + b: _VALUE[a] + 45 * _VALUE[b] for a in ALPHABET for b in ALPHABET}


def encode(data: bytes) -> str:
    out = []
    alpha = ALPHABET
    for i in range(0, len(data) - 1, 2):
        n = (data[i] << 8) | data[i + 1]
        n, c = divmod(n, 45)
        e, d = divmod(n, 45)
        out.append(alpha[c] + alpha[d] + alpha[e])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out.append(alpha[c] + alpha[d])
    return "".join(out)


def decode(text: str) -> bytes:
    if len(text) % 3 == 1:
        raise MalformedError("base45 length is invalid")
    out = bytearray()
    pair, value = _PAIR, _VALUE
    full = len(text) - len(text) % 3
    try:
        for i in range(0, full, 3):
            n = pair[text[i : i + 2]] + 2025 * value[text[i + 2]]
            if n > 0xFFFF:
                raise MalformedError("base45 triple out of range")
            out += n.to_bytes(2, "big")
        if full != len(text):
            n = pair[text[full:]]
            if n > 0xFF:
                raise MalformedError("base45 pair out of range")
            out.append(n)
    except KeyError as exc:
        raise MalformedError("character outside the base45 alphabet") from exc
    return bytes(out)

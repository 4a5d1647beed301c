"""Base45 (RFC 9285): bytes as text in the QR alphanumeric alphabet."""

from __future__ import annotations

import sys
from array import array

from dualres.verifier.wire.errors import MalformedError

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_DIGITS = bytes(ALPHABET.index(chr(i)) if chr(i) in ALPHABET else 0xFF for i in range(256))
# n % 2025 -> its two low digits: a triple is then one lookup and one index.
_LOW_PAIRS = [ALPHABET[r % 45] + ALPHABET[r // 45] for r in range(2025)]


def encode(data: bytes) -> str:
    # The 16-bit words come out of array in C, not two indexings and a shift
    # per pair in Python: a wallet makes a new QR text every few seconds.
    even = len(data) - len(data) % 2
    words = array("H", bytes(data[:even]))
    if sys.byteorder == "little":
        words.byteswap()
    low, alpha = _LOW_PAIRS, ALPHABET
    out = [low[n % 2025] + alpha[n // 2025] for n in words]
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out.append(alpha[c] + alpha[d])
    return "".join(out)


def decode(text: str) -> bytes:
    if len(text) % 3 == 1:
        raise MalformedError("base45 length is invalid")
    # Characters to digit values in C (bytes.translate); 0xFF marks a foreigner.
    try:
        values = text.encode("ascii").translate(_DIGITS)
    except UnicodeEncodeError as exc:
        raise MalformedError("character outside the base45 alphabet") from exc
    if 0xFF in values:
        raise MalformedError("character outside the base45 alphabet")
    full = len(values) - len(values) % 3
    # No per-triple Python loop: spread each triple's digits into 3-byte lanes
    # of three big integers and sum them with weights 1, 45, 2025 (a lane
    # cannot carry: 44 * 2071 < 2**24), then read the lanes back.
    lanes = []
    for k in range(3):
        lane = bytearray(full)
        lane[2::3] = values[k:full:3]
        lanes.append(int.from_bytes(lane, "big"))
    words = (lanes[0] + 45 * lanes[1] + 2025 * lanes[2]).to_bytes(full, "big")
    if words[0::3].count(0) != full // 3:
        raise MalformedError("base45 triple out of range")
    data = bytearray(full // 3 * 2)
    data[0::2] = words[1::3]
    data[1::2] = words[2::3]
    out = bytes(data)
    if full != len(values):
        n = values[full] + 45 * values[full + 1]
        if n > 0xFF:
            raise MalformedError("base45 pair out of range")
        out += bytes([n])
    return out

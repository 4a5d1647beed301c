"""Base45 (RFC 9285): bytes as text in the QR alphanumeric alphabet."""

from __future__ import annotations

from dualres.verifier.wire.errors import MalformedError

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_DIGITS = bytes(ALPHABET.index(chr(i)) if chr(i) in ALPHABET else 0xFF for i in range(256))
_CHARS = ALPHABET.encode("ascii").ljust(256, b"\0")  # digit value -> its character
_MASKS: dict[int, int] = {}


def _mask(k: int) -> int:
    """The low byte of each of ``k`` 40-bit lanes (kept for QR-sized inputs)."""
    mask = int.from_bytes(b"\0\0\0\0\xff" * k, "big")
    if k <= 4096:
        _MASKS[k] = mask
    return mask


_LOW_BYTES: dict[int, int] = {}


def _low_bytes(size: int) -> int:
    """The low byte of each 3-byte lane of ``size`` bytes (kept for QR-sized inputs)."""
    mask = int.from_bytes(b"\0\0\xff" * (size // 3), "big")
    if size <= 12288:
        _LOW_BYTES[size] = mask
    return mask


def encode(data: bytes) -> str:
    # No per-pair Python loop (a wallet makes a new QR text every few seconds): each
    # 16-bit word n gets a 40-bit lane of one big integer, and n // 2025 and n // 45
    # are a multiplication by a rounded-up reciprocal and a shift, done for every
    # lane at once (exact for all n < 65536; a product stays below 2**33, so a lane
    # never carries into the next, and the mask drops what the shift brought down
    # from the lane above).  The three digits are then the low byte of each lane.
    k = len(data) // 2
    out = bytearray(3 * k)
    if k:
        lanes = bytearray(5 * k)
        lanes[3::5] = data[0 : 2 * k : 2]
        lanes[4::5] = data[1 : 2 * k : 2]
        n = int.from_bytes(lanes, "big")
        mask = _MASKS.get(k) or _mask(k)
        e = ((n * 66281) >> 27) & mask  # n // 2025
        r = n - 2025 * e  # n % 2025, lane by lane (no borrow: every lane is >= 0)
        d = ((r * 11651) >> 19) & mask  # r // 45
        c = r - 45 * d
        size = 5 * k
        out[0::3] = c.to_bytes(size, "big")[4::5]
        out[1::3] = d.to_bytes(size, "big")[4::5]
        out[2::3] = e.to_bytes(size, "big")[4::5]
    if len(data) % 2:
        out += bytes(divmod(data[-1], 45)[::-1])
    return out.translate(_CHARS).decode("ascii")


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
    # No per-triple Python loop: the digit values, read as one big integer, hold
    # each triple (d0, d1, d2) in a 3-byte lane; d0 + 45 d1 + 2025 d2 is then
    # computed for every lane at once with shifts, masks and two multiplications
    # (at most 91,124: a lane cannot carry into the next), and read back.
    v = int.from_bytes(values[:full], "big")
    mask = _LOW_BYTES.get(full) or _low_bytes(full)
    words = (((v >> 16) & mask) + 45 * ((v >> 8) & mask) + 2025 * (v & mask)).to_bytes(full, "big")
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

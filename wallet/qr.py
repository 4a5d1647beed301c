"""QR images of presentations, for a phone screen or a printed test card.

The compact transport (``DR1:`` + Base45) uses only the 45 characters of the
QR alphanumeric set, which packs 11 bits per 2 characters instead of 16 in
byte mode: that is what keeps a counter presentation small enough to scan
from a phone.  ``qrcode``'s own optimiser splits long digit runs into numeric
segments, which saves a few bits but costs a segment header each time and
makes the size depend on the random bytes; one alphanumeric segment gives a
stable size and is what keyboard-wedge scanners are tested with.  Anything
else (e.g. a plain compact SD-JWT, which has lower-case letters) goes in byte
mode.
"""

from __future__ import annotations

from pathlib import Path

import qrcode
from qrcode import constants, util

_EC = {
    "L": constants.ERROR_CORRECT_L,
    "M": constants.ERROR_CORRECT_M,
    "Q": constants.ERROR_CORRECT_Q,
    "H": constants.ERROR_CORRECT_H,
}


def _segment(text: str) -> util.QRData:
    data = text.encode("utf-8")
    if util.RE_ALPHA_NUM.match(data):
        return util.QRData(data, mode=util.MODE_ALPHA_NUM)
    return util.QRData(data, mode=util.MODE_8BIT_BYTE)


def _build(text: str, error_correction: str, box_size: int = 8, border: int = 4) -> qrcode.QRCode:
    try:
        level = _EC[error_correction]
    except KeyError:
        raise ValueError(f"error_correction must be one of {sorted(_EC)}") from None
    qr = qrcode.QRCode(version=None, error_correction=level, box_size=box_size, border=border)
    qr.add_data(_segment(text))
    qr.make(fit=True)  # raises qrcode.exceptions.DataOverflowError beyond version 40
    return qr


def qr_version(text: str, error_correction: str = "M") -> int:
    """The smallest QR version (1-40) that holds ``text`` at this error correction."""
    return int(_build(text, error_correction).version)


def render_png(
    text: str, path: str | Path, *, error_correction: str = "M", box_size: int = 8, border: int = 4
) -> int:
    """Write ``text`` as a black-on-white QR PNG; return its version.

    ``border`` is the quiet zone in modules: 4 is what the standard asks for
    and what cheap scanners need.
    """
    qr = _build(text, error_correction, box_size, border)
    img = qr.make_image(fill_color="black", back_color="white")
    img.save(str(path))
    return int(qr.version)

"""Reading QR codes from images: screenshots, files from a phone, camera photos.

Needs the ``[scan]`` extra (zxing-cpp and Pillow); they are imported only when
an image is read, so a verifier fed by a keyboard-wedge scanner installs
nothing but ``cryptography``.

Decoding goes from cheap to thorough and stops at the first pass that finds
a code:

1. *fast*: QR codes only, upright, full resolution, dark on light: a few
   milliseconds for a screenshot or a rendered PNG, the common case;
2. *full*: zxing's own search (90°/180°/270° rotations, downscaled copies,
   inverted images) with its local-average and then its global-histogram
   binarizer, for photos with uneven or poor contrast;
3. *denoised*: the same after a light Gaussian blur, because sensor noise on
   a low-contrast photo breaks the binarizer's edges while a one-pixel blur
   leaves the modules (several pixels each) intact.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

INSTALL_HINT = "pip install 'dualres[scan]'"


class ScanError(Exception):
    """The image cannot be read, or the decoder is not installed."""


class ScanUnavailableError(ScanError):
    """zxing-cpp or Pillow is missing: the ``[scan]`` extra is not installed."""


def _load(source: str | os.PathLike[str] | Image) -> Image:
    from PIL import Image as PILImage
    from PIL import ImageOps

    if isinstance(source, str | os.PathLike):
        try:
            with PILImage.open(Path(source)) as opened:
                opened.load()
                img = opened.copy()
        except (OSError, ValueError, PILImage.DecompressionBombError) as exc:
            raise ScanError(f"cannot read image {os.fspath(source)}: {exc}") from exc
    elif isinstance(source, PILImage.Image):
        img = source
    else:
        raise TypeError("expected a path or a PIL image")
    # A phone stores "rotate this" in EXIF instead of rotating the pixels.
    img = ImageOps.exif_transpose(img) or img
    # Greyscale once here, instead of inside every decoder pass.
    return img if img.mode == "L" else img.convert("L")


def _unique(texts: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(texts))


def decode_qr_image(source: str | os.PathLike[str] | Image, *, fallback: bool = True) -> list[str]:
    """The texts of the QR codes in an image file or PIL image, [] if there are none.

    ``fallback=False`` runs only the fast pass (for measuring, or for a
    caller that retries with a new camera frame instead).  Raises
    ``ScanUnavailableError`` without the ``[scan]`` extra and ``ScanError``
    for a file that is not a readable image.
    """
    try:
        import zxingcpp
        from PIL import ImageFilter
    except ImportError as exc:
        raise ScanUnavailableError(
            f"reading QR images needs zxing-cpp and Pillow ({INSTALL_HINT}): {exc}"
        ) from exc
    img = _load(source)
    qr = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    found = zxingcpp.read_barcodes(
        img, formats=qr, try_rotate=False, try_downscale=False, try_invert=False
    )
    if found or not fallback:
        return _unique(b.text for b in found)
    binarizers = (zxingcpp.Binarizer.LocalAverage, zxingcpp.Binarizer.GlobalHistogram)
    for denoised in (False, True):
        # Blurred only when needed: most photos decode before this pass.
        src = img.filter(ImageFilter.GaussianBlur(1)) if denoised else img
        for binarizer in binarizers:
            found = zxingcpp.read_barcodes(src, formats=qr, binarizer=binarizer)
            if found:
                return _unique(b.text for b in found)
    return []

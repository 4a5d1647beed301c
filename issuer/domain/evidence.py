"""Evidence files of online applications: checked by content, kept outside the database.

A file is accepted only if its *bytes* are a PDF, JPEG or PNG (the name and the
declared type are ignored: a script renamed ``.pdf`` is refused), within a size
limit, and not a decompression bomb (a PDF whose streams inflate past a limit,
an image whose declared pixels are absurd).  The bytes go to an
:class:`EvidenceStore` under a random reference; the row keeps only the
reference, type, size, hash and a cleaned display name.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import struct
import unicodedata
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.identity import mynumber

MAX_BYTES: Final = 2 * 1024 * 1024  # a scan or a phone photo of a receipt fits
MAX_FILES: Final = 5
MAX_INFLATED: Final = 20 * 1024 * 1024  # all of one PDF's streams, inflated
MAX_PIXELS: Final = 40_000_000  # an 8000x5000 photo; more is a bomb, not evidence
MAX_NAME: Final = 100
_REF: Final = re.compile(r"^[0-9a-f]{32}$")
_STREAM: Final = re.compile(rb"/FlateDecode.*?stream\r?\n", re.DOTALL)


class EvidenceError(IssuerError):
    status = 422


def _err(code: str, en: str, ja: str, index: int) -> EvidenceError:
    return EvidenceError(code, en, description_ja=ja, field=f"evidence[{index}]")


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


@dataclass(frozen=True)
class Checked:
    name: str
    media_type: str
    data: bytes
    sha256: str


def clean_name(name: str) -> str:
    """A display name safe anywhere: no path, no control or bidi characters, bounded."""
    v = unicodedata.normalize("NFKC", name or "")
    v = v.replace("\\", "/").rsplit("/", 1)[-1]
    v = "".join(c for c in v if unicodedata.category(c)[0] not in "CZ" or c == " ")
    v = v.strip(" .")[:MAX_NAME]
    if mynumber.contains_number(v):
        # A scan named after the card ("マイナンバー123456789012.pdf") must not carry the
        # number into the database, the console or a log: keep only the extension.
        ext = v.rsplit(".", 1)[-1].lower() if "." in v else ""
        return f"evidence.{ext}" if ext in ("pdf", "jpg", "jpeg", "png") else "evidence"
    return v or "evidence"


def _png_pixels(data: bytes) -> int | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", data[16:24])
    return int(w) * int(h)


def _jpeg_pixels(data: bytes) -> int | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        # SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(w) * int(h)
        i += 2 + length
    return None


# By content, never by name: (magic, media type, its pixel count or None if malformed).
_IMAGES: Final[tuple[tuple[bytes, str, Callable[[bytes], int | None]], ...]] = (
    (b"\x89PNG\r\n\x1a\n", "image/png", _png_pixels),
    (b"\xff\xd8\xff", "image/jpeg", _jpeg_pixels),
)


def _pdf_inflates_within(data: bytes, limit: int) -> bool:
    """Inflate every Flate stream with a running budget; False once it is spent."""
    budget = limit
    for m in _STREAM.finditer(data):
        d = zlib.decompressobj()
        chunk = data[m.end() : m.end() + MAX_BYTES]
        try:
            out = d.decompress(chunk, budget + 1)
        except zlib.error:
            continue  # not ours to repair; staff see the file as it is
        budget -= len(out)
        if budget < 0 or d.unconsumed_tail:
            return False
    return True


def check(upload: Upload, index: int) -> Checked:
    data = upload.data
    if len(data) > MAX_BYTES:
        raise _err(
            "evidence_too_large",
            f"each file may be at most {MAX_BYTES // (1024 * 1024)} MB",
            f"ファイルは1つ{MAX_BYTES // (1024 * 1024)}MBまでです",
            index,
        )
    if not data:
        raise _err("evidence_empty", "the file is empty", "ファイルが空です", index)
    if data.startswith(b"%PDF-"):
        media = "application/pdf"
        if not _pdf_inflates_within(data, MAX_INFLATED):
            raise _err(
                "evidence_bomb",
                "the PDF expands to far more than its size",
                "PDFの内容が大きすぎます",
                index,
            )
    elif image := next((i for i in _IMAGES if data.startswith(i[0])), None):
        _, media, pixels = image
        px = pixels(data)
        if px is None or px > MAX_PIXELS:
            raise _err("evidence_bomb", "the image is malformed or too large in pixels",
                       "画像が壊れているか大きすぎます", index)  # fmt: skip
    else:
        raise _err(
            "evidence_type",
            "evidence must be a PDF, JPEG or PNG file (checked by content)",
            "証明書類はPDF・JPEG・PNGのファイルにしてください",
            index,
        )
    return Checked(clean_name(upload.name), media, data, hashlib.sha256(data).hexdigest())


def check_all(uploads: list[Upload], *, already: int = 0) -> list[Checked]:
    if already + len(uploads) > MAX_FILES:
        raise EvidenceError(
            "evidence_too_many",
            f"at most {MAX_FILES} files per application",
            description_ja=f"証明書類は1件の申請につき{MAX_FILES}ファイルまでです",
            field="evidence",
        )
    return [check(u, already + i) for i, u in enumerate(uploads)]


class EvidenceStore(Protocol):
    def put(self, data: bytes) -> str: ...
    def get(self, ref: str) -> bytes: ...
    def delete(self, ref: str) -> None: ...


class FilesystemStore:
    """The default store: one file per evidence under a directory only the issuer reads."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, ref: str) -> Path:
        if not _REF.match(ref):  # a reference is ours, never a path someone sent
            raise ValueError("not an evidence reference")
        return self.root / ref[:2] / ref

    def put(self, data: bytes) -> str:
        ref = secrets.token_hex(16)
        path = self._path(ref)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return ref

    def get(self, ref: str) -> bytes:
        return self._path(ref).read_bytes()

    def delete(self, ref: str) -> None:
        self._path(ref).unlink(missing_ok=True)

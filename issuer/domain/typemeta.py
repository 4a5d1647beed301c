"""SD-JWT VC type metadata of the dual-residence credential, as this deployment serves it.

The ``vct`` is an https URL under the deployment (``{base_url}/vct/dual-residence/1``)
and the type metadata is what a GET of that URL answers (draft-ietf-oauth-sd-jwt-vc
§6.3.1).  A credential carries ``vct#integrity``: the W3C SRI digest of those
exact bytes, so the document is serialised here once, the same way every time,
and the bytes served are the bytes hashed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from typing import Any

from dualres.schemas import load_json
from dualres.verifier.wire.credential import LEGACY_VCT, vct_for


def _serialised(vct: str) -> bytes:
    doc: dict[str, Any] = {**load_json("dual-residence.vct.json"), "vct": vct}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@cache
def document(base_url: str) -> bytes:
    """The type metadata served at ``vct_for(base_url)``."""
    return _serialised(vct_for(base_url))


@cache
def legacy_document() -> bytes:
    """The document of the URN ``vct``, where early drafts put it (/.well-known/vct/...)."""
    return _serialised(LEGACY_VCT)


def sri(data: bytes) -> str:
    """An SRI integrity string (``sha256-`` + standard base64), as SD-JWT VC §7 uses."""
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def integrity(base_url: str) -> str:
    return sri(document(base_url))

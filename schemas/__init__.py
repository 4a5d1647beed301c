"""Data the roles share: claim schemas, SD-JWT VC type metadata, verifier profiles
and the official list of municipality codes (全国地方公共団体コード)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def load_json(name: str) -> Any:
    """A JSON document shipped in this package, e.g. ``profiles/counter.json``."""
    return json.loads(resources.files(__name__).joinpath(name).read_text(encoding="utf-8"))

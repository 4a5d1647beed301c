"""Data the roles share: claim schemas, SD-JWT VC type metadata, verifier profiles
and the official list of municipality codes (全国地方公共団体コード)."""

from __future__ import annotations

import json
import os
from typing import Any


def load_json(name: str) -> Any:
    """A JSON document shipped in this package, e.g. ``profiles/counter.json``."""
    # Straight from the directory when installed as files (always, for a wheel):
    # importlib.resources pulls in zipfile and tempfile, a twentieth of the
    # start-up of a verifier process that checks one scan.
    path = os.path.join(os.path.dirname(__file__), *name.split("/"))
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    from importlib import resources

    return json.loads(resources.files(__name__).joinpath(name).read_text(encoding="utf-8"))

"""The verifier's trust bundle: the signed trust list and every status list it names.

A verifier scans offline, so everything it trusts is synced ahead into one
file.  Every signature is checked when the bundle is made *and* again when it
is loaded, against a pinned trust-anchor key; a bundle object therefore only
exists in a verified state.  Expiry is not checked here: how old is too old is
the profile's decision at scan time.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from dualres.verifier.replay import MemoryReplayStore
from dualres.verifier.wire import jws, statuslist, trustlist
from dualres.verifier.wire.errors import WireError

BUNDLE_FORMAT = "dualres-bundle/1"
MAX_BUNDLE_BYTES = 512 * 1024 * 1024


class BundleError(Exception):
    """The bundle cannot be made or loaded; ``code`` says why."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


@dataclass(frozen=True, slots=True)
class StatusEntry:
    issuer: str
    token: statuslist.StatusListToken


class Bundle:
    """Verified trust data.  Build with ``from_tokens`` or ``load``; never directly."""

    __slots__ = ("_raw", "anchor_pem", "created_at", "replay", "source", "status", "trust_list")

    def __init__(
        self,
        *,
        trust_list: trustlist.TrustList,
        status: Mapping[str, StatusEntry],
        raw: Mapping[str, Any],
    ) -> None:
        self.trust_list = trust_list
        self.status = dict(status)
        self._raw = dict(raw)
        self.created_at: int = int(raw["created_at"])
        self.source: str | None = raw.get("source")
        self.anchor_pem: str = str(raw["anchor"])
        # The default replay memory when a caller passes none: one per bundle.
        self.replay = MemoryReplayStore()

    @classmethod
    def from_tokens(
        cls,
        *,
        trust_list: str,
        status_lists: Mapping[str, str],
        anchors: Sequence[ec.EllipticCurvePublicKey],
        created_at: int,
        source: str | None = None,
    ) -> Bundle:
        if not anchors:
            raise BundleError("no_anchor", "a pinned trust-anchor key is required")
        try:
            tl = trustlist.parse(trust_list, anchors)
        except WireError as exc:
            raise BundleError(exc.code, f"trust list: {exc.description}") from exc
        listed = {uri: iss.iss for iss in tl.issuers.values() for uri in iss.status_lists}
        entries: dict[str, StatusEntry] = {}
        for uri, text in status_lists.items():
            owner = listed.get(uri)
            if owner is None:
                raise BundleError("unknown_status_list", f"{uri} is not in the trust list")
            try:
                token, parsed = statuslist.parse_token(text)
                key = tl.issuers[owner].keys.get(parsed.kid or "")
                if key is None:
                    raise BundleError("unknown_key", f"status list {uri}: unknown kid")
                x5c = token.header.get("x5c")
                if x5c is not None and (not key.x5c or x5c != list(key.x5c)):
                    raise BundleError("unknown_key", f"status list {uri}: x5c is not the key's")
                token.verify(key.key)
            except WireError as exc:
                raise BundleError(exc.code, f"status list {uri}: {exc.description}") from exc
            if parsed.sub != uri:
                raise BundleError("malformed", f"status list {uri} names {parsed.sub!r}")
            entries[uri] = StatusEntry(owner, parsed)
        raw = {
            "format": BUNDLE_FORMAT,
            "created_at": created_at,
            "source": source,
            "anchor": jws.public_pem(anchors[0]).decode("ascii"),
            "trust_list": trust_list,
            "status_lists": dict(status_lists),
        }
        return cls(trust_list=tl, status=entries, raw=raw)

    @classmethod
    def loads(
        cls, data: str | bytes, anchors: Sequence[ec.EllipticCurvePublicKey] | None = None
    ) -> Bundle:
        """Load and re-verify a bundle.

        Without ``anchors`` the anchor recorded by ``sync`` is used: that
        catches a damaged file, not a swapped one; pass the pinned anchor
        where the bundle travels through untrusted hands.
        """
        if len(data) > MAX_BUNDLE_BYTES:
            raise BundleError("too_large", "bundle file too large")
        try:
            raw = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise BundleError("malformed", "bundle is not JSON") from exc
        if not isinstance(raw, dict) or raw.get("format") != BUNDLE_FORMAT:
            raise BundleError("unsupported_version", f"not a {BUNDLE_FORMAT} file")
        try:
            trust = raw["trust_list"]
            lists = raw["status_lists"]
            created_at = int(raw["created_at"])
            if anchors is None:
                anchors = [jws.load_public_pem(str(raw["anchor"]).encode("ascii"))]
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError("malformed", f"bundle is incomplete: {exc}") from exc
        if not isinstance(trust, str) or not isinstance(lists, dict):
            raise BundleError("malformed", "bundle parts have the wrong types")
        return cls.from_tokens(
            trust_list=trust,
            status_lists=lists,
            anchors=anchors,
            created_at=created_at,
            source=raw.get("source"),
        )

    @classmethod
    def load(
        cls, path: str | Path, anchors: Sequence[ec.EllipticCurvePublicKey] | None = None
    ) -> Bundle:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise BundleError("unreadable", f"{path}: {exc.strerror}") from exc
        return cls.loads(data, anchors)

    # --- what the QR transport leaves out (wire/transport.py Restorer) ---

    def x5c(self, header: Mapping[str, Any], payload: Mapping[str, Any]) -> Sequence[str] | None:
        iss, kid = payload.get("iss"), header.get("kid")
        issuer = self.trust_list.issuers.get(iss) if isinstance(iss, str) else None
        key = issuer.keys.get(kid) if issuer is not None and isinstance(kid, str) else None
        return key.x5c if key is not None and key.x5c else None

    def types(self) -> Mapping[str, Sequence[str]]:
        return self.trust_list.types

    def dumps(self) -> str:
        return json.dumps(self._raw, ensure_ascii=False, indent=1)

    def save(self, path: str | Path) -> None:
        """Write atomically: a scanner reading the file never sees half of it."""
        target = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=".bundle-", dir=target.parent or Path("."))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.dumps())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

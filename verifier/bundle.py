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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from dualres.verifier.replay import MemoryReplayStore, default_store
from dualres.verifier.wire import jws, statuslist, trustlist
from dualres.verifier.wire._record import record
from dualres.verifier.wire.errors import UnknownKeyError, WireError

BUNDLE_FORMAT = "dualres-bundle/1"
MAX_BUNDLE_BYTES = 512 * 1024 * 1024


class BundleError(Exception):
    """The bundle cannot be made or loaded; ``code`` says why."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


def parse_trust_list(
    text: str, anchors: Sequence[ec.EllipticCurvePublicKey]
) -> trustlist.TrustList:
    """Verify and parse a trust list; one signed by any other anchor is ``wrong_anchor``,
    its own code, so that a swapped bundle or list is told apart from a damaged one."""
    try:
        return trustlist.parse(text, anchors)
    except UnknownKeyError as exc:
        raise BundleError("wrong_anchor", f"trust list: {exc.description}") from exc
    except WireError as exc:
        raise BundleError(exc.code, f"trust list: {exc.description}") from exc


@record
class StatusEntry:
    issuer: str
    token: statuslist.StatusListToken


class Bundle:
    """Verified trust data.  Build with ``from_tokens`` or ``load``; never directly."""

    __slots__ = (
        "_file",
        "_raw",
        "anchor_pem",
        "created_at",
        "replay",
        "source",
        "status",
        "trust_list",
    )

    def __init__(
        self,
        *,
        trust_list: trustlist.TrustList,
        status: Mapping[str, StatusEntry],
        raw: Mapping[str, Any],
    ) -> None:
        self.trust_list = trust_list
        self.status: Mapping[str, StatusEntry] = dict(status)
        self._raw: dict[str, Any] | None = dict(raw)
        self._file: bytes | None = None
        self.created_at: int = int(raw["created_at"])
        self.source: str | None = raw.get("source")
        self.anchor_pem: str = str(raw["anchor"])
        # The default replay memory when a caller passes none: the process's one,
        # so that loading a fresh bundle does not forget the nonces already seen.
        self.replay: MemoryReplayStore = default_store()

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
        tl = parse_trust_list(trust_list, anchors)
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
                if not key.allows_x5c(token.header.get("x5c")):
                    raise BundleError("unknown_key", f"status list {uri}: x5c is not the key's")
                token.verify(key.key)
            except WireError as exc:
                raise BundleError(exc.code, f"status list {uri}: {exc.description}") from exc
            if not key.valid_at(parsed.iat):
                # A retired key's old "all valid" list, or one signed with the next
                # key before its start, must not clear a revoked credential.
                raise BundleError(
                    "key_not_valid",
                    f"status list {uri}: signed at {parsed.iat}, outside its key's validity",
                )
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
        cls,
        path: str | Path,
        anchors: Sequence[ec.EllipticCurvePublicKey] | None = None,
        *,
        cache: str | Path | None = None,
    ) -> Bundle:
        """Load and re-verify a bundle file.

        With ``cache`` (a file in the verifier's own state directory, see
        verifier/bundlecache.py), a bundle verified before (the same bytes,
        the same anchors) is taken from the cache instead of verified again,
        and a bundle verified now is written to it.
        """
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise BundleError("unreadable", f"{path}: {exc.strerror}") from exc
        if cache is None:
            return cls.loads(data, anchors)
        from dualres.verifier import bundlecache

        file_digest = bundlecache.digest(data)
        # Without pinned anchors the file's own recorded anchor decides, and
        # the file digest covers it.
        ids = bundlecache.anchor_ids(anchors) if anchors is not None else ["recorded"]
        plain = bundlecache.read(Path(cache), file_digest, ids)
        if plain is not None:
            return cls._from_cache(plain, data)
        bundle = cls.loads(data, anchors)
        assert bundle._raw is not None
        owners = {uri: entry.issuer for uri, entry in bundle.status.items()}
        dumped = bundlecache.dump(
            file_digest=file_digest,
            anchors=ids,
            raw=bundle._raw,
            trust=bundle.trust_list,
            owners=owners,
        )
        bundlecache.write(Path(cache), dumped)
        return bundle

    @classmethod
    def _from_cache(cls, plain: dict[str, Any], data: bytes) -> Bundle:
        from dualres.verifier import bundlecache

        def entry(_uri: str, cached: Any) -> StatusEntry:
            owner, token = bundlecache.status_token(cached)
            return StatusEntry(owner, token)

        iss, iat, exp = plain["trust"]
        self = cls.__new__(cls)
        self.trust_list = trustlist.TrustList(
            iss, iat, exp, bundlecache.issuers(plain["issuers"]), bundlecache.types(plain)
        )
        self.status = bundlecache.LazyMap(plain["status"], entry)
        self._raw = None
        self._file = data  # parsed only if someone asks for dumps()
        self.created_at = int(plain["created_at"])
        self.source = plain["source"]
        self.anchor_pem = str(plain["anchor"])
        # The process's memory, as __init__ takes it: a bundle from the cache
        # must not forget the nonces seen under the previous one either.
        self.replay = default_store()
        return self

    # --- what the QR transport leaves out (wire/transport.py Restorer) ---

    def x5c(self, header: Mapping[str, Any], payload: Mapping[str, Any]) -> Sequence[str] | None:
        iss, kid = payload.get("iss"), header.get("kid")
        issuer = self.trust_list.issuers.get(iss) if isinstance(iss, str) else None
        key = issuer.keys.get(kid) if issuer is not None and isinstance(kid, str) else None
        return key.x5c if key is not None and key.x5c else None

    def types(self) -> Mapping[str, Sequence[str]]:
        return self.trust_list.types

    def dumps(self) -> str:
        if self._raw is None:
            assert self._file is not None
            self._raw = json.loads(self._file)
        return json.dumps(self._raw, ensure_ascii=False, indent=1)

    def save(self, path: str | Path) -> None:
        """Write atomically: a scanner reading the file never sees half of it."""
        import tempfile  # with shutil and lzma, a tenth of a one-scan process's start-up

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


def load_anchor(path: str | Path) -> ec.EllipticCurvePublicKey:
    """The trust anchor's public key from a PEM file.

    Here rather than in sync.py: ``check`` needs it on every start, and sync.py
    brings in the HTTP client a check never uses."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BundleError("unreadable", f"anchor {path}: {exc.strerror}") from exc
    try:
        return jws.load_public_pem(data)
    except (ValueError, TypeError) as exc:
        raise BundleError("bad_anchor", f"{path} is not a P-256 public key PEM") from exc

"""Syncing a verifier: fetch the trust list and every status list into one bundle.

Online, the trust list comes over HTTP(S); offline, a municipality hands
out the signed trust list file or a whole bundle file on a USB stick
(DESIGN §6).  Either way every signature is checked against the pinned
trust-anchor key before anything is written, and the bundle is replaced
atomically, so a failed sync leaves the previous bundle in place.

Transport security is not what makes the data trustworthy (the signatures
are), so plain ``http://`` mirrors are accepted; refusing an expired trust
list bounds how old a list an attacker on the network could replay.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from dualres.verifier.bundle import MAX_BUNDLE_BYTES, Bundle, BundleError, parse_trust_list
from dualres.verifier.wire import trustlist

FETCH_TIMEOUT = 30.0  # seconds per request: a slow municipal server, not a dead one
# Far above any real document (a 10-million-entry status list is ~140 KB,
# ~2.5 MB in the worst case), far below what would hurt a small PC.
MAX_FETCH_BYTES = 32 * 1024 * 1024
FETCH_WORKERS = 8  # ~1,700 municipalities: sequential fetches would take minutes
USER_AGENT = "dualres-verify/0.1"

Fetcher = Callable[[str], bytes]


class SyncError(BundleError):
    """A sync failed before a bundle could be made (network, file, expiry).

    A ``BundleError`` too, so a caller handles every sync failure in one place.
    """


@dataclass(frozen=True, slots=True)
class SyncResult:
    bundle: Bundle
    source: str
    carried_bundle: bool  # the source was a bundle file, not a trust list
    warnings: tuple[str, ...]  # e.g. "stale_status_list <uri>"


def _local_path(source: str) -> Path | None:
    """The file a source names, or None for a URL to fetch."""
    parsed = urllib.parse.urlsplit(source)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise SyncError("unsupported_source", f"file URL on another host: {source}")
        return Path(urllib.request.url2pathname(parsed.path))
    # No scheme, or a Windows drive letter ("C:\\...") that urlsplit takes for one.
    if parsed.scheme == "" or len(parsed.scheme) == 1:
        return Path(source)
    return None


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise SyncError("unreadable", f"{path}: {exc.strerror}") from exc
    if len(data) > max_bytes:
        raise SyncError("too_large", f"{path} is larger than {max_bytes} bytes")
    return data


def fetch_url(
    url: str, *, timeout: float = FETCH_TIMEOUT, max_bytes: int = MAX_FETCH_BYTES
) -> bytes:
    """GET an ``http(s)://`` URL with a timeout and a size cap."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise SyncError("unsupported_source", f"not an http(s) URL: {url}")
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - scheme checked
            data: bytes = resp.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        raise SyncError("network_error", f"HTTP {exc.code} from {url}") from exc
    except urllib.error.URLError as exc:
        raise SyncError("network_error", f"{url}: {exc.reason}") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # Timeouts, resets, malformed responses: all "the network failed".
        raise SyncError("network_error", f"{url}: {exc or type(exc).__name__}") from exc
    if len(data) > max_bytes:
        raise SyncError("too_large", f"{url} sent more than {max_bytes} bytes")
    return data


def fetch(source: str, *, timeout: float = FETCH_TIMEOUT) -> bytes:
    """Read a trust-list source: an http(s) URL, a ``file://`` URL or a plain path."""
    path = _local_path(source)
    if path is None:
        return fetch_url(source, timeout=timeout)
    # A carried bundle may be as large as any bundle.
    return _read_file(path, MAX_BUNDLE_BYTES)


def _text(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise SyncError("malformed", f"{where} is not UTF-8 text") from exc


def _not_expired(tl: trustlist.TrustList, now: int) -> None:
    if now >= tl.exp:
        raise SyncError(
            "stale_trust_data",
            f"the trust list expired ({tl.exp}); ask for a current one",
        )


def sync(
    source: str,
    anchors: Sequence[ec.EllipticCurvePublicKey],
    *,
    now: int,
    fetch_source: Fetcher | None = None,
    fetch_status: Fetcher | None = None,
) -> SyncResult:
    """Build a verified bundle from a trust-list source; nothing is written.

    ``source`` holds either a signed trust list (then every status list it
    names is fetched over HTTP(S)) or a bundle JSON file made elsewhere.
    Status list URIs are fetched over HTTP(S) only: a trust list must not be
    able to point the verifier at its own local files.
    """
    if not anchors:
        raise SyncError("no_anchor", "a pinned trust-anchor key is required")
    data = (fetch_source or fetch)(source)
    text = _text(data, source)
    if text.startswith("{"):
        # A bundle carried on a USB stick: re-verified against the pinned anchor,
        # never against the anchor written inside it.
        bundle = Bundle.loads(text, anchors=anchors)
        _not_expired(bundle.trust_list, now)
        return SyncResult(bundle, source, True, _warnings(bundle, now))
    try:
        tl = parse_trust_list(text, anchors)
    except BundleError as exc:
        raise SyncError(exc.code, exc.description) from exc
    _not_expired(tl, now)
    uris = _status_uris(tl)
    get = fetch_status or fetch_url
    with ThreadPoolExecutor(max_workers=FETCH_WORKERS) as pool:
        # map() re-raises the first failure: one missing list fails the sync,
        # because a bundle silently lacking a list would reject that issuer.
        bodies = list(pool.map(get, uris))
    lists = {uri: _text(body, uri) for uri, body in zip(uris, bodies, strict=True)}
    bundle = Bundle.from_tokens(
        trust_list=text, status_lists=lists, anchors=anchors, created_at=now, source=source
    )
    return SyncResult(bundle, source, False, _warnings(bundle, now))


def _warnings(bundle: Bundle, now: int) -> tuple[str, ...]:
    """What is saved anyway but must be said: the profile decides at scan time.

    A status list already expired, or (in a carried bundle) one the trust
    list names but the bundle lacks: that issuer's credentials will be
    refused with ``status_unavailable`` until the next sync.
    """
    out = [
        f"stale_status_list {uri}"
        for uri, entry in bundle.status.items()
        if entry.token.exp is not None and now >= entry.token.exp
    ]
    out += [
        f"missing_status_list {u}"
        for u in _status_uris(bundle.trust_list)
        if u not in bundle.status
    ]
    return tuple(out)


def _status_uris(tl: trustlist.TrustList) -> list[str]:
    """Every status list the trust list names, once each, in the order named."""
    return list(dict.fromkeys(u for iss in tl.issuers.values() for u in iss.status_lists))


def save(bundle: Bundle, out: str | Path) -> None:
    """Write the bundle atomically, creating the directory it goes in."""
    target = Path(out)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        bundle.save(target)
    except OSError as exc:
        raise SyncError("unwritable", f"{os.fspath(out)}: {exc.strerror or exc}") from exc

"""Public, cacheable documents verifiers and wallets fetch: trust list, status
lists, SD-JWT VC issuer metadata, type metadata."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any, Final

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import Select, and_, bindparam, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm.attributes import set_committed_value

from dualres.issuer.domain import typemeta
from dualres.issuer.domain.errors import NotFound
from dualres.issuer.domain.keys import (
    IN_FORCE_AT_NOW,
    NEWEST_FIRST,
    remember_in_force,
    trusted_keys,
)
from dualres.issuer.domain.models import Municipality, SigningKey, StatusList, StatusToken
from dualres.issuer.domain.trust import issuer_url
from dualres.issuer.web.context import now, services, session

bp = Blueprint("public", __name__)
log = logging.getLogger(__name__)

_LG: Final = re.compile(r"^[0-9]{6}$")


def _list_and_key(*columns: Any) -> Select[Any]:
    """``columns`` of a municipality's list by number, with the key in force now (see
    keys._IN_FORCE_Q) joined in the same statement: the token cache checks its kid on
    every fetch."""
    return (
        select(*columns)
        .outerjoin(
            SigningKey,
            and_(SigningKey.municipality_id == StatusList.municipality_id, *IN_FORCE_AT_NOW),
        )
        .where(StatusList.municipality_id == bindparam("m"), StatusList.number == bindparam("n"))
        .order_by(*NEWEST_FIRST)
        .limit(1)
    )


# Built once (every verifier's sync runs it).
_LIST: Final = _list_and_key(StatusList, SigningKey)

# A fetch whose token is cached needs only the list's version and the kid in force (the
# same conditions as _LIST): read as plain columns, outside the ORM and the request's
# session.  With them what the stored token (another worker's build) was built from,
# not its text: a process that missed reads that once (_STORED_TEXT).  Anything else (a
# new version, a new key, an aged token) takes _LIST's path, which builds and stores it.
_CURRENT: Final = _list_and_key(
    StatusList.id,
    StatusList.version,
    SigningKey.kid,
    StatusToken.version,
    StatusToken.kid,
    StatusToken.iat,
).outerjoin(  # keyed by the list's own id: a list's token never comes from another's row
    StatusToken, StatusToken.status_list_id == StatusList.id
)

# The stored token's bytes, only if still the build _CURRENT saw (another worker may
# have replaced it since: then this comes back empty and the fetch takes _LIST's path).
_STORED_TEXT: Final = select(StatusToken.token, StatusToken.etag).where(
    StatusToken.status_list_id == bindparam("l"),
    StatusToken.version == bindparam("v"),
    StatusToken.iat == bindparam("iat"),
)


@bp.after_request
def _cors(resp: Response) -> Response:
    # Public, signed documents: a wallet or shop verifier app served from
    # another origin (a CDN) must be able to read them.  No cookies involved.
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Access-Control-Expose-Headers"] = "ETag"
    return resp


def issuer_municipality(lg_code: str) -> Municipality:
    """The municipality an ``/lg/<lg_code>`` URL names, or 404 ``issuer``.

    A code that is not six digits never reaches SQL (PostgreSQL refuses NUL).
    """
    m = services().municipalities.by_code(session(), lg_code) if _LG.match(lg_code) else None
    if m is None:
        raise NotFound("issuer")
    return m


@bp.get("/trust-list")
def trust_list() -> Response:
    svc = services()
    token = svc.trust_list.get(session(), svc.settings, svc.keys, now())
    return Response(
        token, mimetype="application/jwt", headers={"Cache-Control": "public, max-age=60"}
    )


# Bounded like the column it is looked up in: a longer number is no list of ours (404),
# not an integer overflow in the database driver (500).
@bp.get("/lg/<lg_code>/status/<int(max=2147483647):number>")
def status_list(lg_code: str, number: int) -> Response:
    svc = services()
    t = now()
    mid = svc.municipalities.id_by_code(session, lg_code) if _LG.match(lg_code) else None
    if mid is None:
        raise NotFound("issuer")
    row = svc.db.read_row(_CURRENT, {"m": mid, "n": number, "now": t}, session)
    if row is None:
        raise NotFound("status list")
    list_id, version, kid, built_version, built_kid, built_iat = row
    tokens = svc.status_tokens
    cached = tokens.current(list_id, version, kid, svc.settings, t)
    if cached is None and tokens.usable(
        version, kid, built_version, built_kid, built_iat, svc.settings, t
    ):
        stored = svc.db.read_row(
            _STORED_TEXT, {"l": list_id, "v": version, "iat": built_iat}, session
        )
        if stored is not None:
            cached = tokens.keep(list_id, version, built_kid, built_iat, stored[0], stored[1])
    if cached is not None:
        token, etag = cached
    else:
        token, etag = _fresh_token(mid, number, t)
    # no-cache: a cache may keep it but must revalidate, so a revocation shows
    # in the very next fetch; revalidating costs a verifier 304 and no body.
    headers = {"Cache-Control": "no-cache", "ETag": etag}
    if _etag_matches(request.headers.get("If-None-Match", ""), etag):
        return Response(status=304, headers=headers)
    return Response(token, mimetype="application/statuslist+jwt", headers=headers)


def _fresh_token(mid: int, number: int, t: datetime) -> tuple[str, str]:
    """The token built (or found current) from the list's row read in the request's
    session: the list was changed, the key or the token aged since it was cached."""
    svc = services()
    m = svc.municipalities.by_id(session(), mid)
    found = session().execute(_LIST, {"m": mid, "n": number, "now": t}).one_or_none()
    if found is None:
        raise NotFound("status list")
    lst, key = found
    if m is not None:
        # Set from the cached row: reading the relationship would load the row's other
        # columns (the audit head), one more statement for nothing used here.
        set_committed_value(lst, "municipality", m)
    if key is not None:
        remember_in_force(session(), mid, key)
    # The stored token was just read (in _CURRENT) and found unusable: not read again.
    found_token = svc.status_tokens.get_with_etag(
        session(), lst, svc.settings, svc.keys, t, stored_checked=True
    )
    # Reads and the token stored for the other workers: ended with COMMIT, not the
    # teardown's ROLLBACK, at which psycopg forgets the connection's prepared statements
    # (see oid4vci.credential_offer).  A failed commit loses only the sharing: the token
    # built is served all the same.
    try:
        session().commit()
    except SQLAlchemyError as exc:
        # One line, no traceback: handled (see statuslists.TokenCache.get_with_etag).
        log.warning("status token of list %s/%s not stored: %s", mid, number, type(exc).__name__)
        session().rollback()
    return found_token


def _etag_matches(header: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: ``*`` or a list of tags, compared weakly."""
    if header.strip() == "*":
        return True
    return any(t.strip().removeprefix("W/") == etag for t in header.split(",")) if header else False


@bp.get("/.well-known/jwt-vc-issuer/lg/<lg_code>")
def jwt_vc_issuer(lg_code: str) -> Response:
    svc = services()
    m = issuer_municipality(lg_code)
    keys = [
        {**k.public_jwk, "kid": k.kid, "alg": "ES256", "use": "sig"}
        for k in trusted_keys(session(), m, now())
    ]
    resp = jsonify({"issuer": issuer_url(svc.settings, lg_code), "jwks": {"keys": keys}})
    # As short as the trust list's: a removed (compromised) key must leave caches soon.
    resp.headers["Cache-Control"] = "public, max-age=60"
    return resp


@bp.get("/vct/dual-residence/1")
def type_metadata() -> Response:
    # The vct URL itself answers (SD-JWT VC §6.3.1), with the exact bytes whose
    # digest credentials carry as vct#integrity.
    return Response(
        typemeta.document(services().settings.base_url),
        mimetype="application/json",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@bp.get("/.well-known/vct/dual-residence/1")
def legacy_type_metadata() -> Response:
    # Where early SD-JWT VC drafts looked for the URN vct's metadata: kept for
    # wallets holding credentials issued before the https vct.
    return Response(
        typemeta.legacy_document(),
        mimetype="application/json",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@bp.get("/lg/<lg_code>/audit/checkpoint")
def audit_checkpoint(lg_code: str) -> Response:
    """The newest signed head of this municipality's audit chain, so that copies of it
    exist outside the database (docs/security.md, T30).  It tells how many staff
    actions were audited and a hash: nothing about any person."""
    m = issuer_municipality(lg_code)
    if m.audit_checkpoint is None:
        raise NotFound("audit checkpoint")
    return Response(
        m.audit_checkpoint, mimetype="application/jwt", headers={"Cache-Control": "no-cache"}
    )

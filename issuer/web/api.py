"""The staff JSON API, ``/api/v1``: registrations, credentials, audit.

Every call carries a bearer token bound to one municipality and a role; a
record of another municipality answers 404, as if it did not exist.  Views
are thin: they read the request, call :mod:`issuer.registrations`, and commit
once at the end, so a failure anywhere leaves nothing written (app.py's
teardown rolls back whatever was not committed).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Final

from flask import Blueprint, Response, g, jsonify, request, url_for
from sqlalchemy import func, select

from dualres.issuer.domain import audit, offers, parse, registrations, rules
from dualres.issuer.domain.db import utc
from dualres.issuer.domain.errors import IssuerError, NotFound
from dualres.issuer.domain.identity import IdentityError, checks
from dualres.issuer.domain.issuance import person_claims, primary_residence_name
from dualres.issuer.domain.models import (
    ACTIVE,
    CRED_REVOKED,
    CRED_SUSPENDED,
    EXPIRED,
    REVOKED,
    SUSPENDED,
    ApiToken,
    AuditEntry,
    Credential,
    Municipality,
    Registration,
)
from dualres.issuer.domain.parse import invalid
from dualres.issuer.domain.statuslists import status_uri
from dualres.issuer.domain.tokens import authenticate, require_role
from dualres.issuer.web.context import now, services, session
from dualres.issuer.web.openapi import document
from dualres.verifier.wareki import day_start

bp = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_LIMIT: Final = 200
DEFAULT_LIMIT: Final = 50
MAX_OFFSET: Final = 10_000_000
STATES: Final = (ACTIVE, SUSPENDED, REVOKED, EXPIRED)
CRED_STATUS: Final = {CRED_REVOKED: "revoked", CRED_SUSPENDED: "suspended"}
_PUBLIC: Final = frozenset({"api.openapi"})


# --- request plumbing --------------------------------------------------------------


@bp.before_request
def _authenticate() -> None:
    if request.endpoint in _PUBLIC:
        return
    token = authenticate(session(), request.headers.get("Authorization"), now())
    g.api_token = token
    # From the per-process cache, and in the session before the relationship is read,
    # so that token.municipality finds it there instead of querying.
    g.municipality = services().municipalities.by_id(session(), token.municipality_id)


@bp.after_request
def _no_store(resp: Response) -> Response:
    # Registrations are personal data: no shared or browser cache keeps them.
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def _token() -> ApiToken:
    tok: ApiToken = g.api_token
    return tok


def _municipality() -> Municipality:
    m: Municipality = g.municipality
    return m


def _actor() -> str:
    t = _token()
    return f"api-token:{t.id} ({t.role}) {t.label}"[:128]


def _body() -> dict[str, Any]:
    """The JSON object sent, or a 400/415 that says why (never a 500: deeply nested
    arrays make the parser recurse, which is not a ValueError)."""
    if not request.is_json:
        raise IssuerError(
            "unsupported_media_type",
            "send the body as application/json",
            status=415,
            description_ja="application/json で送ってください",
        )
    try:
        data = json.loads(request.get_data(cache=False) or b"null")
    except (ValueError, RecursionError):
        raise IssuerError(
            "invalid_request", "the body is not valid JSON", description_ja="JSON が不正です"
        ) from None
    if not isinstance(data, dict):
        raise invalid("body", "the body must be a JSON object", "JSON オブジェクトを送ってください")
    return data


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9 or not lo <= int(raw) <= hi:
        raise invalid(name, f"{name} must be an integer from {lo} to {hi}")
    return int(raw)


def _str_arg(name: str, max_len: int) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > max_len or any(unicodedata.category(c) == "Cc" for c in raw):
        raise invalid(name, f"{name} must be at most {max_len} printable characters")
    return raw


def _choice_arg(name: str, choices: tuple[str, ...]) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw not in choices:
        raise invalid(name, f"{name} must be one of {', '.join(choices)}")
    return raw


def page_rows(
    model: Any, where: list[Any], order: tuple[Any, ...], *, limit: int, offset: int
) -> tuple[list[Any], int]:
    """Up to ``limit`` rows of ``model`` matching ``where``, in ``order`` from ``offset``,
    and how many match in all (the console's pages use it too)."""
    s = session()
    total = s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()
    query = select(model).where(*where).order_by(*order).limit(limit).offset(offset)
    return list(s.execute(query).scalars()), total


def _page_of(model: Any, where: list[Any], *order: Any) -> tuple[list[Any], dict[str, int]]:
    """The page of ``model`` rows that ``limit`` and ``offset`` ask for, and where it
    stands (``total``, ``limit``, ``offset``) for the listing."""
    limit = _int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int_arg("offset", 0, 0, MAX_OFFSET)
    rows, total = page_rows(model, where, order, limit=limit, offset=offset)
    return rows, {"total": total, "limit": limit, "offset": offset}


def _utc(dt: datetime) -> str:
    return utc(dt).isoformat(timespec="seconds").replace("+00:00", "Z")


def _registration(public_id: str, *, lock: bool = False) -> Registration:
    return registrations.get_registration(session(), _municipality(), public_id, lock=lock)


# --- representations --------------------------------------------------------------


def _credential_counts(ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = session().execute(
        select(Credential.registration_id, func.count())
        .where(Credential.registration_id.in_(ids))
        .group_by(Credential.registration_id)
    )
    return {rid: n for rid, n in rows}


def registration_json(reg: Registration, credentials: int) -> dict[str, Any]:
    """What staff see: never the identity hash, never anything of the card."""
    m = reg.municipality
    return {
        "id": reg.public_id,
        "municipality": {"lg_code": m.lg_code, "name": m.name},
        "tier": reg.tier,
        "state": reg.state,
        "state_reason": reg.state_reason,
        "identity_checked": reg.identity_checked,
        "person": {**person_claims(reg), "sex": reg.sex},
        "primary_residence": {"lg_code": reg.primary_lg_code, "name": primary_residence_name(reg)},
        "second_home": {
            "address": reg.second_home_address,
            "postal_code": reg.second_home_postal_code,
        },
        "activities": list(reg.activities),
        "registered_since": reg.registered_since.isoformat(),
        "valid_from": reg.valid_from.isoformat(),
        "valid_until": reg.valid_until.isoformat(),
        "credentials": credentials,
        "created_at": _utc(reg.created_at),
        "updated_at": _utc(reg.updated_at),
    }


def _one(reg: Registration, status: int = 200) -> tuple[Response, int]:
    return jsonify(registration_json(reg, _credential_counts([reg.id]).get(reg.id, 0))), status


def credential_json(cred: Credential) -> dict[str, Any]:
    lst = cred.status_list
    return {
        "id": cred.id,
        "status": CRED_STATUS.get(cred.status, "valid"),
        "kid": cred.kid,
        "holder_jkt": cred.holder_thumbprint,
        "issued_at": _utc(cred.issued_at),
        "expires_at": _utc(cred.expires_at),
        "status_list": {
            "uri": status_uri(services().settings, _municipality().lg_code, lst.number),
            "idx": cred.status_idx,
        },
    }


def audit_json(e: AuditEntry) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "at": _utc(e.at),
        "actor": e.actor,
        "action": e.action,
        "target": e.target,
        "detail": e.detail,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


# --- registrations ------------------------------------------------------------------


# --- card checks (identity/checks.py): the PIN and the card stay on the resident's side ----


def card_check_json(chk: Any) -> dict[str, Any]:
    base = services().settings.base_url
    return {
        **checks.state_json(chk, now(), with_facts=True),
        # Where the resident's side answers: the reader page on the counter's
        # tablet, or any client (a phone, dualres-card) through the JSON endpoint.
        "reader_url": f"{base}/console/reader/{chk.public_id}",
        "response_uri": f"{base}/card-checks/{chk.public_id}/response",
    }


@bp.post("/card-checks")
def start_card_check() -> tuple[Response, int]:
    s = session()
    checks.trust(services().settings)  # 503 now rather than a check nobody can answer
    chk = checks.start(s, municipality_id=_municipality().id, actor=_actor(), now=now())
    s.commit()
    resp = jsonify(card_check_json(chk))
    resp.headers["Location"] = f"{bp.url_prefix}/card-checks/{chk.public_id}"
    return resp, 201


@bp.get("/card-checks/<public_id>")
def get_card_check(public_id: str) -> Response:
    chk = checks.find(session(), public_id)
    if chk.municipality_id != _municipality().id:
        raise NotFound("card check")
    return jsonify(card_check_json(chk))


@bp.post("/registrations")
def create() -> tuple[Response, int]:
    data = _body()
    svc, s = services(), session()
    try:
        reg = registrations.create_registration(
            s, _municipality(), data, actor=_actor(), now=now(), settings=svc.settings
        )
    except IdentityError as exc:
        if exc.persist:
            s.commit()  # a failed check's state and audit entry, nothing else was written
        raise
    s.commit()
    # New: no credential yet, nothing to count.
    resp, status = jsonify(registration_json(reg, 0)), 201
    resp.headers["Location"] = f"{bp.url_prefix}/registrations/{reg.public_id}"
    return resp, status


def _search(q: str) -> Any:
    # Match what staff type: a kanji or kana fragment, spaces or not, ひらがな or カタカナ.
    folded = unicodedata.normalize("NFKC", q)
    folded = "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in folded)
    folded = "".join(folded.split())
    cols = (
        Registration.family_name + Registration.given_name,
        Registration.family_name_kana + Registration.given_name_kana,
    )
    return cols[0].contains(folded, autoescape=True) | cols[1].contains(folded, autoescape=True)


@bp.get("/registrations")
def list_registrations() -> Response:
    if "q" in request.args:
        # A name (or a number typed by mistake) in a URL lands in access logs, proxy
        # logs and histories before anything here can refuse it: names go in a body.
        raise invalid(
            "q",
            'q is not taken in a URL: POST /api/v1/registrations/search with {"q": ...}',
            "氏名の検索は URL ではなく POST /api/v1/registrations/search の本文で送ってください",
        )
    return _registration_listing(
        _choice_arg("state", STATES),
        _choice_arg("tier", rules.TIERS),
        None,
        _int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        _int_arg("offset", 0, 0, MAX_OFFSET),
    )


_SEARCH: Final = frozenset({"q", "state", "tier", "limit", "offset"})


def _body_int(data: dict[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    raw = data.get(name, default)
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)  # JSON has one number type: 50.0 is the integer 50 (JSON Schema agrees)
    if isinstance(raw, bool) or not isinstance(raw, int) or not lo <= raw <= hi:
        raise invalid(name, f"{name} must be an integer from {lo} to {hi}")
    return raw


def _body_choice(data: dict[str, Any], name: str, choices: tuple[str, ...]) -> str | None:
    raw = data.get(name)
    if raw is None or raw == "":
        return None
    if raw not in choices:
        raise invalid(name, f"{name} must be one of {', '.join(choices)}")
    return str(raw)


@bp.post("/registrations/search")
def search_registrations() -> Response:
    """The listing with a name to look for, which travels in the body only."""
    data = parse.obj(_body(), "", _SEARCH)
    q = parse.text(data, "q", "q", max_len=64, required=False)  # refuses a My Number
    return _registration_listing(
        _body_choice(data, "state", STATES),
        _body_choice(data, "tier", rules.TIERS),
        q or None,
        _body_int(data, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        _body_int(data, "offset", 0, 0, MAX_OFFSET),
    )


def _registration_listing(
    state: str | None, tier: str | None, q: str | None, limit: int, offset: int
) -> Response:
    where = [Registration.municipality_id == _municipality().id]
    if state:
        where.append(Registration.state == state)
    if tier:
        where.append(Registration.tier == tier)
    if q:
        where.append(_search(q))
    order = (Registration.created_at.desc(), Registration.id.desc())
    regs, total = page_rows(Registration, where, order, limit=limit, offset=offset)
    counts = _credential_counts([r.id for r in regs])
    return jsonify(
        {
            "items": [registration_json(r, counts.get(r.id, 0)) for r in regs],
            "total": total,
            "limit": limit,
            "offset": offset,
        }
    )


@bp.get("/registrations/<public_id>")
def get_one(public_id: str) -> tuple[Response, int]:
    return _one(_registration(public_id))


def _change_state(
    public_id: str, change: Callable[..., Registration], *, supervisor: bool = False
) -> tuple[Response, int]:
    """Suspend, reinstate or revoke, with the reason the body gives."""
    # Existence first: a clerk of another town gets 404 here, not 403.
    reg = _registration(public_id)
    if supervisor:
        require_role(_token(), "supervisor")
    why = parse.reason(parse.obj(_body(), "", frozenset({"reason"})))
    reg = change(session(), reg, reason=why, actor=_actor(), now=now())
    session().commit()
    answer = _one(reg)
    # The answer's reads opened a transaction of their own: ended with COMMIT, not the
    # teardown's ROLLBACK, at which psycopg forgets the connection's prepared
    # statements (see oid4vci.credential_offer).
    session().commit()
    return answer


@bp.post("/registrations/<public_id>/suspend")
def suspend(public_id: str) -> tuple[Response, int]:
    return _change_state(public_id, registrations.suspend)


@bp.post("/registrations/<public_id>/reinstate")
def reinstate(public_id: str) -> tuple[Response, int]:
    return _change_state(public_id, registrations.reinstate)


@bp.post("/registrations/<public_id>/revoke")
def revoke(public_id: str) -> tuple[Response, int]:
    return _change_state(public_id, registrations.revoke, supervisor=True)


@bp.post("/registrations/<public_id>/renew")
def renew(public_id: str) -> tuple[Response, int]:
    reg = _registration(public_id)
    body = parse.obj(_body(), "", frozenset({"valid_until"}))
    until = parse.iso_date(body, "valid_until", "valid_until", required=False)
    reg = registrations.renew(
        session(), reg, valid_until=until, actor=_actor(), now=now(), settings=services().settings
    )
    session().commit()
    return _one(reg)


# --- credentials ----------------------------------------------------------------------


@bp.get("/registrations/<public_id>/credentials")
def list_credentials(public_id: str) -> Response:
    reg = _registration(public_id)
    creds = session().execute(
        select(Credential).where(Credential.registration_id == reg.id).order_by(Credential.id)
    )
    return jsonify({"items": [credential_json(c) for c in creds.scalars()]})


@bp.post("/registrations/<public_id>/credentials")
def issue_credential(public_id: str) -> tuple[Response, int]:
    reg = _registration(public_id)
    body = parse.obj(_body(), "", frozenset({"holder_jwk"}))
    jwk = body.get("holder_jwk")
    if not isinstance(jwk, dict):
        raise invalid("holder_jwk", "holder_jwk must be a JSON object (an EC P-256 public JWK)")
    svc = services()
    cred, token = registrations.issue(
        session(), reg, jwk, actor=_actor(), now=now(), settings=svc.settings, keys=svc.keys
    )
    session().commit()
    return jsonify({**credential_json(cred), "credential": token}), 201


@bp.post("/registrations/<public_id>/offers")
def create_offer(public_id: str) -> tuple[Response, int]:
    """An OpenID4VCI pre-authorized offer (issuer/web/oid4vci.py) for the holder's wallet."""
    reg = _registration(public_id, lock=True)
    made = offers.create_offer(
        session(), reg, actor=_actor(), settings=services().settings, now=now()
    )
    session().commit()
    return jsonify(
        {
            "offer_id": made.offer.public_id,
            "offer_uri": made.offer_uri,
            "wallet_uri": made.wallet_uri,
            "tx_code": made.tx_code,
            "expires_at": _utc(made.offer.expires_at),
            # A link, not the image: rendering the PNG in pure Python was a third
            # of an issuance's server CPU, spent even when nobody showed it.
            "qr_url": url_for(
                "oid4vci.offer_qr", public_id=reg.public_id, offer_id=made.offer.public_id
            ),
        }
    ), 201


# --- audit --------------------------------------------------------------------------------


def _since() -> datetime | None:
    raw = _str_arg("since", 40)
    if raw is None:
        return None
    try:
        if len(raw) == 10:
            # A bare date is a Japanese day: from 00:00 JST.
            d = date.fromisoformat(raw)
            return day_start(d)
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        # Stored in UTC (SQLite keeps no offset): compare in UTC.
        return utc(dt)
    except (ValueError, OverflowError):  # year 1 minus nine hours does not exist
        raise invalid("since", "since must be an ISO 8601 date or date-time") from None


@bp.get("/audit")
def list_audit() -> Response:
    action = _str_arg("action", 64)
    target = _str_arg("target", 64)
    if target:
        parse.no_my_number(target, "target")  # a registration id, never a My Number
    since = _since()
    where = [AuditEntry.municipality_id == _municipality().id]
    if action:
        where.append(AuditEntry.action == action)
    if target:
        where.append(AuditEntry.target == target)
    if since:
        where.append(AuditEntry.at >= since)
    rows, page = _page_of(AuditEntry, where, AuditEntry.seq)
    return jsonify({"items": [audit_json(e) for e in rows], **page})


@bp.get("/audit/verify")
def verify_audit() -> Response:
    m = session().get(Municipality, _municipality().id, populate_existing=True)
    assert m is not None
    return jsonify(audit.verify_chain(session(), m).to_json())


# --- the description of all this -----------------------------------------------------------


@bp.get("/openapi.json", endpoint="openapi")
def openapi() -> Response:
    resp = jsonify(document(services().settings.base_url))
    resp.headers["Cache-Control"] = "public, max-age=3600"
    return resp

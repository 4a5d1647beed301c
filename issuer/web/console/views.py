"""The console's pages.  Thin, like the API's views: read the form, call
:mod:`issuer.registrations`, commit once; a rule that refuses is shown next to
its field in the staff member's language, never as a stack trace."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, Final

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import false, select
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from dualres.issuer.domain import audit, offers, parse, registrations, rules
from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.identity import PersonFacts, checks
from dualres.issuer.domain.identity.cardcheck import CardCheckError
from dualres.issuer.domain.models import (
    AuditEntry,
    Credential,
    CredentialOffer,
    Municipality,
    Registration,
)
from dualres.issuer.domain.staff import (
    DEVICE_DAYS,
    device_name,
    device_token,
    end_session,
    sign_in,
    start_session,
)
from dualres.issuer.web.api import STATES, _search, page_rows
from dualres.issuer.web.console.base import (
    DEVICE_COOKIE,
    _end_session,
    actor,
    bp,
    csrf_token,
    message,
    municipality,
    staff,
    t,
)
from dualres.issuer.web.console.i18n import LANGS
from dualres.issuer.web.context import now, services
from dualres.issuer.web.context import session as db_session
from dualres.issuer.web.throttle import Throttle, app_throttle
from dualres.schemas import load_json
from dualres.verifier.wareki import day_start

PAGE: Final = 50
MAX_OFFSET: Final = 1_000_000
# A domain error's field -> the form input it is shown beside.
FIELDS: Final = {
    "identity.card_check": "identity",
    "identity": "identity",
    "tier": "tier",
    "activities": "activities",
    "second_home.address": "second_home_address",
    "second_home.postal_code": "postal_code",
    "valid_from": "valid_from",
    "valid_until": "valid_until",
    "registered_since": "registered_since",
    "reason": "reason",
}
CARD_FIELDS: Final = frozenset({"identity"})
CRED_KEYS: Final = {0: "cred_valid", 1: "revoked", 2: "suspended"}


def _field(exc: IssuerError) -> str:
    f = exc.field or ""
    if f.startswith("activities"):
        return "activities"
    return FIELDS.get(f, "form")


@functools.cache
def activities() -> list[dict[str, str]]:
    # Read once: the file ships with the package.  Callers only read the list.
    acts: list[dict[str, str]] = load_json("activities.json")
    return acts


# --- sign-in, sign-out, language ---------------------------------------------------------------


def _login_throttle() -> Throttle:
    # 20 attempts at once, then one every 10 s: a town hall behind one NAT
    # address signs in far less often than that.
    return app_throttle("dualres_login_throttle", burst=20, rate=0.1)


MAX_DEVICE_TOKENS: Final = 8  # names signed in from one counter PC that it remembers


def _device_tokens() -> list[str]:
    return request.cookies.get(DEVICE_COOKIE, "").split()[:MAX_DEVICE_TOKENS]


def _secret() -> bytes:
    key = current_app.secret_key
    return key if isinstance(key, bytes) else str(key).encode("utf-8")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int] | tuple[str, int, dict[str, str]]:
    error = t("expired") if session.pop("expired", False) else None
    if request.method == "GET":
        if "sid" in session:
            return redirect(url_for("console.index"))
        return render_template("console/login.html", error=error, username="")
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    # The per-name count (issuer/domain/staff.py) stops guessing one account's
    # password; this stops one address trying a common password across many
    # accounts (spraying).
    wait = _login_throttle().hit(request.remote_addr or "-", now().timestamp())
    if wait is not None:
        resp = render_template("console/login.html", error=t("busy_address"), username=username)
        return resp, 429, {"Retry-After": str(int(wait) + 1)}
    s = db_session()
    at, secret = now(), _secret()
    device = next(
        (
            ident
            for tok in _device_tokens()
            if (ident := device_name(secret, tok, username, at)) is not None
        ),
        None,
    )
    result = sign_in(s, username, password, at, secret=secret, device=device)
    if result.user is None:
        s.commit()  # the failure counter
        error = t("locked") if result.locked else t("bad_login")
        status = 429 if result.locked else 401
        return render_template("console/login.html", error=error, username=username), status
    user = result.user
    sid = start_session(s, user, at)
    audit.append(
        s,
        user.municipality,
        actor=f"staff:{user.username} ({user.role})"[:128],
        action="console.sign_in",
        target=None,
        detail={"device_known": device is not None},
        now=at,
    )
    s.commit()
    keep = session.get("lang", "ja")
    session.clear()  # no fixation: a new session, a new CSRF token
    session.update(sid=sid, lang=keep)
    csrf_token()
    done = redirect(url_for("console.index"))
    tokens = [device_token(secret, user.username, at)]
    tokens += [
        tok for tok in _device_tokens() if device_name(secret, tok, user.username, at) is None
    ]
    done.set_cookie(
        DEVICE_COOKIE,
        " ".join(tokens[:MAX_DEVICE_TOKENS]),
        max_age=DEVICE_DAYS * 86400,
        path="/console/",
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE", True)),
        httponly=True,
        samesite="Strict",
    )
    return done


@bp.post("/logout")
def logout() -> Response:
    sid = session.get("sid")
    if isinstance(sid, str):
        s = db_session()
        user = end_session(s, sid, now(), "sign_out")
        if user is not None:
            audit.append(
                s,
                user.municipality,
                actor=f"staff:{user.username} ({user.role})"[:128],
                action="console.sign_out",
                target=None,
                detail={},
                now=now(),
            )
        s.commit()
    _end_session()
    return redirect(url_for("console.login"))


@bp.post("/lang")
def set_lang() -> Response:
    chosen = request.form.get("lang", "ja")
    session["lang"] = chosen if chosen in LANGS else "ja"
    back = request.form.get("next", "")
    # Only our own pages: never an open redirect.
    if not back.startswith("/console/") or "//" in back or "\\" in back:
        back = url_for("console.index")
    return redirect(back)


@bp.get("/")
def index() -> Response:
    return redirect(url_for("console.search"))


# --- find --------------------------------------------------------------------------------------


def _date_arg(args: MultiDict[str, str], key: str, errors: dict[str, str]) -> date | None:
    raw = args.get(key, "").strip()
    if not raw:
        return None
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        errors[key] = t("date_format")
        return None


def _jst_start(d: date) -> datetime:
    return day_start(d)


def _day_range(
    args: MultiDict[str, str],
    column: Any,
    keys: tuple[str, str],
    errors: dict[str, str],
    where: list[Any],
) -> None:
    """Filter ``column`` to whole JST days from ``keys[0]`` to ``keys[1]`` (both optional)."""
    start = _date_arg(args, keys[0], errors)
    end = _date_arg(args, keys[1], errors)
    if start:
        where.append(column >= _jst_start(start))
    if end:
        where.append(column < _jst_start(end) + timedelta(days=1))


def _page(
    model: Any, where: list[Any], *order: Any, source: MultiDict[str, str] | None = None
) -> tuple[list[Any], int, int]:
    """One page of ``model`` rows matching ``where``, the total, and the page's offset."""
    offset = _offset(request.args if source is None else source)
    rows, total = page_rows(model, where, order, limit=PAGE, offset=offset)
    return rows, total, offset


def _offset(source: MultiDict[str, str]) -> int:
    raw = source.get("offset", "0")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 7:
        return 0
    return min(int(raw), MAX_OFFSET)


def search_args() -> MultiDict[str, str]:
    """The search's conditions: from the form of a POST, else from the URL.

    A name goes only by POST: in a URL it would land in access logs, proxy logs and
    the browser's history, and a My Number typed by mistake with it.
    """
    return request.form if request.method == "POST" else request.args


def search_filters(args: MultiDict[str, str], errors: dict[str, str]) -> list[Any]:
    """The search form's conditions, this municipality's rows only (also used by the export)."""
    where: list[Any] = [Registration.municipality_id == municipality().id]
    q = args.get("q", "").strip()[:64]
    if q and args is not request.form:
        errors["q"] = t("q_in_url")
    elif q:
        try:
            parse.no_my_number(q, "q")  # a My Number is no search key
            where.append(_search(q))
        except IssuerError as exc:
            errors["q"] = message(exc)
    state = args.get("state", "")
    if state in STATES:
        where.append(Registration.state == state)
    tier = args.get("tier", "")
    if tier in rules.TIERS:
        where.append(Registration.tier == tier)
    _day_range(args, Registration.created_at, ("created_from", "created_to"), errors, where)
    return where


@bp.route("/registrations", methods=["GET", "POST"])
def search() -> tuple[str, int]:
    return search_page()


def search_page(export_error: str | None = None, status: int = 200) -> tuple[str, int]:
    args = search_args()
    errors: dict[str, str] = {}
    where = search_filters(args, errors)
    if "q" in errors:
        # Refused: search nothing, and never show the text again (it may be a number).
        where.append(false())
    shown = {
        k: v for k, v in args.items() if k != "csrf_token" and not (k == "q" and "q" in errors)
    }
    regs, total, offset = _page(
        Registration, where, Registration.created_at.desc(), Registration.id.desc(), source=args
    )
    return render_template(
        "console/search.html",
        regs=regs,
        total=total,
        offset=offset,
        page=PAGE,
        errors=errors,
        args=shown,
        states=STATES,
        tiers=rules.TIERS,
        export_error=export_error,
    ), status


def _open_offers(reg: Registration) -> list[tuple[CredentialOffer, int]]:
    """Offers still waiting for the phone, so a clerk who left the page can go back."""
    at = now()
    rows = db_session().execute(
        select(CredentialOffer)
        .where(
            CredentialOffer.registration_id == reg.id,
            CredentialOffer.redeemed_at.is_(None),
            CredentialOffer.expires_at > at,
            CredentialOffer.failures < offers.MAX_TX_FAILURES,
        )
        .order_by(CredentialOffer.id.desc())
    )
    return [
        (o, max(1, int((o.expires_at - at).total_seconds() + 59) // 60)) for o in rows.scalars()
    ]


def _detail(
    reg: Registration, *, errors: dict[str, str] | None = None, status: int = 200
) -> tuple[str, int]:
    creds = list(
        db_session()
        .execute(
            select(Credential).where(Credential.registration_id == reg.id).order_by(Credential.id)
        )
        .scalars()
    )
    acts = {a["code"]: a for a in activities()}
    return render_template(
        "console/detail.html",
        reg=reg,
        creds=creds,
        open_offers=_open_offers(reg),
        cred_keys=CRED_KEYS,
        acts=acts,
        errors=errors or {},
        form=request.form,
    ), status


@bp.get("/registrations/<public_id>")
def detail(public_id: str) -> tuple[str, int]:
    return _detail(registrations.get_registration(db_session(), municipality(), public_id))


def _act(public_id: str, action: str) -> Response | tuple[str, int]:
    s = db_session()
    # Existence first: staff of another town get 404 here, never 403.
    reg = registrations.get_registration(s, municipality(), public_id)
    if action == "revoke" and staff().role != "supervisor":
        abort(403)
    errors: dict[str, str] = {}
    if action == "revoke":
        # Revocation cannot be undone: one click is not enough, and every
        # missing part is said at once (the reason and the confirmation).
        if request.form.get("confirm") != "1":
            errors["revoke.confirm"] = t("revoke_confirm_needed")
        if not request.form.get("reason", "").strip():
            try:
                parse.reason({"reason": ""})
            except IssuerError as exc:
                errors["revoke.reason"] = message(exc)
        if errors:
            return _detail(reg, errors=errors, status=400)
    try:
        if action == "renew":
            raw = request.form.get("valid_until", "").strip()
            until = parse.iso_date(
                {"valid_until": raw} if raw else {}, "valid_until", "valid_until", required=False
            )
            registrations.renew(
                s, reg, valid_until=until, actor=actor(), now=now(),
                settings=services().settings,
            )  # fmt: skip
        else:
            why = parse.reason({"reason": request.form.get("reason", "")})
            change = {
                "suspend": registrations.suspend,
                "reinstate": registrations.reinstate,
                "revoke": registrations.revoke,
            }[action]
            change(s, reg, reason=why, actor=actor(), now=now())
    except IssuerError as exc:
        s.rollback()
        reg = registrations.get_registration(s, municipality(), public_id)
        where = _field(exc)
        key = "form" if where == "form" else f"{action}.{where}"
        return _detail(reg, errors={key: message(exc)}, status=exc.status)
    s.commit()
    flash(t("done"))
    return redirect(url_for("console.detail", public_id=public_id))


@bp.post("/registrations/<public_id>/suspend")
def suspend(public_id: str) -> Response | tuple[str, int]:
    return _act(public_id, "suspend")


@bp.post("/registrations/<public_id>/reinstate")
def reinstate(public_id: str) -> Response | tuple[str, int]:
    return _act(public_id, "reinstate")


@bp.post("/registrations/<public_id>/revoke")
def revoke(public_id: str) -> Response | tuple[str, int]:
    return _act(public_id, "revoke")


@bp.post("/registrations/<public_id>/renew")
def renew(public_id: str) -> Response | tuple[str, int]:
    return _act(public_id, "renew")


# --- register ----------------------------------------------------------------------------------


def _current_check() -> Any:
    """The card check this clerk's session started, if it is still this municipality's."""
    check_id = session.get("card_check_id")
    if not isinstance(check_id, str):
        return None
    try:
        chk = checks.find(db_session(), check_id)
    except IssuerError:
        return None
    return chk if chk.municipality_id == municipality().id else None


def _register_page(*, errors: dict[str, str], status: int = 200) -> tuple[str, int]:
    """The register page in the state of the clerk's card check: none yet, waiting
    for the resident (the page reloads itself), failed, or verified (the form)."""
    m = municipality()
    chk = _current_check()
    st = checks.state_json(chk, now(), with_facts=True) if chk is not None else None
    facts: PersonFacts | None = None
    if chk is not None and st is not None and st["state"] == checks.VERIFIED:
        facts = checks.facts_of(chk)
    if facts is not None and rules.home_municipality(facts.address_lg_code) == m.lg_code:
        code = "own_municipality"
        _, en, ja = rules.RULES[code]
        errors.setdefault("identity", en if session.get("lang") == "en" else ja)
    if st is not None and st.get("error") and "identity" not in errors:
        errors["identity"] = message(CardCheckError(st["error"], remaining=st.get("remaining")))
    day = rules.today(now())
    return render_template(
        "console/register.html",
        facts=facts,
        check=st,
        reader_url=url_for("cardcheck.reader", check_id=chk.public_id) if chk else None,
        errors=errors,
        form=request.form,
        activities=activities(),
        tiers=rules.TIERS,
        today=day,
        default_until=day + timedelta(days=365),
    ), status


@bp.get("/registrations/new")
def new() -> tuple[str, int]:
    return _register_page(errors={})


@bp.post("/registrations/new/card")
def new_card() -> Response | tuple[str, int]:
    """Start a card check: the resident answers it on the reader page, never here."""
    s = db_session()
    try:
        checks.trust(services().settings)
    except IssuerError as exc:
        return _register_page(errors={"identity": message(exc)}, status=exc.status)
    chk = checks.start(s, municipality_id=municipality().id, actor=actor(), now=now())
    s.commit()
    session["card_check_id"] = chk.public_id
    # To the page's GET: it reloads itself while it waits, which must not re-POST.
    return redirect(url_for("console.new"))


def registration_request(cell: Callable[[str], str], activities: list[str]) -> dict[str, Any]:
    """A create_registration body (identity aside) from the register form's inputs or
    an import line's columns, as ``cell`` gives them by name ("" when absent)."""
    home: dict[str, Any] = {"address": cell("second_home_address")}
    if cell("postal_code").strip():
        home["postal_code"] = cell("postal_code")
    data: dict[str, Any] = {
        "tier": cell("tier"),
        "activities": activities,
        "second_home": home,
    }
    for k in ("valid_from", "valid_until", "registered_since"):
        if cell(k).strip():
            data[k] = cell(k).strip()
    return data


def _new_request() -> dict[str, Any]:
    f = request.form
    return registration_request(lambda k: f.get(k, ""), f.getlist("activities"))


@bp.post("/registrations/new")
def create() -> Response | tuple[str, int]:
    s = db_session()
    m = municipality()
    chk = _current_check()
    if chk is None:
        return _register_page(errors={"identity": t("card_check_expired")}, status=400)
    try:
        req = parse.parse_new(_new_request(), checked=parse.CardCheckRef(chk.public_id))
        # Every broken rule at once, each beside its field, not one per submit.
        problems = registrations.form_problems(req, rules.today(now()), services().settings)
        if len(problems) > 1:
            errors: dict[str, str] = {}
            for p in problems:
                errors.setdefault(_field(p), message(p))
            return _register_page(errors=errors, status=problems[0].status)
        reg = registrations.create_registration(
            s, m, req, actor=actor(), now=now(), settings=services().settings
        )
    except IssuerError as exc:
        s.rollback()
        return _register_page(errors={_field(exc): message(exc)}, status=exc.status)
    s.commit()
    session.pop("card_check_id", None)
    flash(t("registered"))
    return redirect(url_for("console.detail", public_id=reg.public_id))


# --- audit -------------------------------------------------------------------------------------


@bp.get("/audit")
def audit_log() -> str:
    args = request.args
    errors: dict[str, str] = {}
    where: list[Any] = [AuditEntry.municipality_id == municipality().id]
    action = args.get("action", "").strip()[:64]
    target = args.get("target", "").strip()[:64]
    if target:
        try:
            parse.no_my_number(target, "target")  # a registration id, never a My Number
        except IssuerError as exc:
            errors["target"] = message(exc)
            target = ""
            where.append(false())
    if action:
        where.append(AuditEntry.action == action)
    if target:
        where.append(AuditEntry.target == target)
    _day_range(args, AuditEntry.at, ("since", "until"), errors, where)
    rows, total, offset = _page(AuditEntry, where, AuditEntry.seq.desc())
    s = db_session()
    actions = list(
        s.execute(
            select(AuditEntry.action)
            .where(AuditEntry.municipality_id == municipality().id)
            .distinct()
            .order_by(AuditEntry.action)
        ).scalars()
    )
    check = None
    if args.get("verify") == "1":
        m = s.get(Municipality, municipality().id, populate_existing=True)
        assert m is not None
        check = audit.verify_chain(s, m)
    return render_template(
        "console/audit.html",
        rows=rows,
        total=total,
        offset=offset,
        page=PAGE,
        errors=errors,
        # A refused target is not shown back (it held a number).
        args={k: v for k, v in args.items() if k != "target" or "target" not in errors},
        actions=actions,
        check=check,
    )

"""``/apply/``: residents apply online (issue 12, docs/apply.md).

Sign-in is the OpenID Connect relying party of issuer/domain/oidc.py against
the provider (the demo's stub at ``/idp``, whose sign-in is a JPKI card
check).  Who signed in is kept in a cookie of this path alone, signed with the
deployment's session secret and short-lived: the applicant's key (an HMAC of
the provider's pairwise ``sub``) and the basic four the ID token carried (the
person's own data, on their own device, HttpOnly).  Japanese first; an
English switch on every page.
"""

from __future__ import annotations

import hmac
import secrets
import unicodedata
from collections.abc import Callable
from datetime import date
from typing import Any, Final

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.wrappers import Response as BaseResponse

from dualres.issuer.domain import applications as apps
from dualres.issuer.domain import evidence, postal
from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.evidence import EvidenceStore, FilesystemStore, Upload
from dualres.issuer.domain.identity import PersonFacts, mynumber
from dualres.issuer.domain.models import Application, Municipality, Person, Registration
from dualres.issuer.domain.oidc import OidcClient, Pending
from dualres.issuer.domain.rules import activity_codes, rule
from dualres.issuer.web.context import now, secure_cookies, services, session
from dualres.issuer.web.dates import date_text
from dualres.schemas import lgcodes, load_json

bp = Blueprint("apply", __name__, url_prefix="/apply", template_folder="templates")

COOKIE: Final = "dualres_apply"
MAX_AGE: Final = 30 * 60  # a sign-in lasts as long as filling in a form reasonably takes
ROWS: Final = 5  # activity rows on the form
# Five files at their limit and the form: app.py lets /apply/ requests be this large.
MAX_REQUEST: Final = evidence.MAX_FILES * evidence.MAX_BYTES + 256 * 1024
CLIENT_ID: Final = "dualres-self-service"

WORDS: Final[dict[str, tuple[str, str]]] = {
    "title": ("ふるさと住民登録 オンライン申請", "Dual-residence registration: apply online"),
    "language": ("English", "日本語"),
    "intro": ("マイナンバーカードで本人確認をして、登録を申請できます。",
              "Sign in with your My Number card to apply for registration."),
    "signin": ("マイナンバーカードでサインイン", "Sign in with the My Number card"),
    "signout": ("サインアウト", "Sign out"),
    "mine": ("あなたの申請", "Your applications"),
    "none": ("申請はまだありません。", "No applications yet."),
    "new": ("新しく申請する", "Apply"),
    "municipality": ("申請先の市区町村", "Municipality"),
    "search": ("市区町村名・ふりがな・郵便番号で検索", "Search by name, kana or postal code"),
    "find": ("検索", "Search"),
    "tier": ("区分", "Tier"),
    "basic": ("ベーシック登録", "Basic registration"),
    "premium": ("プレミアム登録", "Premium registration"),
    "second_home": ("居所（滞在先の住所）", "Second home address"),
    "postal": ("郵便番号", "Postal code"),
    # docs/glossary.ja.md: every field says whether it must be filled.
    "required": ("※必須", "Required"),
    "optional": ("※任意", "Optional"),
    "required_premium": ("※プレミアム登録は必須", "Required for premium registration"),
    "activities": ("過去1年間の活動（プレミアムは3件以上）",
                   "Activities of the past year (premium: at least 3)"),
    "date": ("日付", "Date"),
    "category": ("分野", "Category"),
    "description": ("内容", "Description"),
    "evidence": ("証明書類（PDF・JPEG・PNG、1ファイル2MBまで、5ファイルまで）",
                 "Evidence (PDF, JPEG or PNG, up to 2 MB each, at most 5 files)"),
    "submit": ("申請する", "Submit"),
    "answer": ("補正して再申請する", "Submit the correction"),
    "state": ("状態", "State"),
    "submitted": ("申請中", "Under review"),
    "correction_requested": ("補正依頼", "Correction requested"),
    "approved": ("承認", "Approved"),
    "rejected": ("却下", "Rejected"),
    "note": ("市区町村からの連絡", "Note from the municipality"),
    "back": ("申請一覧へ", "Back to your applications"),
    "signed_in_as": ("サインイン中", "Signed in as"),
    "not_found": ("見つかりません", "Not found"),
    "error": ("入力内容を確認してください", "Please check the form"),
    "renew": ("登録を更新する（有効期限の60日前から）",
              "Renew a registration (from 60 days before expiry)"),
    "valid_until": ("有効期限", "Valid until"),
    "choose": ("どの登録の証明書を受け取りますか", "Which registration to collect"),
    "choose_note": ("お子さまの分は、このスマートフォン（保護者）のウォレットに入ります。",
                    "A child's credential goes into this (the guardian's) wallet."),
    "receive": ("受け取る", "Collect"),
    "collect": ("承認されました。ウォレットで受け取れます。",
                "Approved: collect the credential with your wallet."),
    "child": ("お子さまの登録を申請する（保護者）", "Apply for a child (as the guardian)"),
    "child_note": ("お子さま（18歳未満）の申請はベーシック登録のみです。プレミアム登録にはご本人の"
                   "カード確認が必要です。証明書は保護者のこのウォレットに入ります。",
                   "A child (under 18) can be registered as basic only: premium needs the "
                   "person's own card check. The credential goes into your (the guardian's) "
                   "wallet."),
    "child_facts": ("お子さまの情報", "The child"),
    "family_name": ("姓", "Family name"),
    "given_name": ("名", "Given name"),
    "family_name_kana": ("姓（フリガナ）", "Family name (kana)"),
    "given_name_kana": ("名（フリガナ）", "Given name (kana)"),
    "birthdate": ("生年月日", "Date of birth"),
    "sex": ("性別", "Sex"),
    "male": ("男", "Male"),
    "female": ("女", "Female"),
    "relationship": ("お子さまとの関係", "Your relationship to the child"),
    "parent": ("親（親権者）", "Parent"),
    "guardian": ("未成年後見人", "Legal guardian"),
    "same_address": ("お子さまの住所は私と同じ", "The child lives at my address"),
    "child_address": ("お子さまの住所（私と違う場合）", "The child's address (if not mine)"),
    "child_postal": ("お子さまの住所の郵便番号（私と違う場合）",
                     "Postal code of the child's address (if not mine)"),
    "for_child": ("お子さま", "Child"),
    "too_large": ("送信された内容が大きすぎます。証明書類は1ファイル2MBまで、5ファイルまでです。",
                  "What was sent is too large: evidence is up to 2 MB a file, at most 5 files."),
}  # fmt: skip


# --- the cookie -------------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or b"", salt="dualres-apply")


def _state() -> dict[str, Any]:
    if "apply_state" not in g:
        raw = request.cookies.get(COOKIE, "")
        try:
            value = _serializer().loads(raw, max_age=MAX_AGE) if raw else {}
        except BadSignature:
            value = {}
        g.apply_state = value if isinstance(value, dict) else {}
        g.apply_dirty = False
    state: dict[str, Any] = g.apply_state
    return state


def _save(**changes: Any) -> None:
    st = _state()
    for k, v in changes.items():
        if v is None:
            st.pop(k, None)
        else:
            st[k] = v
    g.apply_dirty = True


@bp.after_request
def _write_cookie(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"  # personal data on every page
    if g.get("apply_dirty"):
        resp.set_cookie(
            COOKIE,
            _serializer().dumps(_state()),
            max_age=MAX_AGE,
            path="/apply/",
            secure=secure_cookies(services().settings),
            httponly=True,
            samesite="Lax",
        )
    return resp


def lang() -> str:
    v = _state().get("lang")
    return v if v in ("ja", "en") else "ja"


def t(key: str) -> str:
    ja, en = WORDS[key]
    return en if lang() == "en" else ja


def _csrf() -> str:
    token = _state().get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        _save(csrf=token)
    return token


@bp.before_request
def _guard() -> None:
    _csrf()
    if request.method == "POST":
        # Evidence files make these requests larger than the API's limit.
        request.max_content_length = MAX_REQUEST
        sent = request.form.get("csrf_token", "")
        if not hmac.compare_digest(sent.encode(), _csrf().encode()):
            raise BadRequest("CSRF token missing or wrong")


def _page(template: str, status: int = 200, **kw: Any) -> tuple[str, int]:
    html = render_template(
        f"apply/{template}",
        t=t,
        lang=lang(),
        day=lambda d: date_text(d, lang()),  # 和暦 with the ISO date, as the console shows it
        csrf=_csrf(),
        signed_in=_applicant() is not None,
        name=_name(),
        **kw,
    )
    return html, status


def render(template: str, **kw: Any) -> tuple[str, int]:
    """One of these pages for another module of /apply/ (authorize.py's chooser)."""
    return _page(template, **kw)


def _name() -> str:
    a = _applicant()
    return f"{a.facts.family_name} {a.facts.given_name}" if a else ""


# --- sign-in ------------------------------------------------------------------------


def _client() -> OidcClient:
    st = services().settings
    issuer = st.oidc_issuer or st.base_url + "/idp"
    http = current_app.config.get("DUALRES_OIDC_HTTP")  # tests route it to this app
    return OidcClient(issuer, CLIENT_ID, st.base_url + "/apply/callback", http=http)


def _applicant() -> apps.Applicant | None:
    who = _state().get("who")
    if not isinstance(who, dict):
        return None
    f = dict(who["facts"])
    f["birthdate"] = date.fromisoformat(f["birthdate"])
    return apps.Applicant(who["key"], PersonFacts(**f))


def current_applicant() -> apps.Applicant | None:
    """Who is signed in at /apply/ (the authorization step of authorize.py reads it)."""
    return _applicant()


def resume_after_signin(path: str) -> None:
    """Where the callback goes after sign-in: only a path of ours, never a URL."""
    if path.startswith("/apply/") and not path.startswith("//"):
        _save(resume=path)


def _require() -> apps.Applicant:
    a = _applicant()
    if a is None:
        raise _SignIn()
    return a


class _SignIn(Exception):
    pass


@bp.errorhandler(_SignIn)
def _to_signin(_: _SignIn) -> BaseResponse:
    return redirect(url_for("apply.index"))


@bp.errorhandler(IssuerError)
def _issuer_error(exc: IssuerError) -> tuple[str, int]:
    return _page("message.html", exc.status, message=_error_text(exc))


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_: RequestEntityTooLarge) -> tuple[str, int]:
    return _page("message.html", 413, message=t("too_large"))


@bp.get("/signin")
def signin() -> BaseResponse:
    url, pending = _client().start()
    _save(pending=[pending.state, pending.nonce, pending.code_verifier])
    return redirect(url)


@bp.get("/callback")
def callback() -> BaseResponse:
    p = _state().get("pending")
    if not isinstance(p, list) or len(p) != 3:
        return redirect(url_for("apply.index"))
    client = _client()
    claims = client.finish(request.url, Pending(*p))
    facts = apps.facts_from_claims(claims)
    key = apps.applicant_key(services().settings.identity_secret, client.issuer, claims["sub"])
    fj = facts.facts()
    fj["birthdate"] = facts.birthdate.isoformat()
    # A new sign-in, a new CSRF token: nothing of a previous visitor's page works.
    resume = _state().get("resume")
    _save(pending=None, resume=None, who={"key": key, "facts": fj}, csrf=secrets.token_urlsafe(24))
    if isinstance(resume, str) and resume.startswith("/apply/authorize/"):
        return redirect(resume)
    return redirect(url_for("apply.index"))


@bp.post("/signout")
def signout() -> BaseResponse:
    _save(who=None, csrf=secrets.token_urlsafe(24))
    return redirect(url_for("apply.index"))


@bp.post("/lang")
def set_lang() -> BaseResponse:
    _save(lang="en" if request.form.get("lang") == "en" else "ja")
    return redirect(url_for("apply.index"))


# --- pages --------------------------------------------------------------------------


def store() -> EvidenceStore:
    override: Callable[[], EvidenceStore] | None = current_app.config.get("DUALRES_EVIDENCE_STORE")
    return override() if override else FilesystemStore(services().settings.evidence_path)


@bp.get("/")
def index() -> tuple[str, int]:
    a = _applicant()
    mine = apps.mine(session(), a.key) if a else []
    return _page("index.html", applications=mine)


def _municipalities(q: str) -> list[tuple[Municipality, str]]:
    """The deployment's municipalities matching a name, kana (hiragana or katakana) or a
    postal code (7 digits, or its first 3 or more: issuer/domain/postal.py)."""
    folded = _fold(q)
    by_postal = postal.municipalities(q, services().settings.data_dir) if q else None
    out = []
    for m in session().execute(select(Municipality).order_by(Municipality.lg_code)).scalars():
        info = lgcodes.lookup(m.lg_code)
        kana = info.kana if info else ""
        if by_postal is not None:
            if m.lg_code in by_postal:
                out.append((m, kana))
        elif not folded or folded in _fold(m.prefecture + m.name) or folded in _fold(kana):
            out.append((m, kana))
    return out


def _fold(text: str) -> str:
    v = unicodedata.normalize("NFKC", text)
    v = "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in v)
    return "".join(v.split())


def _form_data() -> dict[str, Any]:
    f = request.form
    acts = []
    for i in range(ROWS):
        code, desc, day = (f.get(f"act_{k}_{i}", "").strip() for k in ("code", "desc", "date"))
        if code or desc or day:
            acts.append({"code": code, "description": desc, "date": day or None})
    return {
        "tier": f.get("tier", ""),
        "second_home_address": f.get("second_home_address", ""),
        "second_home_postal_code": f.get("second_home_postal_code", ""),
        "activities": acts,
    }


def _uploads() -> list[Upload]:
    out = []
    for fs in request.files.getlist("evidence"):
        data = fs.read()
        if not data and not fs.filename:
            continue  # the browser sends an empty part when no file was chosen
        out.append(Upload(fs.filename or "", data))
    return out


def _refill() -> dict[str, str]:
    """The form as sent, to fill in again after an error; a field holding a My Number
    comes back empty (the error names the field, the page never shows the number)."""
    return {k: v for k, v in request.form.items() if not mynumber.contains_number(v)}


def _categories() -> list[tuple[str, str]]:
    en = lang() == "en"
    rows = load_json("activities.json")
    return [(a["code"], a["en"] if en else a["ja"]) for a in rows if a["code"] in activity_codes()]


def _form_page(status: int = 200, template: str = "new.html", **kw: Any) -> tuple[str, int]:
    """An application form (new.html, or child.html for a guardian's), refilled after an error."""
    q = request.values.get("q", "")
    return _page(
        template,
        status,
        q=q,
        municipalities=_municipalities(q),
        categories=_categories(),
        rows=ROWS,
        form=_refill(),
        **kw,
    )


@bp.get("/new")
def new() -> tuple[str, int]:
    _require()
    return _form_page()


def _error_text(exc: IssuerError) -> str:
    return exc.description if lang() == "en" else (exc.description_ja or exc.description)


def _chosen_municipality() -> Municipality | None:
    code = request.form.get("lg_code", "")
    q = select(Municipality).where(Municipality.lg_code == code)
    return session().execute(q).scalar_one_or_none()


def _submitted(
    make: Callable[[], Application], page: Callable[..., tuple[str, int]]
) -> BaseResponse | tuple[str, int]:
    """Commit the application ``make`` makes and show it; or roll back and show ``page``
    again, with the error beside its field."""
    s = session()
    try:
        app = make()
        s.commit()
    except IssuerError as exc:
        s.rollback()
        return page(exc.status, error=_error_text(exc), field=exc.field or "")
    return redirect(url_for("apply.detail", public_id=app.public_id), 303)


@bp.post("/new")
def submit() -> BaseResponse | tuple[str, int]:
    who = _require()
    m = _chosen_municipality()
    if m is None:
        return _form_page(422, error=t("municipality"), field="lg_code")
    return _submitted(
        lambda: apps.submit(session(), m, who, _form_data(), _uploads(), store=store(), now=now()),
        _form_page,
    )


CHILD_FIELDS: Final = ("family_name", "given_name", "family_name_kana", "given_name_kana")


def _child_data(guardian: apps.Applicant) -> dict[str, Any]:
    """The child's declared facts: the 住所 is the guardian's unless another is given, its
    municipality then found from the postal code (a person knows it; nobody knows a
    local government code)."""
    f = request.form
    child: dict[str, Any] = {k: f.get(k, "") for k in CHILD_FIELDS}
    child["birthdate"] = f.get("birthdate", "")
    if f.get("sex") in ("male", "female"):
        child["sex"] = f["sex"]
    if f.get("same_address", "") or not f.get("child_address", "").strip():
        child["address"] = guardian.facts.address
        child["address_lg_code"] = guardian.facts.address_lg_code
    else:
        child["address"] = f.get("child_address", "")
        found = postal.municipalities(f.get("child_postal", ""), services().settings.data_dir)
        if not found or len(found) != 1:
            raise rule("unknown_postal_code")
        child["address_lg_code"] = next(iter(found))
    # The page sends basic; a forged premium is refused by the rule, not silently changed.
    return {**_form_data(), "tier": f.get("tier") or "basic", "child": child,
            "relationship": f.get("relationship", "")}  # fmt: skip


def _child_page(status: int = 200, **kw: Any) -> tuple[str, int]:
    return _form_page(status, "child.html", **kw)


@bp.get("/child")
def child() -> tuple[str, int]:
    _require()
    return _child_page()


@bp.post("/child")
def submit_child() -> BaseResponse | tuple[str, int]:
    who = _require()
    m = _chosen_municipality()
    if m is None:
        return _child_page(422, error=t("municipality"), field="lg_code")
    return _submitted(
        lambda: apps.submit_for_child(session(), m, who, _child_data(who), store=store(),
                                      now=now(), settings=services().settings),
        _child_page,
    )  # fmt: skip


def _own_registrations(key: str) -> list[tuple[Municipality, str]]:
    q = (
        select(Registration)
        .join(Person, Registration.person_id == Person.id)
        .where(Person.person_key == key, Registration.state == "active")
        .order_by(Registration.valid_until)
    )
    out = []
    for reg in session().execute(q).scalars():
        out.append((reg.municipality, f"{t('valid_until')} {reg.valid_until.isoformat()}"))
    return out


def _renew_page(who: apps.Applicant, status: int = 200, **kw: Any) -> tuple[str, int]:
    return _page("new.html", status, renew=True, q="", municipalities=_own_registrations(who.key),
                 categories=_categories(), rows=ROWS, form=_refill(), **kw)  # fmt: skip


@bp.get("/renew")
def renew() -> tuple[str, int]:
    return _renew_page(_require())


@bp.post("/renew")
def submit_renewal() -> BaseResponse | tuple[str, int]:
    who = _require()
    m = _chosen_municipality()

    def make() -> Application:
        if m is None:
            raise rule("nothing_to_renew")
        return apps.submit_renewal(session(), m, who, _form_data(), _uploads(), store=store(),
                                   now=now())  # fmt: skip

    return _submitted(make, lambda status, **kw: _renew_page(who, status, **kw))


@bp.get("/a/<public_id>")
def detail(public_id: str) -> tuple[str, int]:
    who = _require()
    app = apps.get_mine(session(), who.key, public_id)
    return _detail(app)


def _detail(app: Application, status: int = 200, **kw: Any) -> tuple[str, int]:
    return _page(
        "detail.html",
        status,
        a=app,
        categories=dict(_categories()),
        rows=ROWS,
        form=_refill(),
        **kw,
    )


@bp.post("/a/<public_id>/answer")
def answer(public_id: str) -> BaseResponse | tuple[str, int]:
    who = _require()
    s = session()
    app = apps.get_mine(s, who.key, public_id)
    try:
        apps.answer_correction(s, app, who, _form_data(), _uploads(), store=store(), now=now())
        s.commit()
    except IssuerError as exc:
        s.rollback()
        app = apps.get_mine(s, who.key, public_id)
        return _detail(app, exc.status, error=_error_text(exc), field=exc.field or "")
    return redirect(url_for("apply.detail", public_id=public_id), 303)

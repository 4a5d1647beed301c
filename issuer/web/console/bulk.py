"""Bulk import from CSV and export to CSV, the way municipal systems exchange files.

Import is two steps.  *Check*: every line goes through ``create_registration``
in a transaction that is rolled back, and the page lists every refusal by
line and column.  *Import*: only lines whose check passed (the page carries a
signed ticket of their digest, made only when the check passed), every rule
applied again, all lines in one transaction committed at the end, or nothing.

Both steps stream their page: the top of the page first, then a ``<progress>``
element every few lines (the stylesheet shows only the last one, so the bar
moves without any script), then the outcome.  The bar counts lines really
done in the transaction; a dropped connection ends the generator, which rolls
back.  A proxy must not buffer the response (``X-Accel-Buffering: no`` asks
nginx not to); if one does, the page still arrives whole, only all at once.

Export writes what the search form selects, this municipality only, in the
import's columns (then id, state, etc.), as UTF-8 with a BOM (Excel opens it
as UTF-8) or Shift_JIS (cp932, Excel's Japanese encoding).  No My Number is
stored, so none can be exported.  Every export is audited.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any, Final

from flask import current_app, render_template, request, stream_with_context
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from dualres.issuer.domain import audit, parse, registrations, rules
from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.models import Municipality, Registration
from dualres.issuer.web.console.base import actor, bp, message, municipality, staff, t
from dualres.issuer.web.console.views import (
    activities,
    registration_request,
    search_args,
    search_filters,
    search_page,
)
from dualres.issuer.web.context import now, services
from dualres.issuer.web.context import session as db_session
from dualres.verifier.wareki import JST

log = logging.getLogger("dualres.issuer.console")

IMPORT_COLUMNS: Final = (
    *parse.DECLARED_FIELDS,
    "tier",
    "activities",
    "second_home_address",
    "postal_code",
    "valid_from",
    "valid_until",
    "registered_since",
)
# column -> (required, 日本語, English, example)
COLUMN_DOCS: Final[dict[str, tuple[bool, str, str, str]]] = {
    "family_name": (True, "氏", "Family name", "山川"),
    "given_name": (True, "名", "Given name", "太郎"),
    "family_name_kana": (True, "氏のフリガナ（ひらがなも可）", "Family name in kana", "ヤマカワ"),
    "given_name_kana": (True, "名のフリガナ", "Given name in kana", "タロウ"),
    "birthdate": (True, "生年月日（YYYY-MM-DD、西暦）", "Date of birth (YYYY-MM-DD)", "1990-01-01"),
    "sex": (False, "性別（male / female）", "Sex (male / female)", "male"),
    "address": (True, "住所（住民票の住所）", "Address (legal residence)",
                "東京都港区芝公園一丁目1番1号"),
    "address_lg_code": (True, "住所の全国地方公共団体コード（6桁）",
                        "Local government code of the address (6 digits)", "131032"),
    "tier": (True, "区分（basic のみ）", "Tier (basic only)", "basic"),
    "activities": (True, "活動内容のコード（; 区切り）", "Activity codes, separated by ;",
                   "telework;volunteer"),
    "second_home_address": (True, "居所の住所", "Second-home address", "軽井沢町長倉1"),
    "postal_code": (False, "居所の郵便番号（NNN-NNNN）", "Postal code (NNN-NNNN)", "389-0111"),
    "valid_from": (False, "有効期間の開始日（空欄は本日）", "Valid from (empty: today)",
                   "2026-11-18"),
    "valid_until": (True, "有効期間の終了日", "Valid until", "2027-11-17"),
    "registered_since": (False, "居住開始日", "Living there since", ""),
}  # fmt: skip
# After the import's columns, what only an export can say.
EXPORT_EXTRA: Final = ("id", "state", "state_reason", "identity_checked", "created_at")
EXPORT_ENCODINGS: Final = {"utf-8": "utf-8-sig", "shift_jis": "cp932"}
MAX_IMPORT_ROWS: Final = 1000
TICKET_SECONDS: Final = 3600
BAR_STEPS: Final = 50
_MARK: Final = "<!--progress-->"
# Excel runs a cell that starts like a formula; a leading ' keeps it text.
_FORMULA: Final = ("=", "+", "-", "@", "\t", "\r")


# --- reading a file ----------------------------------------------------------------------------


def _import_column(exc: IssuerError) -> str:
    f = exc.field or ""
    if f.startswith("activities"):
        return "activities"
    f = f.removeprefix("identity.declared.")
    return {"second_home.address": "second_home_address",
            "second_home.postal_code": "postal_code"}.get(f, f)  # fmt: skip


def _import_request(row: dict[str, str]) -> dict[str, Any]:
    def cell(k: str) -> str:
        return (row.get(k) or "").strip()

    declared: dict[str, Any] = {k: cell(k) for k in parse.DECLARED_FIELDS if cell(k)}
    acts = [a.strip() for a in re.split(r"[;、,]", cell("activities")) if a.strip()]
    return {"identity": {"declared": declared}, **registration_request(cell, acts)}


def _line_problems(
    row: dict[str, str], first: IssuerError, at: Any, settings: Any
) -> list[IssuerError]:
    try:
        req = parse.parse_new(_import_request(row))
    except IssuerError:
        return [first]  # the line's shape is wrong: that one message says it
    problems = registrations.form_problems(req, rules.today(at), settings)
    return problems if len(problems) > 1 else [first]


def _decode(raw: bytes) -> str | None:
    for encoding in ("utf-8-sig", "cp932"):  # UTF-8, or Excel's Japanese Shift_JIS
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def _parse(content: str) -> list[dict[str, str]] | str:
    """The rows of a CSV text, or the words of why it cannot be read."""
    reader = csv.DictReader(io.StringIO(content, newline=""))
    try:
        header = reader.fieldnames or []
    except csv.Error:
        return t("import_encoding")
    missing = [c for c in ("family_name", "birthdate", "tier", "valid_until") if c not in header]
    if missing:
        return t("import_header") + ", ".join(IMPORT_COLUMNS)
    rows: list[dict[str, str]] = []
    try:
        for row in reader:
            rows.append({k: v for k, v in row.items() if isinstance(k, str) and isinstance(v, str)})
            if len(rows) > MAX_IMPORT_ROWS:
                return t("import_too_many").format(n=MAX_IMPORT_ROWS)
    except csv.Error:
        return t("import_encoding")
    if not rows:
        return t("import_empty")
    return rows


def _digest(rows: list[dict[str, str]]) -> str:
    # Of the parsed rows, not the bytes: a form re-sends text with CRLF line ends.
    blob = json.dumps(rows, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _to_csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(IMPORT_COLUMNS), extrasaction="ignore",
                       lineterminator="\n")  # fmt: skip
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()


def _import_page(error: str | None, status: int) -> tuple[str, int]:
    return render_template(
        "console/import.html",
        error=error,
        columns=IMPORT_COLUMNS,
        docs=COLUMN_DOCS,
        max_rows=MAX_IMPORT_ROWS,
        activities=activities(),
    ), status


# --- the two steps -----------------------------------------------------------------------------


@bp.get("/import")
def bulk_import() -> tuple[str, int]:
    return _import_page(None, 200)


@bp.get("/import/template.csv")
def import_template() -> Response:
    body = ",".join(IMPORT_COLUMNS) + "\r\n"
    return Response(
        body.encode("utf-8-sig"),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="dualres-import-template.csv"'},
    )


@bp.post("/import")
def import_check() -> Response | tuple[str, int]:
    """Step 1: read the uploaded file and try every line; nothing is kept."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _import_page(t("import_no_file"), 400)
    content = _decode(upload.read())
    rows = _parse(content) if content is not None else t("import_encoding")
    if isinstance(rows, str):
        return _import_page(rows, 400)
    return _run(rows, commit=False)


@bp.post("/import/run")
def import_run() -> Response | tuple[str, int]:
    """Step 2: the checked lines again, in one transaction."""
    rows = _parse(request.form.get("csv", ""))
    if isinstance(rows, str):
        return _import_page(rows, 400)
    try:
        ticket = _tickets().loads(request.form.get("ticket", ""), max_age=TICKET_SECONDS)
    except BadData:
        ticket = None
    if ticket != {"staff": staff().id, "rows": _digest(rows)}:
        return _import_page(t("import_check_first"), 400)
    return _run(rows, commit=True)


def _tickets() -> URLSafeTimedSerializer:
    # Signed with the session key: proof that these very rows passed a check
    # by this staff member, made only once the check has passed.
    key = current_app.secret_key
    if not key:  # set by the console's set-up; without it no ticket could be trusted
        raise RuntimeError("the console has no session key")
    return URLSafeTimedSerializer(key, salt="dualres-console-import")


def _run(rows: list[dict[str, str]], *, commit: bool) -> Response:
    svc = services()
    m_id = municipality().id
    who, at, settings = actor(), now(), svc.settings
    total = len(rows)
    step = max(1, total // BAR_STEPS)
    ticket = _tickets().dumps({"staff": staff().id, "rows": _digest(rows)})
    page = render_template("console/import_run.html", commit=commit, total=total, mark=_MARK)
    top, bottom = page.split(_MARK, 1)

    def bar(done: int) -> str:
        return (f'<progress max="{total}" value="{done}" aria-labelledby="progress-label">'
                f"{done} / {total}</progress>\n")  # fmt: skip

    def lines() -> Iterator[str]:
        yield top
        yield bar(0)
        problems: list[tuple[int, str, str]] = []
        failed = False
        # Its own session: Flask tears the request's down once the view returns,
        # before the first line of a streamed body is produced.
        s = svc.db.sessions()
        try:
            m = s.get(Municipality, m_id)
            assert m is not None
            for done, row in enumerate(rows, start=1):
                try:
                    with s.begin_nested():
                        registrations.create_registration(
                            s, m, _import_request(row), actor=who, now=at, settings=settings
                        )
                except IssuerError as exc:
                    # Every rule the line breaks, not only the first: one fix per line.
                    for e in _line_problems(row, exc, at, settings):
                        problems.append((done + 1, _import_column(e), message(e)))  # +1: header
                if done % step == 0 or done == total:
                    yield bar(done)
            if commit and not problems:
                s.commit()
            else:
                s.rollback()  # a check, or a line refused: nothing is kept
        except Exception as exc:  # the page is already on its way: say so in it
            s.rollback()
            failed = True
            log.error("import stopped by %s", type(exc).__name__)
        finally:
            s.close()
        yield render_template(
            "console/_import_outcome.html",
            commit=commit,
            failed=failed,
            problems=problems,
            total=total,
            csv_text=_to_csv(rows) if not commit and not problems and not failed else "",
            ticket=ticket,
        )
        yield bottom

    return Response(
        stream_with_context(lines()),
        mimetype="text/html",
        headers={"X-Accel-Buffering": "no"},
    )


# --- export ------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _export_row(r: Registration) -> list[str]:
    created = r.created_at
    values: list[Any] = [
        r.family_name,
        r.given_name,
        r.family_name_kana,
        r.given_name_kana,
        r.birthdate.isoformat(),
        r.sex,
        r.primary_address,
        r.primary_lg_code,
        r.tier,
        ";".join(r.activities or []),
        r.second_home_address,
        r.second_home_postal_code,
        r.valid_from.isoformat(),
        r.valid_until.isoformat(),
        r.registered_since.isoformat(),
        r.public_id,
        r.state,
        r.state_reason,
        "card" if r.identity_checked else "declared",
        created.astimezone(JST).isoformat(timespec="seconds"),
    ]
    return [_cell(v) for v in values]


def _line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()


@bp.route("/export.csv", methods=["GET", "POST"])
def export() -> Response | tuple[str, int]:
    # The search page's export form posts (a name stays out of the URL); a GET still
    # exports by state, tier and dates, and refuses a name (views.search_filters).
    args = search_args()
    errors: dict[str, str] = {}
    where = search_filters(args, errors)
    if errors:
        return search_page(t("export_filters"), 400)
    chosen = args.get("encoding", "utf-8")
    encoding = EXPORT_ENCODINGS.get(chosen)
    if encoding is None:
        return search_page(t("bad_request"), 400)
    s = db_session()
    query = select(Registration).where(*where).order_by(Registration.id)
    count = s.execute(select(func.count()).select_from(Registration).where(*where)).scalar_one()
    if encoding == "cp932":
        # Refuse up front rather than write 〓 in someone's name.
        bad = [n for n, r in enumerate(s.execute(query.execution_options(yield_per=500))
                                       .scalars(), start=2)
               if not _encodes(_line(_export_row(r)), encoding)]  # fmt: skip
        if bad:
            lines = ", ".join(str(n) for n in bad[:20]) + (" …" if len(bad) > 20 else "")
            return search_page(t("export_sjis").format(lines=lines), 422)
    used = {k: args[k] for k in ("state", "tier", "created_from", "created_to") if args.get(k)}
    if args.get("q", "").strip():
        used["q"] = "(name)"  # who was looked for is personal data: only that there was a name
    audit.append(
        s, municipality(), actor=actor(), action="registration.export", target=None,
        detail={"rows": count, "encoding": chosen, "filters": used}, now=now(),
    )  # fmt: skip
    s.commit()
    stamp = now().astimezone(JST).strftime("%Y%m%d-%H%M")
    name = f"dualres-{municipality().lg_code}-{stamp}.csv"

    svc = services()

    def body() -> Iterator[bytes]:
        yield _line([*IMPORT_COLUMNS, *EXPORT_EXTRA]).encode(encoding)  # utf-8-sig: the BOM
        plain = "utf-8" if encoding == "utf-8-sig" else encoding
        with svc.db.sessions() as own:  # the request's is closed once the view returns
            for r in own.execute(query.execution_options(yield_per=500)).scalars():
                yield _line(_export_row(r)).encode(plain)

    charset = "utf-8" if chosen == "utf-8" else "Shift_JIS"
    return Response(
        stream_with_context(body()),
        content_type=f"text/csv; charset={charset}",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _encodes(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True

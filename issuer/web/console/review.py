"""The review queue of online applications (issue 12, docs/console.md): per municipality,
filtered by state and tier; approve, ask for a correction, reject with a reason.

Who may approve or reject which tier is ``Settings.review_roles`` (default: clerks basic,
supervisors premium); the domain checks it (applications.may_decide).  Another
municipality's application, or its evidence, is 404 exactly as if it did not exist.
The words live here, not in the console's glossary, so this screen adds to the console
without touching its shared tables.
"""

from __future__ import annotations

from typing import Final

from flask import Response, abort, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from dualres.issuer.domain import applications as apps
from dualres.issuer.domain.errors import IssuerError, NotFound
from dualres.issuer.domain.models import Application
from dualres.issuer.web.apply import store
from dualres.issuer.web.console.base import actor, bp, lang, message, municipality, staff
from dualres.issuer.web.context import now, services
from dualres.issuer.web.context import session as db_session
from dualres.schemas import load_json

WORDS: Final[dict[str, tuple[str, str]]] = {
    "applications": ("オンライン申請", "Online applications"),
    "all": ("すべて", "All"),
    "filter": ("絞り込む", "Filter"),
    "none": ("該当する申請はありません。", "No applications."),
    "received": ("受付日時", "Received"),
    "name": ("氏名", "Name"),
    "submitted": ("申請中", "Under review"),
    "correction_requested": ("補正依頼", "Correction requested"),
    "approved": ("承認", "Approved"),
    "rejected": ("却下", "Rejected"),
    "approve": ("承認する", "Approve"),
    "correction": ("補正を依頼する", "Ask for a correction"),
    "reject": ("却下する", "Reject"),
    "reason": ("理由・連絡事項", "Reason or note"),
    "evidence": ("証明書類", "Evidence"),
    "deleted": ("（保存期間経過のため削除済み）", "(deleted after the retention period)"),
    "registration": ("作成された登録", "Registration created"),
    "may_not": ("この区分の申請は決定できません（権限）", "Your role may not decide this tier"),
    "by_guardian": ("保護者による申請（18歳未満のお子さま）",
                    "Applied for by a guardian (a child under 18)"),
    "relationship": ("申請者との関係", "Applicant's relationship"),
    "parent": ("親（親権者）", "Parent"),
    "guardian": ("未成年後見人", "Legal guardian"),
    "child_mark": ("（お子さま）", "(child)"),
}  # fmt: skip


def rt(key: str) -> str:
    ja, en = WORDS[key]
    return en if lang() == "en" else ja


def _acts() -> dict[str, str]:
    return {a["code"]: a["en" if lang() == "en" else "ja"] for a in load_json("activities.json")}


@bp.get("/applications")
def applications() -> str:
    state = request.args.get("state", "")
    tier = request.args.get("tier", "")
    rows = apps.queue(
        db_session(),
        municipality(),
        state=state if state in apps.STATES else None,
        tier=tier if tier in ("basic", "premium") else None,
    )
    return render_template(
        "console/applications.html", rows=rows, state=state, tier=tier, rt=rt,
        states=apps.STATES,
    )  # fmt: skip


def _page(a: Application, *, error: str | None = None, status: int = 200) -> tuple[str, int]:
    settings = services().settings
    html = render_template(
        "console/application.html",
        a=a,
        rt=rt,
        acts=_acts(),
        error=error,
        may_decide=apps.may_decide(settings, staff().role, a.tier),
    )
    return html, status


@bp.get("/applications/<public_id>")
def application(public_id: str) -> tuple[str, int]:
    return _page(apps.get_application(db_session(), municipality(), public_id))


@bp.get("/applications/<public_id>/evidence/<evidence_id>")
def evidence_file(public_id: str, evidence_id: str) -> Response:
    a = apps.get_application(db_session(), municipality(), public_id)
    ev = next((e for e in a.evidence if e.public_id == evidence_id), None)
    if ev is None or ev.deleted_at is not None:
        raise NotFound("evidence")
    resp = make_response(store().get(ev.ref))
    # Always a download of the type the content proved, never rendered in the console's origin.
    resp.headers["Content-Type"] = ev.media_type
    resp.headers["Content-Disposition"] = f"attachment; filename=evidence-{ev.public_id}"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return resp


@bp.post("/applications/<public_id>/<action>")
def decide(public_id: str, action: str) -> BaseResponse | tuple[str, int]:
    s = db_session()
    a = apps.get_application(s, municipality(), public_id)  # 404 before anything else
    settings = services().settings
    note = request.form.get("reason", "")
    try:
        if action == "approve":
            apps.approve(s, a, actor=actor(), role=staff().role, now=now(), settings=settings)
        elif action == "correction":
            apps.request_correction(s, a, note=note, actor=actor(), now=now())
        elif action == "reject":
            apps.reject(s, a, reason=note, actor=actor(), role=staff().role, now=now(),
                        settings=settings)  # fmt: skip
        else:
            abort(404)
        s.commit()
    except IssuerError as exc:
        s.rollback()
        a = apps.get_application(s, municipality(), public_id)
        return _page(a, error=message(exc), status=exc.status)
    return redirect(url_for("console.application", public_id=public_id), 303)

"""The console's review queue of online applications (issue 12): per municipality, by state
and tier; approve / ask for a correction / reject; roles per tier; audited; other
municipalities 404, evidence included."""

from __future__ import annotations

import html
from typing import Any

from sqlalchemy import select

from dualres.issuer.domain import applications as apps
from dualres.issuer.domain.evidence import FilesystemStore, Upload
from dualres.issuer.domain.models import AuditEntry, Municipality, Registration
from dualres.issuer.web.context import services
from tests.issuer_support import T0
from tests.test_applications import form, pdf, who
from tests.test_console import signed_in, staff, text_of  # noqa: F401


def apply(app: Any, tier: str = "premium", code: str = "203211") -> str:
    with app.app_context(), services().db.session() as s:
        m = s.execute(select(Municipality).where(Municipality.lg_code == code)).scalar_one()
        st = FilesystemStore(services().settings.evidence_path)
        files = [Upload("領収書.pdf", pdf())] if tier == "premium" else []
        a = apps.submit(s, m, who(), form(tier), files, store=st, now=T0)
        return a.public_id


def test_queue_filters_and_isolation(app, staff) -> None:  # noqa: F811
    premium = apply(app)
    basic = apply(app, "basic", "011002")
    b = signed_in(app, "clerk")
    page = html.unescape(text_of(b.get("/applications")))
    assert "1 件" in page and "山田 花子" in page
    assert "0 件" in text_of(b.get("/applications", query_string={"tier": "basic"}))
    assert "1 件" in text_of(b.get("/applications", query_string={"state": "submitted"}))
    # 札幌市's application does not exist for 軽井沢町's staff, nor its evidence.
    assert b.get(f"/applications/{basic}").status_code == 404
    assert b.post(f"/applications/{basic}/approve").status_code == 404
    other = signed_in(app, "sapporo")
    assert other.get(f"/applications/{premium}").status_code == 404
    page = text_of(b.get(f"/applications/{premium}"))
    ev = page.split("/evidence/")[1].split('"')[0]
    r = b.c.get(f"/console/applications/{premium}/evidence/{ev}", base_url="https://issuer.test")
    assert r.status_code == 200 and r.data == pdf()
    assert r.headers["Content-Type"] == "application/pdf"
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    r = other.c.get(
        f"/console/applications/{premium}/evidence/{ev}", base_url="https://issuer.test"
    )
    assert r.status_code == 404
    assert app.test_client().get(f"/console/applications/{premium}/evidence/{ev}",
                                 base_url="https://issuer.test").status_code == 302  # fmt: skip


def test_clerk_asks_for_correction_supervisor_approves_premium(app, staff) -> None:  # noqa: F811
    premium = apply(app)
    clerk = signed_in(app, "clerk")
    page = text_of(clerk.get(f"/applications/{premium}"))
    assert 'id="approve"' not in page  # a clerk may not decide premium by default
    r = clerk.post(f"/applications/{premium}/approve")
    assert r.status_code == 403 and "権限" in html.unescape(text_of(r))
    r = clerk.post(f"/applications/{premium}/correction", {"reason": ""})
    assert r.status_code == 400
    r = clerk.post(f"/applications/{premium}/correction", {"reason": "日付を確認してください"})
    assert r.status_code == 303
    with app.app_context(), services().db.session() as s:
        a = s.execute(select(apps.Application)).scalar_one()
        apps.answer_correction(s, a, who(), form(), [], store=FilesystemStore(
            services().settings.evidence_path), now=T0)  # fmt: skip
    sup = signed_in(app, "super")
    r = sup.post(f"/applications/{premium}/approve")
    assert r.status_code == 303
    page = text_of(sup.get(f"/applications/{premium}"))
    assert 'data-state="approved"' in page
    with app.app_context(), services().db.session() as s:
        reg = s.execute(select(Registration)).scalar_one()
        assert reg.tier == "premium"
        entries = s.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
        acts = [(e.action, e.actor) for e in entries if e.action.startswith(("application", "reg"))]
        assert acts[-2:] == [("registration.create", "staff:super (supervisor)"),
                             ("application.approve", "staff:super (supervisor)")]  # fmt: skip
        assert ("application.correction", "staff:clerk (clerk)") in acts


def test_clerk_approves_basic_and_rejects_with_reason(app, staff) -> None:  # noqa: F811
    apply(app, "basic")
    clerk = signed_in(app, "clerk")
    basic = clerk.get("/applications").get_data(as_text=True).split("/applications/")[1][:22]
    basic = basic.split('"')[0]
    r = clerk.post(f"/applications/{basic}/reject", {"reason": "居所が確認できません"})
    assert r.status_code == 303
    page = html.unescape(text_of(clerk.get(f"/applications/{basic}")))
    assert "却下" in page and "居所が確認できません" in page
    assert clerk.post(f"/applications/{basic}/approve").status_code == 409

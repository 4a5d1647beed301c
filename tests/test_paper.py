"""The paper 登録証: printed from the console, read back from the rendered PDF page.

The PDF is rendered to an image by poppler's ``pdftoppm`` (as a printer or a
scan would see it), its QR decoded by zxing-cpp, and the text verified offline
against a bundle synced from the same deployment: accepted under the office
profile with the photo-ID instruction, refused at the shop counter, revoked
with the registration.  Runs on SQLite and PostgreSQL (the ``app`` fixture).

With ``DUALRES_SCREENSHOTS=docs/screenshots`` it writes paper-card.png there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest
from sqlalchemy import select

from dualres.issuer.config import ROOT
from dualres.issuer.domain import paper
from dualres.issuer.domain.models import AuditEntry, Credential
from dualres.issuer.web.context import services
from dualres.verifier import Bundle, MemoryReplayStore, Reason, verify
from dualres.verifier.scan import decode_qr_image
from dualres.verifier.sync import sync
from dualres.verifier.wire import jws
from tests.test_console import register, signed_in, staff, text_of  # noqa: F401

ANCHOR = jws.load_public_pem((ROOT / "keys.example" / "trust-anchor.pub.pem").read_bytes())
pytestmark = pytest.mark.skipif(
    shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) is not installed"
)


def _bundle(app, clock) -> Bundle:
    def fetch(url: str) -> bytes:
        r = app.test_client().get(urllib.parse.urlsplit(url).path)
        assert r.status_code == 200, (url, r.status_code)
        return bytes(r.data)

    base = services_settings(app).base_url
    return sync(
        f"{base}/trust-list",
        [ANCHOR],
        now=int(clock().timestamp()),
        fetch_source=fetch,
        fetch_status=fetch,
    ).bundle


def services_settings(app):
    with app.app_context():
        return services().settings


def _render(pdf: bytes, tmp_path: Path, dpi: int = 300) -> Path:
    src = tmp_path / "card.pdf"
    src.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-png", "-singlefile", str(src), str(tmp_path / "card")],
        check=True,
        timeout=60,
    )
    return tmp_path / "card.png"


def test_paper_card_printed_scanned_and_verified(app, staff, clock, tmp_path: Path) -> None:  # noqa: F811
    sup = signed_in(app, "super")
    reg = register(sup)
    page = text_of(sup.get(f"/registrations/{reg}"))
    assert "紙の登録証を印刷する（PDF）" in page
    # Not Console.post: the answer is a PDF, not a page with a CSRF token to keep.
    r = sup.c.post(
        f"/console/registrations/{reg}/paper",
        data={"csrf_token": sup.token},
        base_url="https://issuer.test",
    )
    assert r.status_code == 200, r.data[:500]
    assert r.headers["Content-Type"] == "application/pdf"
    assert r.headers["Cache-Control"] == "no-store"
    pdf = bytes(r.data)
    assert pdf.startswith(b"%PDF-")

    png = _render(pdf, tmp_path)
    if os.environ.get("DUALRES_SCREENSHOTS"):
        out = Path(os.environ["DUALRES_SCREENSHOTS"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(png, out / "paper-card.png")
    # A card at 300 dpi: what a printer makes of it.
    from PIL import Image

    with Image.open(png) as im:
        w, h = im.size
    assert (round(w / 300 * 25.4), round(h / 300 * 25.4)) == (86, 54)
    texts = decode_qr_image(png)
    assert len(texts) == 1 and texts[0].startswith("DR2:")
    payload = texts[0]

    bundle = _bundle(app, clock)
    now = int(clock().timestamp())
    office = verify(payload, bundle, "office", now=now, replay=MemoryReplayStore())
    assert office.ok, office.detail
    assert office.warnings == ("paper_compare_photo_id",)
    assert office.claims["person"]["family_name"] == "山田"
    assert set(office.claims) == set(paper.DISCLOSURES)  # nothing more than an office needs
    assert office.issuer is not None and office.issuer.lg_code == "203211"
    counter = verify(payload, bundle, "counter", now=now, replay=MemoryReplayStore())
    assert counter.reason is Reason.HOLDER_BINDING_MISSING

    with app.app_context(), services().db.session() as s:
        cred = s.execute(select(Credential)).scalar_one()
        assert cred.holder_thumbprint == "paper"
        actions = s.execute(select(AuditEntry.action)).scalars().all()
        assert "credential.issue_paper" in actions

    # Revoking the registration reaches the paper, once the verifier syncs.
    revoke = {"reason": "転出", "confirm": "1"}
    assert sup.post(f"/registrations/{reg}/revoke", revoke).status_code == 302
    later = verify(payload, _bundle(app, clock), "office", now=now, replay=MemoryReplayStore())
    assert later.reason is Reason.REVOKED


def test_paper_needs_an_active_registration_and_a_font(
    app,
    staff,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sup = signed_in(app, "super")
    reg = register(sup)
    monkeypatch.setattr(paper, "FONT_CANDIDATES", ("/nonexistent/font.ttc",))
    monkeypatch.setenv("DUALRES_PDF_FONT", "/nonexistent/other.ttc")
    sup.get(f"/registrations/{reg}")
    r = sup.post(f"/registrations/{reg}/paper")
    assert r.status_code == 503
    assert "日本語フォントがありません" in text_of(r)
    with app.app_context(), services().db.session() as s:
        assert s.execute(select(Credential)).first() is None  # nothing signed, nothing kept
    monkeypatch.undo()
    revoke = {"reason": "転出", "confirm": "1"}
    assert sup.post(f"/registrations/{reg}/revoke", revoke).status_code == 302
    sup.get(f"/registrations/{reg}")
    r = sup.post(f"/registrations/{reg}/paper")
    assert r.status_code == 409
    r = sup.post(f"/registrations/{reg}/paper", token=False)
    assert r.status_code in (400, 403)

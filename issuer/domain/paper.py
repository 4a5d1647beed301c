"""The paper 登録証: a card-sized PDF for a resident without a smartphone.

The card carries a credential like any other (its own status slot, revoked
with the registration) but signed without a holder key (no ``cnf``): paper
cannot prove who holds it.  Its QR discloses only what an office needs (the
person and the municipality of the 住所), so verifiers accept it under the
office and shelter profiles, each time with the instruction to compare the
name and birth date with a photo ID, and never at a shop counter
(docs/paper.md).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Final

from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.models import Registration
from dualres.issuer.domain.offers import qr_png
from dualres.verifier import wareki
from dualres.verifier.wire import sdjwt, transport

DISCLOSURES: Final = ("person", "primary_residence")
CARD_MM: Final = (85.6, 54.0)  # ISO/IEC 7810 ID-1, the size of a My Number card
# Noto Sans CJK (Debian's fonts-noto-cjk); index 0 of the collection is JP.
FONT_CANDIDATES: Final = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
)
TIER_WORDS: Final = {"basic": "ベーシック登録", "premium": "プレミアム登録"}


def qr_text(compact: str) -> str:
    """The card's QR: the office's disclosures, no KB-JWT, in the DR1 transport."""
    return transport.encode(sdjwt.select(compact, DISCLOSURES).compact)


def font_path(candidates: Sequence[str] | None = None) -> str:
    """The Japanese font; ``DUALRES_PDF_FONT`` names another (a .ttf, .otf or .ttc)."""
    chosen = os.environ.get("DUALRES_PDF_FONT")
    listed = FONT_CANDIDATES if candidates is None else candidates
    for path in ([chosen] if chosen else []) + list(listed):
        if Path(path).is_file():
            return path
    raise IssuerError(
        "pdf_font_missing",
        "no Japanese font for the paper card: install fonts-noto-cjk or set DUALRES_PDF_FONT",
        status=503,
        description_ja="紙の登録証に使う日本語フォントがありません（fonts-noto-cjk を導入するか"
        " DUALRES_PDF_FONT を設定してください）",
    )


def render_card(
    reg: Registration, text: str, *, municipality: str, valid_until: date, issued_on: date
) -> bytes:
    """The card as PDF bytes: the QR on the left, the facts a clerk compares on the right."""
    from fpdf import FPDF  # the issuer extra; imported here so the domain loads without it

    font = font_path()
    pdf = FPDF(unit="mm", format=CARD_MM)
    pdf.set_auto_page_break(False)
    pdf.set_margin(0)
    pdf.set_title("ふるさと住民登録証（紙）")
    pdf.set_creator("dualres")
    pdf.add_page()
    pdf.add_font("jp", "", font, collection_font_number=0)
    pdf.set_draw_color(120, 120, 120)
    pdf.rect(0.4, 0.4, CARD_MM[0] - 0.8, CARD_MM[1] - 0.8)
    side = 42.0
    # Smaller modules and quiet zone than an offer's QR on a screen: it fits the card.
    pdf.image(io.BytesIO(qr_png(text, box_size=6, border=2)), x=2.5, y=3.0, w=side, h=side)

    x, width = 46.5, CARD_MM[0] - 48.5

    def line(y: float, size: float, words: str) -> None:
        pdf.set_font("jp", size=size)
        pdf.set_xy(x, y)
        pdf.cell(width, size * 0.45, words)

    line(3.5, 8.5, "ふるさと住民登録証")
    line(8.0, 6.5, f"{municipality}　{TIER_WORDS.get(reg.tier, reg.tier)}")
    line(13.0, 5, "氏名")
    line(15.5, 9, f"{reg.family_name} {reg.given_name}")
    line(20.5, 6, f"{reg.family_name_kana} {reg.given_name_kana}")
    line(25.0, 5, "生年月日")
    line(27.5, 7, wareki.wareki(reg.birthdate))
    line(32.0, 5, "有効期限")
    line(34.5, 7, wareki.wareki(valid_until))
    line(39.5, 4.5, f"交付日 {wareki.wareki(issued_on)}")
    pdf.set_font("jp", size=4.6)
    pdf.set_xy(2.5, 46.0)
    pdf.multi_cell(
        CARD_MM[0] - 5,
        2.3,
        "確認する方へ：学校・保育・医療機関・避難所の確認アプリで読み取り、氏名と生年月日を"
        "写真付きの本人確認書類と照合してください。紙の登録証は店舗の確認には使えません。",
    )
    return bytes(pdf.output())

"""The paper 登録証: one button on the registration page, a card-sized PDF back.

The PDF goes straight to the browser (``Cache-Control: no-store``) and is never
kept: it is a bearer document with the person's name and birth date, so each
print is a new credential in the audit log that revocation reaches.
"""

from __future__ import annotations

from flask import make_response
from werkzeug.wrappers import Response

from dualres.issuer.domain import paper, registrations
from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.rules import today
from dualres.issuer.web.console.base import actor, bp, message, municipality
from dualres.issuer.web.console.views import _detail
from dualres.issuer.web.context import now, services
from dualres.issuer.web.context import session as db_session


@bp.post("/registrations/<public_id>/paper")
def paper_card(public_id: str) -> Response | tuple[str, int]:
    s = db_session()
    reg = registrations.get_registration(s, municipality(), public_id)
    at = now()
    try:
        paper.font_path()  # before anything is signed: a missing font issues nothing
        _cred, text = registrations.issue_paper(
            s, reg, actor=actor(), now=at, settings=services().settings, keys=services().keys
        )
        pdf = paper.render_card(
            reg,
            text,
            municipality=reg.municipality.name,
            valid_until=reg.valid_until,
            issued_on=today(at),
        )
    except IssuerError as exc:
        s.rollback()
        reg = registrations.get_registration(s, municipality(), public_id)
        return _detail(reg, errors={"paper": message(exc)}, status=exc.status)
    s.commit()
    resp = make_response(pdf)
    resp.headers["Content-Type"] = "application/pdf"
    resp.headers["Content-Disposition"] = 'attachment; filename="registration-card.pdf"'
    resp.headers["Cache-Control"] = "no-store"
    return resp

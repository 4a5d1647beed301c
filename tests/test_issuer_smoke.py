"""The issuer's core path without the staff API: register (by hand), issue, publish, verify."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from dualres.issuer.domain import audit
from dualres.issuer.domain.issuance import issue_credential
from dualres.issuer.domain.models import Municipality
from dualres.issuer.web.context import services
from dualres.verifier import Bundle, verify
from dualres.verifier.wire import jws
from dualres.wallet import holder
from tests.issuer_support import add_registration

ANCHOR_PUB = Path(__file__).resolve().parents[1] / "keys.example" / "trust-anchor.pub.pem"


def test_issue_publish_and_verify_offline(app, client, clock):
    hk = jws.generate_key()
    with app.app_context():
        svc = services()
        with svc.db.session() as s:
            m = s.execute(select(Municipality).where(Municipality.lg_code == "203211")).scalar_one()
            r = add_registration(
                s, m.id, "r1", person_key="ab" * 32, pairwise_sub="x" * 43, now=clock()
            )
            _, token = issue_credential(
                s, r, jws.public_jwk(hk), settings=svc.settings, keys=svc.keys, now=clock()
            )
            for n in range(3):
                audit.append(
                    s, m, actor="test", action="issue", target="r1", detail={"n": n}, now=clock()
                )
        with svc.db.session() as s:
            m = s.execute(select(Municipality).where(Municipality.lg_code == "203211")).scalar_one()
            assert audit.verify_chain(s, m).ok

    tl = client.get("/trust-list")
    assert tl.status_code == 200 and tl.mimetype == "application/jwt"
    sl = client.get("/lg/203211/status/1")
    assert sl.status_code == 200 and sl.mimetype == "application/statuslist+jwt"
    uri = "https://issuer.test/lg/203211/status/1"
    anchor = jws.load_public_pem(ANCHOR_PUB.read_bytes())
    bundle = Bundle.from_tokens(
        trust_list=tl.text, status_lists={uri: sl.text}, anchors=[anchor], created_at=0
    )
    qr = holder.present_qr_text(token, hk, now=int(clock().timestamp()))
    result = verify(qr, bundle, "counter", now=clock())
    assert result.ok, result
    assert result.issuer is not None and result.issuer.name == "軽井沢町"
    meta = client.get("/.well-known/jwt-vc-issuer/lg/203211").json
    assert meta["issuer"] == "https://issuer.test/lg/203211"
    assert meta["jwks"]["keys"][0]["kid"] == "203211-1"

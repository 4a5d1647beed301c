"""The issuer's core path without the staff API: register (by hand), issue, publish, verify."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import select

from issuer import audit
from issuer.app import services
from issuer.issuance import issue_credential
from issuer.models import ACTIVE, Municipality, Person, Registration
from verifier import Bundle, verify
from verifier.wire import jws
from wallet import holder

ANCHOR_PUB = Path(__file__).resolve().parents[1] / "keys.example" / "trust-anchor.pub.pem"


def test_issue_publish_and_verify_offline(app, client, clock):
    hk = jws.generate_key()
    with app.app_context():
        svc = services()
        with svc.db.session() as s:
            m = s.execute(select(Municipality).where(Municipality.lg_code == "203211")).scalar_one()
            p = Person(identity_hash="ab" * 32, created_at=clock())
            s.add(p)
            s.flush()
            r = Registration(
                public_id="r1", municipality_id=m.id, person_id=p.id, tier="premium",
                state=ACTIVE, identity_checked=True, family_name="山田", given_name="花子",
                family_name_kana="ヤマダ", given_name_kana="ハナコ", birthdate=date(1985, 6, 15),
                sex="female", primary_lg_code="131016", primary_address="東京都千代田区千代田1-1",
                second_home_address="軽井沢町1-1", second_home_postal_code=None,
                activities=["telework"], registered_since=date(2026, 4, 1),
                valid_from=date(2026, 11, 1), valid_until=date(2027, 10, 31),
                pairwise_sub="x" * 43, created_at=clock(), updated_at=clock(),
            )
            s.add(r)
            s.flush()
            _, token = issue_credential(
                s, r, jws.public_jwk(hk), settings=svc.settings, keys=svc.keys, now=clock()
            )
            for n in range(3):
                audit.append(s, m, actor="test", action="issue", target="r1", detail={"n": n},
                             now=clock())
        with svc.db.session() as s:
            m = s.execute(select(Municipality).where(Municipality.lg_code == "203211")).scalar_one()
            assert audit.verify_chain(s, m).ok

    tl = client.get("/trust-list")
    assert tl.status_code == 200 and tl.mimetype == "application/jwt"
    sl = client.get("/lg/203211/status/1")
    assert sl.status_code == 200 and sl.mimetype == "application/statuslist+jwt"
    uri = "https://issuer.test/lg/203211/status/1"
    anchor = jws.load_public_pem(ANCHOR_PUB.read_bytes())
    bundle = Bundle.from_tokens(trust_list=tl.text, status_lists={uri: sl.text}, anchors=[anchor],
                                created_at=0)
    qr = holder.present_qr_text(token, hk, now=int(clock().timestamp()))
    result = verify(qr, bundle, "counter", now=clock())
    assert result.ok, result
    assert result.issuer is not None and result.issuer.name == "軽井沢町"
    meta = client.get("/.well-known/jwt-vc-issuer/lg/203211").json
    assert meta["issuer"] == "https://issuer.test/lg/203211"
    assert meta["jwks"]["keys"][0]["kid"] == "203211-1"

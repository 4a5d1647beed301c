from issuer.app import services
from issuer.models import *
from issuer.issuance import issue_credential
from issuer import audit
from datetime import date
from sqlalchemy import select
from verifier.wire import jws
from verifier import Bundle, verify
from wallet import holder

def test_issue_and_verify(app, client, clock):
    with app.app_context():
        svc = services()
        with svc.db.session() as s:
            m = s.execute(select(Municipality).where(Municipality.lg_code=="203211")).scalar_one()
            p = Person(identity_hash="ab"*32, created_at=clock())
            s.add(p); s.flush()
            r = Registration(public_id="r1", municipality_id=m.id, person_id=p.id, tier="premium", state=ACTIVE, identity_checked=True,
               family_name="山田", given_name="花子", family_name_kana="ヤマダ", given_name_kana="ハナコ", birthdate=date(1985,6,15), sex="female",
               primary_lg_code="131016", primary_address="東京都千代田区千代田1-1", second_home_address="軽井沢町1-1", second_home_postal_code=None,
               activities=["telework"], registered_since=date(2026,4,1), valid_from=date(2026,11,1), valid_until=date(2027,10,31), pairwise_sub="x"*43,
               created_at=clock(), updated_at=clock())
            s.add(r); s.flush()
            hk = jws.generate_key()
            cred, token = issue_credential(s, r, jws.public_jwk(hk), settings=svc.settings, keys=svc.keys, now=clock())
            audit.append(s, m, actor="test", action="issue", target="r1", detail={"a": 1}, now=clock())
            audit.append(s, m, actor="test", action="issue2", target="r1", detail={"a": 2}, now=clock())
        with svc.db.session() as s:
            m = s.execute(select(Municipality).where(Municipality.lg_code=="203211")).scalar_one()
            assert audit.verify_chain(s, m).ok
    tl = client.get("/trust-list")
    assert tl.status_code == 200, tl.json
    uri = f"https://issuer.test/lg/203211/status/1"
    sl = client.get("/lg/203211/status/1")
    assert sl.status_code == 200 and sl.mimetype == "application/statuslist+jwt"
    anchor = jws.load_public_pem(open("keys.example/trust-anchor.pub.pem","rb").read())
    b = Bundle.from_tokens(trust_list=tl.text, status_lists={uri: sl.text}, anchors=[anchor], created_at=0)
    q = holder.present_qr_text(token, hk, now=int(clock().timestamp()))
    res = verify(q, b, "counter", now=clock())
    assert res.ok, res
    assert client.get("/.well-known/jwt-vc-issuer/lg/203211").json["jwks"]["keys"][0]["kid"] == "203211-1"

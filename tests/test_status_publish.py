"""Publishing status lists: a fast compression any inflater reads, and 304 on a matching ETag."""

from __future__ import annotations

import random
import zlib

import pytest
from sqlalchemy import select

from dualres.issuer.domain import statuslists
from dualres.issuer.domain.issuance import issue_credential
from dualres.issuer.domain.models import Credential, Municipality
from dualres.issuer.web.context import services
from dualres.verifier.wire import jws, statuslist
from dualres.verifier.wire.b64 import b64d
from tests.issuer_support import add_registration

URL = "/lg/203211/status/1"


def test_compressed_list_is_plain_zlib_and_round_trips() -> None:
    lst = statuslist.StatusList.new(131_072, 2)
    rng = random.Random(5)
    picks = [(i, rng.choice((1, 2, 3))) for i in rng.sample(range(131_072), 1_300)]
    lst.set_many(picks)
    obj = lst.to_json()
    assert zlib.decompress(b64d(obj["lst"])) == bytes(lst.data)
    back = statuslist.StatusList.from_json(obj)
    assert all(back.get(i) == s for i, s in picks)
    assert sum(back.get(i) != 0 for i in range(0, 131_072, 7)) <= 1_300


def test_set_many_matches_set_and_checks_its_input() -> None:
    one, many = statuslist.StatusList.new(4096, 4), statuslist.StatusList.new(4096, 4)
    items = [(0, 15), (1, 3), (4095, 9), (17, 0), (17, 5)]
    for i, s in items:
        one.set(i, s)
    many.set_many(items)
    assert one.data == many.data
    with pytest.raises(IndexError):
        many.set_many([(4096, 1)])
    with pytest.raises(IndexError):
        many.set_many([(-1, 1)])
    with pytest.raises(ValueError):
        many.set_many([(3, 16)])


def _issue_one(app, clock) -> int:
    with app.app_context():
        svc = services()
        with svc.db.session() as s:
            m = s.execute(select(Municipality).where(Municipality.lg_code == "203211")).scalar_one()
            r = add_registration(
                s, m.id, "r1", person_key="cd" * 32, pairwise_sub="y" * 43, now=clock()
            )
            issue_credential(
                s,
                r,
                jws.public_jwk(jws.generate_key()),
                settings=svc.settings,
                keys=svc.keys,
                now=clock(),
            )
            s.flush()
            return int(s.execute(select(Credential.id)).scalar_one())


def _revoke(app, cred_id: int) -> None:
    with app.app_context(), services().db.session() as s:
        cred = s.get(Credential, cred_id)
        assert cred is not None
        cred.status = statuslist.REVOKED
        statuslists.bump(s, {cred.status_list_id})


def test_status_endpoint_answers_304_to_a_matching_etag(app, client, clock) -> None:
    cred_id = _issue_one(app, clock)
    first = client.get(URL)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')

    again = client.get(URL, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag
    assert again.headers["Cache-Control"] == "no-cache"
    for header in (f'"nope", {etag}', f"W/{etag}", "*"):
        assert client.get(URL, headers={"If-None-Match": header}).status_code == 304, header
    assert client.get(URL, headers={"If-None-Match": '"nope"'}).status_code == 200

    # A revocation changes the token: the old tag gets the new list, never a 304.
    _revoke(app, cred_id)
    after = client.get(URL, headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["ETag"] != etag
    assert after.text != first.text


def test_a_re_signed_token_is_not_answered_304(app, client, clock) -> None:
    # Same list version, but the token aged past the ttl and was signed again
    # (new iat and exp): a verifier holding the old one must get the new one.
    _issue_one(app, clock)
    first = client.get(URL)
    clock.advance(services_ttl(app) + 1)
    later = client.get(URL, headers={"If-None-Match": first.headers["ETag"]})
    assert later.status_code == 200 and later.headers["ETag"] != first.headers["ETag"]


def services_ttl(app) -> int:
    with app.app_context():
        return int(services().settings.status_list_ttl)

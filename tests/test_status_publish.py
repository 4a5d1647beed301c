"""Publishing status lists: a fast compression any inflater reads, and 304 on a matching ETag."""

from __future__ import annotations

import random
import zlib
from typing import Any

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


# Issue 16: a list's token is built and signed once, by whichever worker fetches it
# first, and shared through the database (status_token).  Two create_app on one
# database stand for two gunicorn workers: each has its own per-process cache.


@pytest.fixture
def second_worker(app, database_url: str, tmp_path, clock):
    from dualres.issuer.web.app import create_app
    from tests.issuer_support import card_client, demo_settings

    other = create_app(demo_settings(tmp_path, database_url), clock=clock, upgrade=False)
    other.config["TESTING"] = True
    yield card_client(other)
    other.extensions["dualres"].db.dispose()


@pytest.fixture
def signatures(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The iat of every status list token signed, in either worker."""
    signed: list[int] = []
    real = statuslist.sign_token

    def counting(*args: Any, **kwargs: Any) -> str:
        signed.append(kwargs["iat"])
        return real(*args, **kwargs)

    monkeypatch.setattr(statuslist, "sign_token", counting)
    return signed


def _status_of(token: str, cred_id: int, app) -> int:
    with app.app_context(), services().db.session() as s:
        idx = s.execute(select(Credential.status_idx).where(Credential.id == cred_id)).scalar_one()
    return statuslist.parse_token(token)[1].status_list.get(idx)


def test_a_token_is_built_once_for_all_workers(
    app, client, second_worker, clock, signatures: list[int]
) -> None:
    cred_id = _issue_one(app, clock)
    first = client.get(URL)
    assert first.status_code == 200 and len(signatures) == 1
    clock.advance(5)
    # The other worker serves the first one's bytes (same iat, same tag), signing nothing.
    shared = second_worker.get(URL)
    assert shared.status_code == 200 and len(signatures) == 1
    assert shared.data == first.data and shared.headers["ETag"] == first.headers["ETag"]
    # ...so a verifier's tag from one worker is answered 304 by the other.
    assert (
        second_worker.get(URL, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    )

    # A revocation shows at the next fetch from either worker, built once between them.
    _revoke(app, cred_id)
    revoked = second_worker.get(URL, headers={"If-None-Match": first.headers["ETag"]})
    assert revoked.status_code == 200 and len(signatures) == 2
    assert _status_of(revoked.text, cred_id, app) == statuslist.REVOKED
    again = client.get(URL, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 200 and len(signatures) == 2
    assert again.data == revoked.data and again.headers["ETag"] == revoked.headers["ETag"]

    # An aged token is signed again once, and that one shared too.
    clock.advance(services_ttl(app) + 1)
    fresh = client.get(URL)
    assert len(signatures) == 3 and fresh.data != revoked.data
    assert second_worker.get(URL).data == fresh.data and len(signatures) == 3


def test_an_older_build_never_replaces_a_newer_one(app, client, clock) -> None:
    from dualres.issuer.domain.models import StatusList, StatusToken

    cred_id = _issue_one(app, clock)
    with app.app_context():
        svc = services()
        with svc.db.session() as s:
            slow = s.execute(select(StatusList)).scalar_one()  # a worker that read v0...
            s.expunge(slow)
        _revoke(app, cred_id)  # ...before the revocation (v1)
        clock.advance(5)
        assert client.get(URL).status_code == 200  # v1 built and stored
        with svc.db.session() as s:
            stored = s.execute(select(StatusToken)).scalar_one()
            newest = (stored.version, stored.iat, stored.token)
        clock.advance(5)
        with svc.db.session() as s:
            slow = s.merge(slow, load=False)
            statuslists.TokenCache().get_with_etag(s, slow, svc.settings, svc.keys, clock())
        with svc.db.session() as s:
            stored = s.execute(select(StatusToken)).scalar_one()
            assert (stored.version, stored.iat, stored.token) == newest
            assert newest[0] == s.execute(select(StatusList.version)).scalar_one()


def test_a_failed_store_still_serves_the_token_built(
    app, client, second_worker, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import Column, MetaData, Table

    from dualres.issuer.domain.models import StatusToken

    cred_id = _issue_one(app, clock)
    missing = Table(
        "no_such_table", MetaData(), *(Column(c.name, c.type) for c in StatusToken.__table__.c)
    )
    for postgres in (True, False):
        monkeypatch.setitem(statuslists._STORE, postgres, missing.insert())
    r = client.get(URL)
    assert r.status_code == 200
    assert _status_of(r.text, cred_id, app) == statuslist.VALID
    with app.app_context(), services().db.session() as s:
        assert s.execute(select(StatusToken)).first() is None  # nothing half-stored
    monkeypatch.undo()
    # The other worker finds nothing stored, builds its own and shares it.
    assert second_worker.get(URL).status_code == 200
    _revoke(app, cred_id)
    assert _status_of(client.get(URL).text, cred_id, app) == statuslist.REVOKED

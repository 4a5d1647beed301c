from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import World


@pytest.fixture(autouse=True)
def _verifier_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test its own dualres-verify configuration: the anchor a sync pins must
    not leak into another test, nor come from the home directory of whoever runs them."""
    monkeypatch.setenv("DUALRES_VERIFY_HOME", str(tmp_path_factory.mktemp("verify-home")))
    monkeypatch.delenv("DUALRES_ANCHOR", raising=False)


@pytest.fixture(scope="session")
def world() -> World:
    return World()


@pytest.fixture(scope="session")
def bundle(world: World):
    return world.bundle(statuses={7: 1, 8: 2})


# --- issuer: every test that uses `app` runs on SQLite and on PostgreSQL ---


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_factory(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    from tests.issuer_support import DatabaseFactory

    factory = DatabaseFactory(request.param, tmp_path_factory.mktemp(f"db-{request.param}"))
    yield factory
    factory.close()


@pytest.fixture
def database_url(db_factory) -> Iterator[str]:
    url = db_factory.new()
    yield url
    db_factory.drop(url)


@pytest.fixture
def clock():
    from tests.issuer_support import Clock

    return Clock()


@pytest.fixture
def app(database_url: str, tmp_path: Path, clock):
    """A demo deployment (development keys, three municipalities) at a fixed clock."""
    from dualres.issuer.domain.tenants import bootstrap_demo
    from dualres.issuer.web.app import create_app
    from dualres.issuer.web.context import services
    from tests.issuer_support import demo_settings

    application = create_app(demo_settings(tmp_path, database_url), clock=clock, upgrade=False)
    application.config["TESTING"] = True
    with application.app_context():
        svc = services()
        with svc.db.session() as s:
            bootstrap_demo(s, svc.settings, svc.keys, clock())
    yield application
    application.extensions["dualres"].db.dispose()


@pytest.fixture
def client(app):
    return app.test_client()

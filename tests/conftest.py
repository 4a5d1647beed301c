from __future__ import annotations

import pytest

from tests.support import World


@pytest.fixture(scope="session")
def world() -> World:
    return World()


@pytest.fixture(scope="session")
def bundle(world: World):
    return world.bundle(statuses={7: 1, 8: 2})

"""A small load run on the deployment shape (bench/load.py): gunicorn workers on
PostgreSQL, a driver in a second process issuing through the staff API and
OpenID4VCI, revoking some and fetching status lists meanwhile.

Afterwards: every credential has its own status slot, every acknowledged
revocation reads revoked in the served (signature-checked) list, no 5xx, no
error outside our JSON shape, every acknowledged row is in the database with
its audit entry, and the audit chains verify.
"""

from __future__ import annotations

import pytest

from bench.load import Config, run
from tests.fault_support import need_tools

pytestmark = pytest.mark.slow


def test_concurrent_issuance_on_gunicorn_and_postgresql() -> None:
    server = need_tools()
    config = Config(workers=2, issuers=4, fetchers=1, seconds=12, max_issuances=30,
                    revoke_every=3, warmup=False)  # fmt: skip
    result = run(config, server)
    assert result.problems() == []
    issued = result.run["outcome"]["issued"]
    assert len(issued) == 30, result.run["outcome"]["refused"][:3]
    assert result.report.facts["distinct_slots"] == 30
    assert result.report.facts["revocations_acknowledged"] == 10
    assert result.run["status_fetches"] > 0

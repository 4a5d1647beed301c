"""After a run: is everything the server acknowledged still true, and nothing half-written?

Checked against two independent sources: the status lists as the server
serves them (signature verified with the municipality's published keys, as a
verifier would) and the database rows themselves.
"""

from __future__ import annotations

import json
import tempfile
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from dualres.verifier.wire import jws, statuslist


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def fail(self, text: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(text)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:
        return bytes(r.read())


def served_list(base: str, uri: str) -> statuslist.StatusList:
    """The list at ``uri`` as a verifier gets it: fetched, signature checked."""
    path = urllib.parse.urlsplit(uri).path  # the iss names our base URL; fetch it there
    code = path.split("/")[2]
    token, parsed = statuslist.parse_token(_get(base + path).decode("ascii"))
    keys = json.loads(_get(f"{base}/.well-known/jwt-vc-issuer/lg/{code}"))["jwks"]["keys"]
    key = next((k for k in keys if k["kid"] == parsed.kid), None)
    if key is None:
        raise AssertionError(f"{uri}: signed by unknown kid {parsed.kid}")
    token.verify(jws.key_from_jwk(key))
    if parsed.sub != uri:
        raise AssertionError(f"{uri}: token names {parsed.sub}")
    return parsed.status_list


def check(
    base: str,
    database_url: str,
    outcome: dict[str, Any],
    *,
    codes: tuple[str, ...],
) -> Report:
    """``outcome``: what clients saw acknowledged (bench.load_client.Outcome as a dict)."""
    rep = Report()
    issued = outcome["issued"]
    revoked = {r["reg"] for r in outcome["revoked"]}
    attempted = set(outcome.get("revoke_attempts", [])) | revoked

    # 1. Every credential a wallet received names its own status slot.
    slots = Counter((c["uri"], c["idx"]) for c in issued)
    dupes = [k for k, n in slots.items() if n > 1]
    if dupes:
        rep.fail(f"{len(dupes)} status slots handed out twice, e.g. {dupes[:3]}")
    rep.facts["credentials_received"] = len(issued)
    rep.facts["distinct_slots"] = len(slots)

    # 2. The served lists agree: acknowledged revocations read 1, untouched ones 0.
    uris = {c["uri"] for c in issued} | {f"{base}/lg/{code}/status/1" for code in codes}
    lists = {}
    for uri in sorted(uris):
        try:
            lists[uri] = served_list(base, uri)
        except Exception as exc:  # any failure to fetch or verify is a finding
            rep.fail(f"cannot read the served list {uri}: {type(exc).__name__}: {exc}")
    for c in issued:
        lst = lists.get(c["uri"])
        if lst is None:
            continue
        got = lst.get(c["idx"])
        if c["reg"] in revoked and got != statuslist.REVOKED:
            rep.fail(f"acknowledged revocation of {c['reg']} reads {got} at {c['uri']}#{c['idx']}")
        elif c["reg"] not in attempted and got != statuslist.VALID:
            rep.fail(f"credential of {c['reg']} never revoked reads {got}")
    rep.facts["revocations_acknowledged"] = len(revoked)
    rep.facts["lists_checked"] = len(lists)

    # 3. The rows: acknowledged work is there, and nothing stands half-written.
    _check_rows(rep, database_url, outcome, revoked)
    return rep


def _check_rows(rep: Report, database_url: str, outcome: dict[str, Any], revoked: set[str]) -> None:
    from dualres.issuer.config import Settings
    from dualres.issuer.domain import audit
    from dualres.issuer.domain.db import Database
    from dualres.issuer.domain.keys import KeyStore
    from dualres.issuer.domain.models import (
        CRED_REVOKED,
        REVOKED,
        AuditEntry,
        Credential,
        Municipality,
        Registration,
        StatusList,
    )

    db = Database(database_url)
    # The server signs each audit head with its (demo) keys: read them the same way here.
    keys = KeyStore(Settings(data_dir=Path(tempfile.gettempdir()), database_url="", demo=True))
    audit.install(db.sessions, keys)
    try:
        with db.session() as s:
            regs = {r.public_id: r for r in s.execute(select(Registration)).scalars()}
            for rid in outcome["registrations"]:
                if rid not in regs:
                    rep.fail(f"acknowledged registration {rid} is not in the database")
            rows = s.execute(
                select(Credential, Registration.public_id, Municipality.lg_code, StatusList.number)
                .join(Registration, Credential.registration_id == Registration.id)
                .join(StatusList, Credential.status_list_id == StatusList.id)
                .join(Municipality, StatusList.municipality_id == Municipality.id)
            ).all()
            by_slot = {(code, num, c.status_idx): (c, rid) for c, rid, code, num in rows}
            if len(by_slot) != len(rows):
                rep.fail("two credential rows share a status slot")
            for c in outcome["issued"]:
                path = urllib.parse.urlsplit(c["uri"]).path.split("/")  # /lg/CODE/status/N
                row = by_slot.get((path[2], int(path[4]), c["idx"]))
                if row is None:
                    rep.fail(f"received credential {c['uri']}#{c['idx']} has no row")
                elif row[1] != c["reg"]:
                    rep.fail(f"slot {c['uri']}#{c['idx']} belongs to {row[1]}, not {c['reg']}")
            for rid in revoked:
                r = regs.get(rid)
                if r is None or r.state != REVOKED:
                    rep.fail(f"acknowledged revocation of {rid}: state {r and r.state}")
            for c, rid, _, _ in rows:
                if regs[rid].state == REVOKED and c.status != CRED_REVOKED:
                    rep.fail(f"{rid} is revoked but its credential {c.id} reads {c.status}")

            # Each row came with its audit entry, in the same transaction.
            actions = Counter(
                (a, t) for a, t in s.execute(select(AuditEntry.action, AuditEntry.target))
            )
            per_reg = Counter(rid for _, rid, _, _ in rows)
            for rid, r in regs.items():
                if actions[("registration.create", rid)] != 1:
                    rep.fail(f"{rid}: {actions[('registration.create', rid)]} create entries")
                if actions[("credential.issue", rid)] != per_reg[rid]:
                    rep.fail(f"{rid}: {per_reg[rid]} credentials, "
                             f"{actions[('credential.issue', rid)]} issue entries")  # fmt: skip
                if (r.state == REVOKED) != (actions[("registration.revoke", rid)] == 1):
                    rep.fail(f"{rid}: state {r.state} but "
                             f"{actions[('registration.revoke', rid)]} revoke entries")  # fmt: skip
            chains = {}
            for m in s.execute(select(Municipality)).scalars():
                chk = audit.verify_chain(s, m)
                chains[m.lg_code] = chk.entries
                if not chk.ok:
                    rep.fail(f"audit chain of {m.lg_code} broken at {chk.first_bad_seq}: "
                             f"{chk.problem}")  # fmt: skip
            rep.facts["audit_entries"] = sum(chains.values())
            rep.facts["credential_rows"] = len(rows)
            rep.facts["registration_rows"] = len(regs)
            rep.facts["db_credentials"] = s.execute(select(func.count(Credential.id))).scalar_one()
    finally:
        db.dispose()

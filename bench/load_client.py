"""The load driver: concurrent clients over real HTTP, in a process of its own.

An *issuer client* plays a counter and a phone in turn: it registers a
resident through the staff API, makes an offer, and runs the whole
OpenID4VCI flow with the wallet's own client (wallet/oid4vci.py: offer by
reference, both metadata documents, token with tx_code, nonce, credential
with a key proof); every ``revoke_every``-th registration is then revoked by
a supervisor.  A *status client* fetches status lists in a loop, as verifiers
syncing would.  Every HTTP exchange is timed and its status kept; the
outcome of each operation is recorded only once the server acknowledged it.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dualres.verifier.wareki import JST
from dualres.verifier.wire import jws
from dualres.wallet import oid4vci

TIMEOUT = 30
KANA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモ"
# Where each demo municipality's residents live (never the municipality itself:
# the own-住所 rule refuses that).
HOME_OF = {"203211": "131016", "011002": "131016", "131016": "203211"}


def kana_number(n: int) -> str:
    """A distinct katakana spelling of n: each resident is a different person."""
    out = ""
    while True:
        n, r = divmod(n, len(KANA))
        out = KANA[r] + out
        if n == 0:
            return out


def _label(method: str, url: str) -> str:
    path = urllib.parse.urlsplit(url).path
    if path.startswith("/.well-known/openid-credential-issuer/"):
        return "GET issuer metadata"
    if path.startswith("/.well-known/oauth-authorization-server/"):
        return "GET AS metadata"
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v1"]:
        if len(parts) == 3:
            return f"{method} /api/v1/registrations"
        return f"{method} /api/v1/registrations/{{id}}/{parts[-1]}"
    if parts[0] == "lg" and len(parts) >= 3:
        more = {"offers": "/{id}", "status": "/{n}"}.get(parts[2], "")
        return f"{method} /lg/{{code}}/{parts[2]}{more}"
    return f"{method} {path}"


@dataclass
class Recorder:
    """Latencies and statuses per endpoint; thread-safe appends."""

    samples: dict[str, list[float]] = field(default_factory=dict)  # ms
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # no HTTP answer at all
    bad_bodies: list[str] = field(default_factory=list)  # an error that is not our JSON
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, label: str, status: int, ms: float) -> None:
        with self._lock:
            self.samples.setdefault(label, []).append(ms)
            by = self.statuses.setdefault(label, {})
            by[status] = by.get(status, 0) + 1

    def error(self, text: str) -> None:
        with self._lock:
            self.errors.append(text[:300])

    def bad_body(self, text: str) -> None:
        with self._lock:
            self.bad_bodies.append(text[:300])


def http(
    rec: Recorder,
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, str]:
    """One timed exchange: (status, body, content type); status 0 if no answer came."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    label = _label(method, url)
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            body, status, ctype = resp.read(), resp.status, resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        body, status, ctype = exc.read(), exc.code, exc.headers.get("Content-Type", "")
    except OSError as exc:  # refused, reset, timed out: no answer
        rec.add(label, 0, (time.perf_counter() - t0) * 1000)
        rec.error(f"{label}: {type(exc).__name__}: {exc}")
        return 0, b"", ""
    rec.add(label, status, (time.perf_counter() - t0) * 1000)
    if status >= 400 and not _our_error(body, ctype):
        rec.bad_body(f"{label} {status} {ctype}: {body[:200]!r}")
    return status, body, ctype


def _our_error(body: bytes, ctype: str) -> bool:
    """Is it the issuer's JSON error shape (not a server's HTML page or a traceback)?"""
    if not ctype.startswith("application/json"):
        return False
    try:
        obj = json.loads(body)
    except ValueError:
        return False
    return (isinstance(obj, dict) and isinstance(obj.get("error"), str)
            and "Traceback" not in str(obj))  # fmt: skip


class TimedWallet(oid4vci.Client):
    """The wallet's client, every exchange through ``http`` (timed, recorded)."""

    def __init__(self, rec: Recorder, address: str | None = None) -> None:
        super().__init__(insecure_http=True)
        self.rec = rec
        self.address = address

    def _exchange(
        self, method: str, url: str, data: bytes | None, headers: dict[str, str]
    ) -> dict[str, Any]:
        if self.address:
            # Each phone has its own address, as it would behind the load balancer
            # (the server trusts one proxy hop): the per-address throttle on the
            # token and nonce endpoints must meet many phones, not one.
            headers = {**headers, "X-Forwarded-For": self.address}
        status, raw, _ = http(self.rec, method, url, data=data, headers=headers)
        if status == 0:
            raise oid4vci.IssuanceError(f"{method} {url}: no answer", None, 0)
        try:
            out = json.loads(raw)
        except ValueError:
            raise oid4vci.IssuanceError(f"{method} {url}: not JSON", None, status) from None
        if status >= 400:
            raise oid4vci.IssuanceError(f"{method} {url}: {status} {out}", out.get("error"), status)
        if not isinstance(out, dict):
            raise oid4vci.IssuanceError(f"{method} {url}: not an object", None, status)
        return out


def api(
    rec: Recorder, base: str, method: str, path: str, token: str, body: Any = None
) -> tuple[int, Any]:
    headers = {"Accept": "application/json", "Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers["Content-Type"] = "application/json"
    status, raw, _ = http(rec, method, base + path, data=data, headers=headers)
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


def registration_body(code: str, n: int) -> dict[str, Any]:
    home = HOME_OF[code]
    return {
        "identity": {
            "declared": {
                "family_name": "負荷",
                "given_name": "試験",
                "family_name_kana": "フカ",
                "given_name_kana": kana_number(n),
                "birthdate": f"{1950 + n % 50}-{1 + n % 12:02d}-{1 + n % 28:02d}",
                "address": "東京都千代田区千代田1-1" if home == "131016" else "長野県軽井沢町1-1",
                "address_lg_code": home,
            }
        },
        "tier": "basic",
        "activities": ["telework"],
        "second_home": {"address": f"二地域{n}番地"},
        # Dates are Japanese calendar days: today in JST, plus most of a year.
        "valid_until": (datetime.now(JST).date() + timedelta(days=300)).isoformat(),
    }


@dataclass
class Outcome:
    """What the server acknowledged to one issuer client."""

    registrations: list[str] = field(default_factory=list)  # public ids, 201
    issued: list[dict[str, Any]] = field(default_factory=list)  # {reg, uri, idx, cnf_kid}
    revoked: list[dict[str, Any]] = field(default_factory=list)  # {reg, uri, idx}
    revoke_attempts: list[str] = field(default_factory=list)  # sent, acknowledged or not
    unacknowledged: list[str] = field(default_factory=list)  # no answer: outcome unknown
    refused: list[str] = field(default_factory=list)  # an answer, but not success
    flows_ms: list[float] = field(default_factory=list)  # register → credential in hand


def status_of(credential: str) -> tuple[str, int]:
    payload = jws.parse(credential.split("~", 1)[0]).payload
    ref = payload["status"]["status_list"]
    return str(ref["uri"]), int(ref["idx"])


def issue_once(
    rec: Recorder,
    out: Outcome,
    base: str,
    code: str,
    tokens: dict[str, str],
    n: int,
    *,
    revoke: bool,
) -> None:
    t0 = time.perf_counter()
    status, reg = api(rec, base, "POST", "/api/v1/registrations", tokens["clerk"],
                      registration_body(code, n))  # fmt: skip
    if status != 201:
        why = f"{reg.get('error')} {reg.get('field')}" if isinstance(reg, dict) else ""
        (out.unacknowledged if status == 0 else out.refused).append(f"register {n}: {status} {why}")
        return
    rid = reg["id"]
    out.registrations.append(rid)
    status, offer = api(rec, base, "POST", f"/api/v1/registrations/{rid}/offers", tokens["clerk"],
                        {})  # fmt: skip
    if status != 201:
        (out.unacknowledged if status == 0 else out.refused).append(f"offer {rid}: {status}")
        return
    wallet = TimedWallet(rec, f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")
    holder = jws.generate_key()
    try:
        issued = oid4vci.run_flow(wallet, offer["offer_uri"], holder, tx_code=offer["tx_code"])
    except oid4vci.IssuanceError as exc:
        (out.unacknowledged if exc.status in (0, None) else out.refused).append(
            f"issue {rid}: {exc}"[:300]
        )
        return
    out.flows_ms.append((time.perf_counter() - t0) * 1000)
    uri, idx = status_of(issued.credential)
    out.issued.append({"reg": rid, "uri": uri, "idx": idx, "code": code})
    if not revoke:
        return
    out.revoke_attempts.append(rid)
    status, _ = api(rec, base, "POST", f"/api/v1/registrations/{rid}/revoke",
                    tokens["supervisor"], {"reason": "負荷試験 / load test"})  # fmt: skip
    if 200 <= status < 300:
        out.revoked.append({"reg": rid, "uri": uri, "idx": idx})
    else:
        (out.unacknowledged if status == 0 else out.refused).append(f"revoke {rid}: {status}")


@dataclass
class Plan:
    base: str
    tokens: dict[str, dict[str, str]]
    issuers: int = 8  # concurrent issuer clients
    fetchers: int = 2  # concurrent status-list clients
    seconds: float = 20.0  # stop starting new work after this
    max_issuances: int = 10_000  # or after this many, whichever comes first
    revoke_every: int = 4
    first: int = 0  # residents are numbered from here (a warm-up takes the ones before)


def drive(plan: Plan) -> dict[str, Any]:
    """Run the clients as threads until the plan's bound; return what happened."""
    rec = Recorder()
    outcomes = [Outcome() for _ in range(plan.issuers)]
    codes = list(plan.tokens)
    counter = iter(range(plan.first, plan.first + plan.max_issuances))
    counter_lock = threading.Lock()
    stop_at = time.monotonic() + plan.seconds
    fetched = [0] * plan.fetchers

    def next_n() -> int | None:
        with counter_lock:
            return next(counter, None)

    def issuer(k: int) -> None:
        while time.monotonic() < stop_at:
            n = next_n()
            if n is None:
                return
            code = codes[n % len(codes)]
            issue_once(rec, outcomes[k], plan.base, code, plan.tokens[code], n,
                       revoke=n % plan.revoke_every == plan.revoke_every - 1)  # fmt: skip

    def fetcher(k: int) -> None:
        i = k
        while time.monotonic() < stop_at:
            code = codes[i % len(codes)]
            status, _, _ = http(rec, "GET", f"{plan.base}/lg/{code}/status/1")
            if status == 200:
                fetched[k] += 1
            i += 1

    threads = [threading.Thread(target=issuer, args=(k,), daemon=True)
               for k in range(plan.issuers)]  # fmt: skip
    threads += [threading.Thread(target=fetcher, args=(k,), daemon=True)
                for k in range(plan.fetchers)]  # fmt: skip
    t0, cpu0 = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    # A client's last flow may straddle the deadline: give it its timeouts, once.
    join_by = time.monotonic() + plan.seconds + 8 * TIMEOUT
    for t in threads:
        t.join(timeout=max(0.0, join_by - time.monotonic()))
    wall = time.perf_counter() - t0
    merged = Outcome()
    for o in outcomes:
        for name in merged.__dict__:
            getattr(merged, name).extend(getattr(o, name))
    return {
        "wall_s": wall,
        "samples": rec.samples,
        "statuses": {k: {str(s): c for s, c in v.items()} for k, v in rec.statuses.items()},
        "errors": rec.errors,
        "bad_bodies": rec.bad_bodies,
        "status_fetches": sum(fetched),
        "outcome": merged.__dict__,
        "stuck_threads": sum(t.is_alive() for t in threads),
        "cpu_s": time.process_time() - cpu0,
    }


def drive_to_file(plan: Plan, path: str) -> None:
    """Entry point of the driver process (multiprocessing, spawn)."""
    result = drive(plan)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(tmp, path)

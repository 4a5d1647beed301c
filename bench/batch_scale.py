"""Batch issuance at national scale: ``python -m bench.batch_scale [--quick]``.

Issue 13 gives each person a batch of one-time credentials so that no value
repeats across counter presentations.  Every credential with a status entry
multiplies the status lists, so this measures, for the nation (1,741
municipalities, 10 million people, 1 % and 5 % of them revoked or suspended),
the verifier bundle each candidate design makes: a real trust list (two keys
per municipality), real status-list tokens (random slots in lists of 131,072
entries, a list full at 85 %, zlib, ES256), ``Bundle.from_tokens`` and
``Bundle.loads`` (the verifier's own load and re-verification), gzip as served.

Designs (N credentials per person, L days of validity for the short-lived ones):

- ``listed-year``: N status-listed credentials valid as long as the
  registration (a year).  Every credential of every revoked or suspended
  person stays set in the lists until it expires.
- ``listed-short``: N status-listed credentials valid L days, refilled while
  online; the issuer leaves expired credentials out of the lists it builds,
  so a list holds only live credentials and the revocations of the last L
  days.  Two loads: the steady state (the yearly 1 % / 5 % spread over the
  year, so L/365 of it live) and the worst case (the whole 1 % / 5 % inside
  one window, e.g. a mass suspension).
- ``unlisted-short``: N counter credentials valid L days with no status
  entry, plus one status-listed credential per person for offices: the
  bundle is the N = 1 bundle, revocation at a counter waits up to L days.

Since issue 15 every key carries its X.509 certificate (``x5c``, leaf made by
the issuer's own ``certs.issue_leaf``) and the trust list names the issuing CA
once (``issuing_cas``); the load checks each certificate.

Sync time is modelled, not measured on a network: the gzipped bytes over a
link of 10 Mbit/s (a shop's ADSL or a 4G phone) plus the measured load.
"""

from __future__ import annotations

import argparse
import gzip
import math
import random
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter

from cryptography.hazmat.primitives.asymmetric import ec

from dualres.verifier import Bundle
from dualres.verifier.wire import jws, statuslist, trustlist

MUNICIPALITIES = 1_741
PEOPLE = 10_000_000
LIST_SIZE = 131_072
FULL_AT = int(0.85 * LIST_SIZE)
T = 1_795_000_000
HOST = "https://issuer.bench"
LINK_BITS_PER_S = 10_000_000
LIMIT_GZ = 3_000_000


class _Certifier:
    """Certificates as the issuer makes them (issuer/domain/certs.py): an issuing
    CA under the anchor, a leaf per key."""

    def __init__(self, anchor: ec.EllipticCurvePrivateKey) -> None:
        from dualres.issuer.config import Settings
        from dualres.issuer.domain import certs

        self.certs = certs
        self.settings = Settings(data_dir=Path("."), database_url="sqlite://", base_url=HOST)
        self.start = datetime.fromtimestamp(T, UTC) - timedelta(days=1)
        self.ca = jws.generate_key()
        self.ca_cert = certs.issue_ca(self.settings, anchor, self.ca.public_key(), self.start)
        self.ca_name = certs.issuing_ca_name(self.settings)

    def leaf(self, code: str, name: str, kid: str, key: ec.EllipticCurvePrivateKey) -> str:
        from dualres.issuer.domain.models import Municipality, SigningKey

        row = Municipality(lg_code=code, name=name, prefecture="長野県")
        start = self.start
        k = SigningKey(kid=kid, public_jwk=jws.public_jwk(key), not_before=start, created_at=start)
        return self.certs.issue_leaf(
            self.settings, row, k, self.ca, f"{HOST}/lg/{code}", self.ca_name
        )


def _national(
    entries_per_municipality: int,
    set_total: int,
    rng: random.Random,
    certifier: _Certifier | None = None,
) -> tuple[dict[str, str], list[dict[str, object]], object]:
    """Trust list issuers and signed status tokens for the whole country."""
    per_m = Counter(rng.choices(range(MUNICIPALITIES), k=set_total))
    tokens: dict[str, str] = {}
    issuers: list[dict[str, object]] = []
    for i in range(MUNICIPALITIES):
        code = f"{100000 + i:06d}"
        keys = [jws.generate_key(), jws.generate_key()]
        n_lists = max(1, math.ceil(entries_per_municipality / FULL_AT))
        # The municipality's set entries, spread over its lists at random slots.
        share = Counter(rng.choices(range(n_lists), k=min(per_m[i], entries_per_municipality)))
        uris = []
        for n in range(n_lists):
            lst = statuslist.StatusList.new(LIST_SIZE, 2)
            for idx in rng.sample(range(LIST_SIZE), min(share[n], FULL_AT)):
                lst.set(idx, statuslist.REVOKED)
            uri = f"{HOST}/lg/{code}/status/{n + 1}"
            tokens[uri] = jws.sign(
                {"typ": statuslist.STATUS_LIST_TYP, "kid": f"{code}-1"},
                {"sub": uri, "iat": T, "exp": T + 86_400, "ttl": 300, "status_list": lst.to_json()},
                keys[0],
            )
            uris.append(uri)
        issuers.append(
            {
                "iss": f"{HOST}/lg/{code}",
                "lg_code": code,
                "name": f"町{i}",
                "prefecture": "県",
                "keys": [
                    {
                        "kid": f"{code}-{n}",
                        "jwk": jws.public_jwk(k),
                        "not_before": T - 86_400 if n == 1 else T + 86_400,
                        **(
                            {
                                "x5c": [certifier.leaf(code, f"町{i}", f"{code}-{n}", k)],
                                "x5c_ca": 0,
                            }
                            if certifier
                            else {}
                        ),
                    }
                    for n, k in enumerate(keys, 1)
                ],
                "status_lists": uris,
            }
        )
    return tokens, issuers, None


def measure(
    credentials_per_person: int, set_people: float, seed: int = 13, with_x5c: bool = True
) -> dict[str, float]:
    """Bundle figures for N status-listed credentials a person, ``set_people`` of people set."""
    rng = random.Random(seed)
    entries = math.ceil(PEOPLE * credentials_per_person / MUNICIPALITIES)
    set_total = round(PEOPLE * set_people) * credentials_per_person
    anchor = jws.generate_key()
    certifier = _Certifier(anchor) if with_x5c else None
    tokens, issuers, _ = _national(entries, set_total, rng, certifier)
    trust = trustlist.sign(
        iss=HOST,
        iat=T,
        exp=T + 7 * 86_400,
        issuers=issuers,
        anchor_key=anchor,
        issuing_cas=[certifier.ca_cert] if certifier else (),
    )
    bundle = Bundle.from_tokens(
        trust_list=trust, status_lists=tokens, anchors=[anchor.public_key()], created_at=T
    )
    text = bundle.dumps().encode("utf-8")
    loads = []
    for _ in range(2):
        t0 = perf_counter()
        Bundle.loads(text, [anchor.public_key()])
        loads.append(perf_counter() - t0)
    gz = len(gzip.compress(text, 6))
    load = statistics.median(loads)
    return {
        "lists": len(tokens),
        "set_entries": set_total,
        "bundle": len(text),
        "gz": gz,
        "load_s": load,
        "sync_s": gz * 8 / LINK_BITS_PER_S + load,
    }


def designs(quick: bool) -> list[tuple[str, int, int, str, float]]:
    """(design, N, L days, load label, share of people set in the lists)."""
    out: list[tuple[str, int, int, str, float]] = []
    for rate in (0.01, 0.05):
        for n in (1, 2, 5, 10) if quick else (1, 2, 3, 5, 10, 20):
            out.append(("listed-year", n, 365, f"{rate:.0%} stock", rate))
        for n, days in ((10, 30), (20, 30)) if quick else ((10, 14), (10, 30), (20, 30), (30, 30)):
            out.append(("listed-short", n, days, f"{rate:.0%}/year, steady", rate * days / 365))
            out.append(("listed-short", n, days, f"{rate:.0%} in one window", rate))
        out.append(("unlisted-short", 10, 7, f"{rate:.0%} stock", rate))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.batch_scale")
    ap.add_argument("--quick", action="store_true", help="fewer designs")
    ap.add_argument(
        "--no-x5c", action="store_true", help="keys without certificates (before issue 15)"
    )
    args = ap.parse_args(argv)
    print(
        f"{PEOPLE:,} people over {MUNICIPALITIES:,} municipalities, lists of {LIST_SIZE:,} × 2 "
        f"bits, full at {FULL_AT:,}; sync = gzip bytes at {LINK_BITS_PER_S / 1e6:.0f} Mbit/s "
        "+ measured load\n"
    )
    print(
        "| design | N | L (days) | revoked + suspended | lists | set entries | bundle MB | "
        "gzip MB | load s | sync s | ≤ 3 MB gz |"
    )
    print("|---|--:|--:|---|--:|--:|--:|--:|--:|--:|:-:|")
    cache: dict[tuple[int, float], dict[str, float]] = {}
    for design, n, days, label, share in designs(args.quick):
        listed = 1 if design == "unlisted-short" else n
        key = (listed, round(share, 6))
        if key not in cache:
            cache[key] = measure(listed, share, with_x5c=not args.no_x5c)
        r = cache[key]
        print(
            f"| {design} | {n} | {days} | {label} | {r['lists']:,} | {r['set_entries']:,} | "
            f"{r['bundle'] / 1e6:.2f} | {r['gz'] / 1e6:.2f} | {r['load_s']:.2f} | "
            f"{r['sync_s']:.1f} | {'yes' if r['gz'] <= LIMIT_GZ else '**no**'} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Issuer-side benchmarks: issuance throughput, status-list publishing, bundle size.

    python -m bench.issuer [--quick]        # prints Markdown tables

``run(quick)`` returns rows for docs/benchmarks.md: flat dicts, one per table
row.  ``row["table"]`` is the table's title; every other key not starting
with ``_`` is a column (display strings, in order); ``_value``/``_unit`` carry
the row's main figure as a number for summaries, ``_note`` a sentence to print
under the table.  ``markdown(rows)`` renders them.

What is measured, and against what:

- **issuance**: ``issuer.issuance.issue_credential`` + commit, one credential
  per transaction as the staff API does it (new session, load the
  registration, draw a random status slot, sign, commit), on SQLite (WAL, a
  file) and on PostgreSQL; against one raw ES256 signature measured in the
  same run, our wire-level ``credential.issue()`` without a database, and the
  reference ``sd-jwt`` library (0.10.4, ``SDJWTIssuer``) issuing the same claims
  with the same disclosures.
- **publishing** one status list of 1,048,576 entries (2 bits, 1% revoked):
  build the bit array, zlib it, sign the token; and what a verifier pays to
  inflate it.
- **a nationwide bundle**: 1,741 municipalities (every 市区町村 in the code
  list) and 10 million credentials, 1% revoked: each municipality's ~5,744
  credentials in one list of 131,072 entries (herd privacy), revoked slots at
  random.  Total compressed bytes against the entropy bound of what the lists
  say, the trust list (1,741 issuers × 2 keys, each with its certificate
  under an issuing CA listed once, as since issue 15), the bundle file a verifier
  keeps, and how long loading (re-verifying) it takes.

PostgreSQL comes from ``DUALRES_BENCH_POSTGRES_URL`` or ``DUALRES_TEST_POSTGRES_URL``
(``scripts/pg-test-server`` prints one); a scratch database is created and
dropped.  Without one, its row says so.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import math
import os
import random
import statistics
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter, perf_counter_ns, process_time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from dualres.verifier import Bundle
from dualres.verifier.wire import credential, jws, statuslist, trustlist

NOW = datetime(2026, 11, 18, tzinfo=UTC)
T = int(NOW.timestamp())
SEED = 20261118  # the same simulated revocations every run
MUNICIPALITIES = 1_741
CREDENTIALS = 10_000_000
REVOKED_SHARE = 0.01
LIST_SIZE = 131_072  # the issuer's default (DESIGN §6)
BIG_LIST = 1_048_576

Row = dict[str, Any]


# --- helpers -----------------------------------------------------------------------------


def _timed(call: Callable[[], object], n: int, warmup: int = 5) -> list[int]:
    """Per-call nanoseconds of ``n`` calls, after a warm-up, garbage collector off."""
    for _ in range(warmup):
        call()
    out = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(n):
            t0 = perf_counter_ns()
            call()
            out.append(perf_counter_ns() - t0)
    finally:
        gc.enable()
    return out


def _p95(samples: list[int]) -> float:
    s = sorted(samples)
    return float(s[min(len(s) - 1, round(0.95 * (len(s) - 1)))])


def _kb(n: float) -> str:
    return f"{n / 1000:,.1f}"


def log2_binomial(n: int, k: int) -> float:
    """log2 C(n, k): the bits needed to say which k of n entries are set."""
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(2)


def binary_entropy(p: float) -> float:
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


# --- the issuer world: a demo deployment on a scratch database ----------------------------


def _postgres_admin_url() -> str | None:
    url = os.environ.get("DUALRES_BENCH_POSTGRES_URL") or os.environ.get(
        "DUALRES_TEST_POSTGRES_URL"
    )
    return url.replace("postgresql://", "postgresql+psycopg://", 1) if url else None


@contextmanager
def _scratch_database(kind: str, workdir: Path) -> Iterator[str | None]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'bench.sqlite3'}"
        return
    url = _postgres_admin_url()
    if url is None:
        yield None
        return
    from .load_server import create_database, drop_database

    scratch = create_database(url, prefix="dualres_bench")  # migrated; upgrading again is a no-op
    try:
        yield scratch
    finally:
        drop_database(scratch)


def _issuer_world(url: str, workdir: Path) -> tuple[Any, Any, Any, list[int]]:
    """Migrated schema, the demo municipalities with the development keys, 10 registrations."""
    from sqlalchemy import select

    from dualres.issuer.config import Settings
    from dualres.issuer.domain.db import Database
    from dualres.issuer.domain.keys import KeyStore
    from dualres.issuer.domain.models import Municipality
    from dualres.issuer.domain.tenants import bootstrap_demo
    from tests.issuer_support import add_registration

    settings = Settings(
        data_dir=workdir,
        database_url=url,
        base_url="https://issuer.bench",
        demo=True,
        identity_secret=b"\x01" * 32,
    )
    db = Database(url)
    db.upgrade()
    keys = KeyStore(settings)
    ids = []
    with db.session() as s:
        bootstrap_demo(s, settings, keys, NOW)
        m = s.execute(select(Municipality).where(Municipality.lg_code == "203211")).scalar_one()
        for i in range(10):
            r = add_registration(
                s,
                m.id,
                f"bench{i}",
                person_key=f"{i:064x}",
                pairwise_sub="x" * 43,
                now=NOW,
                primary_address="東京都千代田区神田神保町二丁目3番地4",
                second_home_address="長野県北佐久郡軽井沢町大字長倉2140番地",
                second_home_postal_code="389-0111",
                activities=["telework", "volunteer"],
            )
            ids.append(r.id)
    return settings, db, keys, ids


def _bench_db_issuance(kind: str, n: int, holder_jwk: dict[str, str]) -> list[int] | str:
    """Per-credential ns of issue_credential + commit, or why it was not measured."""
    from dualres.issuer.domain.issuance import issue_credential
    from dualres.issuer.domain.models import Registration

    with (
        tempfile.TemporaryDirectory(prefix="dualres-bench-") as tmp,
        _scratch_database(kind, Path(tmp)) as url,
    ):
        if url is None:
            return "not measured: set DUALRES_TEST_POSTGRES_URL (scripts/pg-test-server)"
        settings, db, keys, ids = _issuer_world(url, Path(tmp))
        counter = iter(range(1 << 30))

        def one() -> None:
            with db.session() as s:
                reg = s.get(Registration, ids[next(counter) % len(ids)])
                assert reg is not None
                issue_credential(s, reg, holder_jwk, settings=settings, keys=keys, now=NOW)

        try:
            return _timed(one, n, warmup=10)
        finally:
            db.dispose()


def _claims() -> tuple[dict[str, Any], dict[str, Any]]:
    from tests.support import DISCLOSABLE

    always = {
        "iss": "https://issuer.bench/lg/203211",
        "iat": T,
        "exp": T + 365 * 86_400,
        "vct": credential.VCT,
        "tier": "premium",
        "status": {"status_list": {"idx": 4242, "uri": "https://issuer.bench/lg/203211/status/1"}},
    }
    return always, dict(DISCLOSABLE)


def bench_issuance(quick: bool) -> list[Row]:
    n = 200 if quick else 1000
    lib_n = 300 if quick else 2000
    key = jws.generate_key()
    holder = jws.generate_key()
    holder_jwk = jws.public_jwk(holder)
    always, disclosable = _claims()
    algo = ec.ECDSA(hashes.SHA256())
    issued = credential.issue(
        iss=always["iss"],
        kid="203211-1",
        key=key,
        holder_jwk=holder_jwk,
        tier="premium",
        iat=T,
        exp=always["exp"],
        status_uri=always["status"]["status_list"]["uri"],
        status_idx=4242,
        disclosable=disclosable,
    )
    msg = issued.compact.split("~", 1)[0].rsplit(".", 1)[0].encode("ascii")

    cases: list[tuple[str, list[int] | str]] = []
    cases.append(
        (
            "ES256 sign, raw (cryptography), one issuer-JWT signing input",
            _timed(lambda: key.sign(msg, algo), lib_n),
        )
    )
    cases.append(
        (
            f"ours: `credential.issue()`, no database "
            f"({len(disclosable)} disclosures, 1 signature)",
            _timed(
                lambda: credential.issue(
                    iss=always["iss"],
                    kid="203211-1",
                    key=key,
                    holder_jwk=holder_jwk,
                    tier="premium",
                    iat=T,
                    exp=always["exp"],
                    status_uri=always["status"]["status_list"]["uri"],
                    status_idx=4242,
                    disclosable=disclosable,
                ),
                lib_n,
            ),
        )
    )
    cases.append(
        (
            "sd-jwt 0.10.4: `SDJWTIssuer`, same claims and disclosures",
            _sdjwt_issuer(key, holder, always, disclosable, lib_n),
        )
    )
    cases.append(
        (
            "ours: `issue_credential` + commit, SQLite (WAL, file)",
            _bench_db_issuance("sqlite", n, holder_jwk),
        )
    )
    cases.append(
        (
            "ours: `issue_credential` + commit, PostgreSQL",
            _bench_db_issuance("postgresql", n, holder_jwk),
        )
    )

    title = "Issuing a credential (one process, one credential per transaction)"
    base = statistics.median(cases[0][1]) if isinstance(cases[0][1], list) else float("nan")
    rows: list[Row] = []
    for name, samples in cases:
        if isinstance(samples, str):
            rows.append(
                {
                    "table": title,
                    "operation": name,
                    "median µs": "–",
                    "p95 µs": "–",
                    "per second": "–",
                    "× raw sign": "–",
                    "calls": samples,
                    "_value": float("nan"),
                    "_unit": "µs",
                }
            )
            continue
        med = statistics.median(samples)
        rows.append(
            {
                "table": title,
                "operation": name,
                "median µs": f"{med / 1000:,.1f}",
                "p95 µs": f"{_p95(samples) / 1000:,.1f}",
                "per second": f"{len(samples) / (sum(samples) / 1e9):,.0f}",
                "× raw sign": f"{med / base:.1f}",
                "calls": str(len(samples)),
                "_value": med / 1000,
                "_unit": "µs",
            }
        )
    rows[-1]["_note"] = (
        "Per second = calls ÷ their summed time, one process. The database rows include a "
        "new session, loading the registration, a random status slot (a savepoint insert "
        "that the unique (list, index) constraint guards) and the commit; a commit on SQLite "
        "waits for the WAL fsync. tests/test_concurrency.py runs 4 processes at once."
    )
    return rows


def _sdjwt_issuer(
    key: ec.EllipticCurvePrivateKey,
    holder: ec.EllipticCurvePrivateKey,
    always: dict[str, Any],
    disclosable: dict[str, Any],
    n: int,
) -> list[int] | str:
    try:
        from jwcrypto.jwk import JWK
        from sd_jwt.common import SDObj
        from sd_jwt.issuer import SDJWTIssuer
    except ImportError:
        return "not measured: sd-jwt is not installed"
    issuer_key = JWK.from_pem(jws.private_pem(key))
    holder_key = JWK.from_pem(jws.public_pem(holder))
    claims: dict[Any, Any] = dict(always)
    for name, value in disclosable.items():
        claims[SDObj(name)] = value
    header = {"typ": "dc+sd-jwt", "kid": "203211-1"}

    def one() -> None:
        issued = SDJWTIssuer(
            claims, issuer_key, holder_key, sign_alg="ES256", extra_header_parameters=header
        )
        assert issued.sd_jwt_issuance

    return _timed(one, n)


# --- publishing a status list --------------------------------------------------------------


def _revoked_list(size: int, revoked: list[int]) -> statuslist.StatusList:
    lst = statuslist.StatusList.new(size, 2)
    lst.set_many((i, statuslist.REVOKED) for i in revoked)
    return lst


def bench_publish(quick: bool) -> list[Row]:
    rounds = 3 if quick else 7
    rng = random.Random(SEED)
    k = round(BIG_LIST * REVOKED_SHARE)
    revoked = rng.sample(range(BIG_LIST), k)
    key = jws.generate_key()
    uri = "https://issuer.bench/lg/203211/status/1"
    builds, zips, signs, inflates = [], [], [], []
    token = ""
    for _ in range(rounds):
        t0 = perf_counter()
        lst = _revoked_list(BIG_LIST, revoked)
        t1 = perf_counter()
        lst_json = lst.to_json()  # zlib (Z_RLE) + base64url
        t2 = perf_counter()
        token = jws.sign(
            {"typ": statuslist.STATUS_LIST_TYP, "kid": "203211-1"},
            {"sub": uri, "iat": T, "exp": T + 86_400, "ttl": 300, "status_list": lst_json},
            key,
        )
        t3 = perf_counter()
        statuslist.StatusList.from_json(lst_json)
        t4 = perf_counter()
        builds.append(t1 - t0)
        zips.append(t2 - t1)
        signs.append(t3 - t2)
        inflates.append(t4 - t3)
    compressed = len(statuslist.compress(_revoked_list(BIG_LIST, revoked).data))
    level9 = len(zlib.compress(bytes(_revoked_list(BIG_LIST, revoked).data), 9))
    t9 = []
    for _ in range(rounds):
        data = bytes(_revoked_list(BIG_LIST, revoked).data)
        t0 = perf_counter()
        zlib.compress(data, 9)
        t9.append(perf_counter() - t0)
    bound = log2_binomial(BIG_LIST, k) / 8
    title = (
        f"Publishing one status list: {BIG_LIST:,} entries, 2 bits, 1% revoked "
        f"({k:,}); median of {rounds}"
    )
    ms = statistics.median

    def row(what: str, figure: str, value: float, unit: str) -> Row:
        return {"table": title, "step": what, "figure": figure, "_value": value, "_unit": unit}

    total = ms(builds) + ms(zips) + ms(signs)
    rows = [
        row(
            "build the bit array (set 1% of entries)",
            f"{ms(builds) * 1000:,.1f} ms",
            ms(builds) * 1000,
            "ms",
        ),
        row("zlib (Z_RLE) + base64url", f"{ms(zips) * 1000:,.1f} ms", ms(zips) * 1000, "ms"),
        row("sign the token (JSON + ES256)", f"{ms(signs) * 1000:,.2f} ms", ms(signs) * 1000, "ms"),
        row("**publish total**", f"**{total * 1000:,.1f} ms**", total * 1000, "ms"),
        row(
            "verifier: base64 + inflate",
            f"{ms(inflates) * 1000:,.1f} ms",
            ms(inflates) * 1000,
            "ms",
        ),
        row("uncompressed", f"{BIG_LIST // 4 / 1000:,.1f} KB", BIG_LIST // 4, "B"),
        row("zlib, Z_RLE (what the issuer publishes)", f"{_kb(compressed)} KB", compressed, "B"),
        row(
            "baseline: zlib level 9 (before issue 16), same run",
            f"{_kb(level9)} KB in {ms(t9) * 1000:,.1f} ms",
            level9,
            "B",
        ),
        row("entropy bound, log2 C(n, k)", f"{_kb(bound)} KB", bound, "B"),
        row("signed token", f"{_kb(len(token))} KB", len(token), "B"),
    ]
    rows[-1]["_note"] = (
        f"**Publish total {total * 1000:,.1f} ms** (target ≤ 5 ms: "
        f"{'met' if total * 1000 <= 5 else '**missed**'}); Z_RLE comes to "
        f"**{compressed / bound:.2f}× the entropy bound** of the revoked set (target ≤ 1.6×: "
        f"{'met' if compressed / bound <= 1.6 else '**missed**'}), level 9 to "
        f"{level9 / bound:.2f}× in {ms(t9) * 1000:,.0f} ms. The token adds base64url (4/3) and "
        "the JWS around it. The issuer rebuilds a list only when its version moves (a status "
        "change) or its token ages past the ttl, and answers `304` to a matching "
        "`If-None-Match` (tests/test_status_publish.py)."
    )
    return rows


# --- a nationwide verifier bundle ---------------------------------------------------------------


def _nationwide_startup(
    text: bytes, anchor: Any, quick: bool, row: Callable[[str, str, float, str], Row]
) -> list[Row]:
    """CPU of one ``dualres-verify check`` process on this bundle, without and with its cache."""
    import shutil
    import sys

    from .cli import _cpu_ms, _env, anchor_args

    py = sys.executable
    work = Path(tempfile.mkdtemp(prefix="dualres-bench-nation-"))
    env = _env(work / "home")
    try:
        bundle_file = work / "bundle.json"
        bundle_file.write_bytes(text)
        # Any scan: this one's issuer is not in the bundle, which a verifier
        # finds after the whole start-up (the lookup is one dict access).
        payload = "DR1:" + "0" * 60
        check = [py, "-m", "dualres.verifier.cli", "check", "--bundle", str(bundle_file)]
        check += ["--now", str(T), "--json", *anchor_args(work, anchor)]
        n = 3 if quick else 7
        _cpu_ms([*check, "--state-dir", str(work / "warm"), payload], b"", env)  # .pyc, cache
        crypto, cold, warm = [], [], []
        for i in range(n):
            crypto.append(
                _cpu_ms([py, "-c", "import cryptography.hazmat.primitives.asymmetric.ec"], b"", env)
            )
            state = work / f"cold-{i}"
            cold.append(_cpu_ms([*check, "--state-dir", str(state), payload], b"", env))
            warm.append(_cpu_ms([*check, "--state-dir", str(state), payload], b"", env))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    c, k, w = (statistics.median(x) for x in (crypto, cold, warm))
    return [
        row(
            "one `dualres-verify check` process, CPU: first run (full verification, writes the "
            "verified-bundle cache)",
            f"{k:,.0f} ms ({k / c:.1f}× `import cryptography…ec`)",
            k,
            "ms",
        ),
        row(
            "one `dualres-verify check` process, CPU: next runs (from the cache)",
            f"**{w:,.0f} ms ({w / c:.2f}× `import cryptography…ec`**, target ≤ 3×: "
            f"{'met' if w <= 3 * c else '**missed**'}; that import: {c:,.1f} ms)",
            w,
            "ms",
        ),
    ]


def _bundle_crypto_floor(trust: str, tokens: dict[str, str], anchor: Any) -> Callable[[], object]:
    """What no bundle loader can avoid, on inputs taken apart beforehand (untimed)."""
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from dualres.verifier.wire.b64 import b64d

    def der(sig: bytes) -> bytes:
        return encode_dss_signature(
            int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
        )

    algo, curve = ec.ECDSA(hashes.SHA256()), ec.SECP256R1()
    h, p, sig = trust.split(".")
    trust_input, trust_sig = f"{h}.{p}".encode(), der(b64d(sig))
    body = json.loads(b64d(p))
    issuers = body["issuers"]
    points = [
        b"\x04" + b64d(k["jwk"]["x"]) + b64d(k["jwk"]["y"]) for i in issuers for k in i["keys"]
    ]

    def signed(cert: x509.Certificate) -> tuple[bytes, bytes]:
        return cert.tbs_certificate_bytes, cert.signature

    def load(text: str) -> x509.Certificate:
        return x509.load_der_x509_certificate(base64.b64decode(text))

    # Since issue 15: the issuing CA's certificate (its key imported, its signature by
    # the anchor checked once) and each key's certificate, signed by that CA.
    ca_cert = load(body["issuing_cas"][0])
    ca_point = ca_cert.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    ca_tbs, ca_sig = signed(ca_cert)
    leaves = [signed(load(k["x5c"][0])) for i in issuers for k in i["keys"]]
    lists = []
    for text in tokens.values():
        th, tp, ts = text.split(".")
        body = json.loads(b64d(tp))
        lists.append((f"{th}.{tp}".encode(), der(b64d(ts)), b64d(body["status_list"]["lst"])))

    def call() -> object:
        anchor.verify(trust_sig, trust_input, algo)
        ca_key = ec.EllipticCurvePublicKey.from_encoded_point(curve, ca_point)
        anchor.verify(ca_sig, ca_tbs, algo)
        keys = [ec.EllipticCurvePublicKey.from_encoded_point(curve, q) for q in points]
        for tbs, leaf_sig in leaves:
            ca_key.verify(leaf_sig, tbs, algo)
        inflated = []
        for i, (message, signature, packed) in enumerate(lists):
            keys[2 * i].verify(signature, message, algo)
            # Kept, as a loader keeps them to scan against: 1,741 lists of 32 KB are
            # 57 MB of fresh memory, whose page faults a floor that dropped each list
            # (and reused its memory for the next) never paid; about 23 ms.
            inflated.append(zlib.decompress(packed))
        return keys, inflated

    return call


def bench_bundle(quick: bool) -> list[Row]:
    from dualres.schemas import lgcodes

    rng = random.Random(SEED)
    codes = sorted(c for c in lgcodes._table() if lgcodes.is_municipality(c))
    assert len(codes) == MUNICIPALITIES, len(codes)
    per_municipality = CREDENTIALS / MUNICIPALITIES
    total_revoked = round(CREDENTIALS * REVOKED_SHARE)
    # Each revoked credential belongs to a municipality at random (a multinomial
    # split of the 1%), and sits in a random slot of that municipality's list.
    per_list = Counter(rng.choices(range(MUNICIPALITIES), k=total_revoked))

    from .batch_scale import _Certifier

    anchor = jws.generate_key()
    host = "https://issuer.bench"
    t0 = perf_counter()
    # As a deployment since issue 15: an issuing CA under the anchor, listed once in
    # the trust list, a certificate per key (x5c) made by the issuer's own code, and
    # status list tokens carrying leaf + CA in their header.
    certifier = _Certifier(anchor)
    tokens: dict[str, str] = {}
    issuers = []
    zipped = 0
    bound_bits = 0.0
    for i, code in enumerate(codes):
        m = lgcodes.lookup(code)
        assert m is not None
        keys = [jws.generate_key(), jws.generate_key()]  # in force + announced successor
        k = per_list[i]
        lst = _revoked_list(LIST_SIZE, rng.sample(range(LIST_SIZE), k))
        lst_json = lst.to_json()
        zipped += len(statuslist.compress(lst.data))
        bound_bits += log2_binomial(LIST_SIZE, k)
        uri = f"{host}/lg/{code}/status/1"
        leaves = [certifier.leaf(code, m.name, f"{code}-{n}", key) for n, key in enumerate(keys, 1)]
        tokens[uri] = jws.sign(
            {
                "typ": statuslist.STATUS_LIST_TYP,
                "kid": f"{code}-1",
                "x5c": [leaves[0], certifier.ca_cert],
            },
            {"sub": uri, "iat": T, "exp": T + 86_400, "ttl": 300, "status_list": lst_json},
            keys[0],
        )
        issuers.append(
            {
                "iss": f"{host}/lg/{code}",
                "lg_code": code,
                "name": m.name,
                "prefecture": m.prefecture,
                "keys": [
                    {
                        "kid": f"{code}-1",
                        "jwk": jws.public_jwk(keys[0]),
                        "not_before": T - 86_400,
                        "not_after": T + 7 * 86_400,
                        "x5c": [leaves[0]],
                        "x5c_ca": 0,
                    },
                    {
                        "kid": f"{code}-2",
                        "jwk": jws.public_jwk(keys[1]),
                        "not_before": T + 7 * 86_400,
                        "x5c": [leaves[1]],
                        "x5c_ca": 0,
                    },
                ],
                "status_lists": [uri],
            }
        )
    trust = trustlist.sign(
        iss=host,
        iat=T,
        exp=T + 7 * 86_400,
        issuers=issuers,
        anchor_key=anchor,
        issuing_cas=[certifier.ca_cert],
    )
    built = perf_counter() - t0
    bundle = Bundle.from_tokens(
        trust_list=trust, status_lists=tokens, anchors=[anchor.public_key()], created_at=T
    )
    text = bundle.dumps().encode("utf-8")
    floor_call = _bundle_crypto_floor(trust, tokens, anchor.public_key())
    # CPU time of this process, not the wall clock: on a shared machine the wall
    # clock counts other processes' turns, which fall unevenly on two lines run
    # apart.  Interleaved, after one untimed round of each; each result is dropped
    # before the next call, as a verifier drops its old bundle.
    loads, floors = [], []
    Bundle.loads(text, [anchor.public_key()])
    floor_call()
    for _ in range(3 if quick else 7):
        t1 = process_time()
        Bundle.loads(text, [anchor.public_key()])
        loads.append(process_time() - t1)
        t1 = process_time()
        floor_call()
        floors.append(process_time() - t1)

    load_ratio = statistics.median(loads) / statistics.median(floors)

    # The same 10 million credentials packed densely in one list (DESIGN §6's figure).
    dense_n = CREDENTIALS - CREDENTIALS % 4
    dense = _revoked_list(dense_n, rng.sample(range(dense_n), total_revoked))
    t2 = perf_counter()
    dense_zip = zlib.compress(bytes(dense.data), 9)
    dense_zip_s = perf_counter() - t2
    t3 = perf_counter()
    zlib.decompress(dense_zip)
    dense_inflate = perf_counter() - t3
    dense_bound = CREDENTIALS * binary_entropy(REVOKED_SHARE) / 8

    token_bytes = sum(len(t) for t in tokens.values())
    gz = len(gzip.compress(text, 6))
    title = (
        f"A nationwide verifier bundle: {MUNICIPALITIES:,} municipalities, "
        f"{CREDENTIALS / 1e6:.0f} million credentials, 1% revoked "
        f"({total_revoked:,}), one list of {LIST_SIZE:,} per municipality "
        f"(~{per_municipality:,.0f} credentials each)"
    )

    def row(what: str, figure: str, value: float, unit: str) -> Row:
        return {
            "table": title,
            "part": what,
            "size or time": figure,
            "_value": value,
            "_unit": unit,
        }

    rows = [
        row("status lists, zlib bytes (sum of 1,741)", f"{_kb(zipped)} KB", zipped, "B"),
        row(
            "entropy bound of those lists, Σ log2 C(131,072, kᵢ)",
            f"{_kb(bound_bits / 8)} KB",
            bound_bits / 8,
            "B",
        ),
        row(
            "entropy bound if densely packed, n·H(0.01), n = 10 million",
            f"{_kb(dense_bound)} KB",
            dense_bound,
            "B",
        ),
        row(
            "one dense 10-million-entry list, zlib (compress / inflate)",
            f"{_kb(len(dense_zip))} KB "
            f"({dense_zip_s * 1000:,.0f} / {dense_inflate * 1000:,.1f} ms)",
            len(dense_zip),
            "B",
        ),
        row(
            "status list tokens (signed, base64url), sum",
            f"{_kb(token_bytes)} KB",
            token_bytes,
            "B",
        ),
        row(
            "trust list (1,741 issuers × 2 keys with certificates, issuing CA once, signed)",
            f"{_kb(len(trust))} KB",
            len(trust),
            "B",
        ),
        row(
            "**bundle file** (what a verifier keeps)",
            f"**{len(text) / 1e6:,.2f} MB**",
            len(text),
            "B",
        ),
        row(
            "bundle file, gzip (over HTTP / on a USB stick)",
            f"{gz / 1e6:,.2f} MB",
            gz,
            "B",
        ),
        row(
            "verifier: load + re-verify the bundle (1,742 signatures, 3,483 certificates, "
            "1,741 inflates), CPU",
            f"{statistics.median(loads) * 1000:,.0f} ms",
            statistics.median(loads) * 1000,
            "ms",
        ),
        row(
            "crypto floor of that load, CPU: 5,225 ES256 verifications (1,742 tokens, "
            "3,483 certificates), 3,483 key imports, 1,741 inflates kept (inputs "
            "pre-extracted)",
            f"{statistics.median(floors) * 1000:,.0f} ms "
            f"(load = **{load_ratio:.2f}×**, target ≤ 1.3×: "
            f"{'met' if load_ratio <= 1.3 else '**missed**'})",
            statistics.median(floors) * 1000,
            "ms",
        ),
        row(
            "issuer side: build and sign all of it (incl. 3,482 key generations and certificates)",
            f"{built:,.1f} s",
            built,
            "s",
        ),
    ]
    rows += _nationwide_startup(text, anchor.public_key(), quick, row)
    rows[-1]["_note"] = (
        f"Herd privacy has a price: spreading each municipality's credentials over "
        f"{LIST_SIZE:,} random slots raises the bound to {bound_bits / 8 / dense_bound:.2f}× "
        f"the dense one, and zlib on 1,741 small lists comes to "
        f"{zipped / (bound_bits / 8):.2f}× that. Most of the bundle is fixed cost per issuer "
        "(keys and their certificates in the trust list; each token's JWS, its x5c header, "
        f"base64url and URI), not revocation data; gzip brings a full national sync to "
        f"{gz / 1e6:,.2f} MB."
    )
    return rows


# --- entry points -----------------------------------------------------------------------------


def run(quick: bool) -> list[Row]:
    """Every issuer benchmark, as rows (see the module docstring)."""
    return bench_issuance(quick) + bench_publish(quick) + bench_bundle(quick)


def markdown(rows: list[Row]) -> str:
    """The rows as Markdown tables, one per ``table`` title, notes below each."""
    tables: dict[str, list[Row]] = {}
    for r in rows:
        tables.setdefault(r["table"], []).append(r)
    out: list[str] = []
    for title, rs in tables.items():
        cols = [k for k in rs[0] if k != "table" and not k.startswith("_")]
        out += [
            "",
            f"### {title}",
            "",
            "| " + " | ".join(cols) + " |",
            "|" + "|".join("---" if i == 0 else "--:" for i in range(len(cols))) + "|",
        ]
        out += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rs]
        out += [line for r in rs if "_note" in r for line in ("", r["_note"])]
    return "\n".join(out).lstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.issuer", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    t0 = perf_counter()
    rows = run(args.quick)
    print(markdown(rows))
    print(f"({timedelta(seconds=round(perf_counter() - t0))} elapsed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

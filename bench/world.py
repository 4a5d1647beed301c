"""What the benchmarks measure on: the test world's keys, bundle and presentations.

Built on ``tests.support`` (a trust anchor, three municipalities, a holder,
at the fixed clock ``NOW``), so the benchmarks see exactly what the tests see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dualres.verifier import Bundle, get_profile, verify
from dualres.verifier.wire import jws, sdjwt, transport
from dualres.verifier.wire.b64 import b64d, b64e
from dualres.verifier.wire.credential import COUNTER_AUDIENCE
from dualres.wallet.holder import new_nonce
from tests.support import DAY, NOW, TypeRestorer, World, reissue_payload

from . import floor

__all__ = ["NOW", "Fixtures", "build", "self_check"]


@dataclass
class Fixtures:
    world: World
    bundle: Bundle
    issued: str  # the holder's credential, every disclosure included
    trust: dict  # the floor's flattened trust data
    counter_qr: list[str]  # distinct DR1 counter presentations (distinct nonces)
    counter_plain: list[str]  # the same, plain compact SD-JWT+KB


def build(pool: int) -> Fixtures:
    w = World()
    bundle = w.bundle(statuses={13: 1})  # index 13 revoked, for the self-check
    issued = w.issue()
    plain = [w.present(issued, qr=False) for _ in range(pool)]
    return Fixtures(
        world=w,
        bundle=bundle,
        issued=issued,
        trust=floor.prepare(bundle, get_profile("counter")),
        counter_qr=[transport.encode(p) for p in plain],
        counter_plain=plain,
    )


def _resign_kb(
    fx: Fixtures,
    compact: str,
    *,
    aud: str = COUNTER_AUDIENCE,
    iat: int = NOW,
    nonce: str | None = None,
) -> str:
    sd = sdjwt.parse_compact(compact)
    kb = sdjwt.present(
        sdjwt.SdJwt(sd.issuer_jwt, sd.disclosures, None),
        fx.world.holder_key,
        aud=aud,
        iat=iat,
        nonce=nonce or new_nonce(),
    )
    return transport.encode(kb)


def _flip_sig(compact: str, last: bool) -> str:
    parts = compact.split("~")
    i = len(parts) - 1 if last else 0
    h, p, s = parts[i].split(".")
    raw = bytearray(b64d(s))
    raw[7] ^= 0x01
    parts[i] = f"{h}.{p}.{b64e(bytes(raw))}"
    return transport.encode("~".join(parts))


def _edit_payload(compact: str) -> str:
    parts = compact.split("~")
    h, p, s = parts[0].split(".")
    edited = b64d(p).replace(b'"premium"', b'"basic"')
    assert edited != b64d(p)
    parts[0] = f"{h}.{b64e(edited)}.{s}"
    return transport.encode("~".join(parts))


def tampered(fx: Fixtures) -> dict[str, Callable[[], tuple[str, int]]]:
    """Each case: a presentation and the clock at which it must be refused."""
    w, base = fx.world, fx.counter_plain[0]
    sapporo = w.lgs["011002"]
    stranger = jws.generate_key()
    return {
        "issuer signature bit flipped": lambda: (_flip_sig(base, last=False), NOW),
        "KB-JWT signature bit flipped": lambda: (_flip_sig(base, last=True), NOW),
        "issuer payload edited, signature kept": lambda: (_edit_payload(base), NOW),
        "re-signed by another municipality's key": lambda: (
            w.present(reissue_payload(fx.issued, sapporo.key, change={"tier": "basic"})),
            NOW,
        ),
        "issuer not in the trust list": lambda: (
            w.present(
                reissue_payload(
                    fx.issued, stranger, change={"iss": "https://evil.example/lg/999999"}
                )
            ),
            NOW,
        ),
        "KB-JWT by another holder key": lambda: (w.present(fx.issued, holder_key=stranger), NOW),
        "wrong audience": lambda: (_resign_kb(fx, base, aud="urn:dualres:office"), NOW),
        "nonce too short": lambda: (_resign_kb(fx, base, nonce="abc"), NOW),
        "stale KB-JWT": lambda: (_resign_kb(fx, base, iat=NOW - 600), NOW),
        "credential expired": lambda: (w.present(w.issue(iat=NOW - 400 * DAY, exp=NOW - DAY)), NOW),
        "revoked": lambda: (w.present(w.issue(status_idx=13)), NOW),
        "truncated transport": lambda: (fx.counter_qr[2][:-3], NOW),
    }


def self_check(fx: Fixtures) -> list[tuple[str, str, str]]:
    """The floor must accept what ours accepts and refuse what ours refuses.

    Returns (case, floor's answer, our reason); raises AssertionError on a
    disagreement, so a floor that skipped a check cannot produce figures.
    """
    rows = []
    nonces: dict[str, int] = {}
    text = fx.counter_qr[0]
    assert floor.verify(text, fx.trust, nonces, NOW), "floor refuses a genuine presentation"
    ours = verify(text, fx.bundle, "counter", now=NOW, replay=_Store())
    assert ours.ok, f"ours refuses a genuine presentation: {ours.reason}"
    rows.append(("genuine", "accepted", str(ours.reason)))
    cases = dict(tampered(fx))
    cases["replayed nonce"] = lambda: (text, NOW)
    for name, make in cases.items():
        payload, now = make()
        try:
            floor.verify(payload, fx.trust, nonces, now)
        except floor.Rejected as exc:
            floor_answer = f"rejected: {exc}"
        else:
            raise AssertionError(f"the floor accepts a bad presentation: {name}")
        store = _Store() if name != "replayed nonce" else _Store({_nonce_of(text)})
        ours = verify(payload, fx.bundle, "counter", now=now, replay=store)
        assert not ours.ok, f"ours accepts a bad presentation: {name}"
        rows.append((name, floor_answer, str(ours.reason)))
    return rows


def _nonce_of(dr1: str) -> str:
    import json

    kb = transport.decode(dr1, TypeRestorer()).rsplit("~", 1)[1]
    return json.loads(b64d(kb.split(".")[1]))["nonce"]


class _Store:
    """A replay memory for one check: remembers into a plain set."""

    def __init__(self, seen: set[str] | None = None) -> None:
        self.seen = set(seen or ())

    def remember(self, nonce: str, *, now: int, until: int) -> bool:
        if nonce in self.seen:
            return False
        self.seen.add(nonce)
        return True

"""The national status lists, simulated: ``python -m bench.load_scale [--quick]``.

Spreads N credentials over the 1,741 municipalities (evenly, or Zipf-skewed
as populations are), each municipality's credentials over lists of 131,072
entries at random slots (a list counts as full at 85 %, as
issuer/domain/statuslists.py's collision rule makes it), marks a share revoked or
suspended, and builds every list with verifier.wire.statuslist: real zlib,
real base64url.  Prints what docs/scale.md quotes: lists, compressed bytes,
signed-token bytes, and what a verifier downloads per day.
"""

from __future__ import annotations

import argparse
import math
import random
import time

from dualres.verifier.wire import statuslist

MUNICIPALITIES = 1_741
LIST_SIZE = 131_072
FULL_AT = int(0.85 * LIST_SIZE)
# A signed token around the list (header, sub, iat/exp/ttl, ES256 signature), as
# measured on the bundle of docs/benchmarks.md: ~420 bytes each.
TOKEN_OVERHEAD = 420


def spread(total: int, skew: float, rng: random.Random) -> list[int]:
    """Credentials per municipality: even (skew 0) or Zipf with exponent ``skew``."""
    weights = [1 / (rank**skew) for rank in range(1, MUNICIPALITIES + 1)]
    s = sum(weights)
    counts = [int(total * w / s) for w in weights]
    for i in rng.sample(range(MUNICIPALITIES), total - sum(counts)):
        counts[i] += 1
    return counts


def lists_for(n: int, rate: float, rng: random.Random) -> list[int]:
    """zlib+base64url bytes of each list holding one municipality's n credentials."""
    sizes = []
    remaining = n
    while remaining > 0 or not sizes:
        here = min(remaining, FULL_AT)
        remaining -= here
        lst = statuslist.StatusList.new(LIST_SIZE, 2)
        slots = rng.sample(range(LIST_SIZE), here)
        for idx in slots[: round(here * rate)]:
            lst.set(idx, statuslist.REVOKED)
        sizes.append(len(lst.to_json()["lst"]))
    return sizes


def simulate(total: int, rate: float, skew: float, seed: int = 7) -> dict[str, float]:
    rng = random.Random(seed)
    counts = spread(total, skew, rng)
    sizes: list[int] = []
    t0 = time.perf_counter()
    for n in counts:
        sizes += lists_for(n, rate, rng)
    return {
        "lists": len(sizes),
        "largest_municipality": max(counts),
        "smallest_municipality": min(counts),
        "lst_bytes": sum(sizes),
        "token_bytes": sum(sizes) + TOKEN_OVERHEAD * len(sizes),
        "max_list_bytes": max(sizes),
        "seconds": time.perf_counter() - t0,
    }


def changed_share(lists: int, changes_per_day: float) -> float:
    """Share of lists that see at least one status change in a day (changes at random)."""
    return 1 - math.exp(-changes_per_day / lists)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.load_scale")
    ap.add_argument("--quick", action="store_true", help="1 million credentials, not 10")
    args = ap.parse_args(argv)
    total = 1_000_000 if args.quick else 10_000_000
    print(f"{total:,} credentials over {MUNICIPALITIES:,} municipalities, lists of "
          f"{LIST_SIZE:,} × 2 bits, full at {FULL_AT:,}\n")  # fmt: skip
    print("| spread | revoked+suspended | lists | largest municipality | zlib+b64 KB | "
          "signed tokens KB | largest list KB | built in s |")  # fmt: skip
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for skew, name in ((0.0, "even"), (1.0, "Zipf s=1")):
        for rate in (0.01, 0.05):
            r = simulate(total, rate, skew)
            print(f"| {name} | {rate:.0%} | {r['lists']:,} | {r['largest_municipality']:,} | "
                  f"{r['lst_bytes'] / 1000:,.0f} | {r['token_bytes'] / 1000:,.0f} | "
                  f"{r['max_list_bytes'] / 1000:.1f} | {r['seconds']:.1f} |")  # fmt: skip
    print()
    for per_year in (0.01, 0.05):
        per_day = total * per_year / 365
        share = changed_share(MUNICIPALITIES, per_day)
        print(f"- {per_year:.0%} of credentials revoked or suspended per year: {per_day:,.0f} "
              f"changes a day; {share:.0%} of {MUNICIPALITIES:,} lists change on a given day "
              f"(evenly spread)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The floor as a process: ``python -m bench.floor_batch BUNDLE ANCHOR NOW < lines``.

What ``dualres-verify check -`` is compared with in bench/cli.py: the same
presentations, one a line on standard input, checked by ``floor.verify`` in a
process of its own, so that both sides of the ratio are the kernel's count of
a whole process's CPU (collector on, caches as they fall, the line reading),
less that of the same process fed nothing.  The floor writes no answer and
keeps its nonces in a dict: the answer line and the durable replay memory are
part of what the CLI is measured for.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dualres.verifier import Bundle, get_profile
from dualres.verifier.bundle import load_anchor

from . import floor


def main(argv: list[str]) -> int:
    bundle_file, anchor_file, now_text = argv
    bundle = Bundle.load(Path(bundle_file), [load_anchor(anchor_file)])
    trust = floor.prepare(bundle, get_profile("counter"))
    now = int(now_text)
    nonces: dict[str, int] = {}
    for line in sys.stdin.buffer:
        text = line.decode("ascii", "replace").strip()
        if not text:
            continue
        try:
            floor.verify(text, trust, nonces, now)
        except floor.Rejected as exc:
            # The benchmark feeds genuine presentations only: a refusal means it
            # would time something else, so it stops (bench/cli.py: exit 2).
            print(f"floor_batch: refused a presentation: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

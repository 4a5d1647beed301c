"""Run the benchmarks: ``python -m bench [--quick] [--write] [--only NAME ...]``.

Prints Markdown tables; ``--write`` puts them into docs/benchmarks.md between
the figures markers.  Run from the repository root (it imports ``tests.support``).
Two groups run apart and keep their own blocks of the document: ``browser``
(the verifier web app in Chromium, bench/browser.py) and ``load`` (gunicorn on
PostgreSQL under a second process's load, bench/load.py); each says why and
is left out when its Chromium or PostgreSQL is missing.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from .suite import GROUPS, Section, Settings
from .timing import machine
from .world import build

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"


def render(sections: list[Section], info: dict[str, str], *, quick: bool, seconds: float) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {when} with `python -m bench{' --quick' if quick else ''}` "
        f"({'quick' if quick else 'full'} run, {seconds:.0f} s).",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores · {info['os']} · {info['python']} · "
        f"cryptography {info['cryptography']} ({info['openssl']}) · sd-jwt {info['sd-jwt']} · "
        f"PyJWT {info['pyjwt']} · qrcode {info['qrcode']} · zxing-cpp {info['zxing-cpp']} · "
        f"Pillow {info['pillow']}.",
    ]
    for sec in sections:
        lines += [
            "",
            f"### {sec.title}",
            "",
            "| " + " | ".join(sec.header) + " |",
            "|"
            + "|".join(
                "---"
                if i == 0
                or sec.header[i] in ("encoding", "image", "reader settings", "presentation")
                else "--:"
                for i in range(len(sec.header))
            )
            + "|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in sec.rows]
        for note in sec.notes:
            lines += ["", note]
    return "\n".join(lines) + "\n"


def write_doc(figures: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    if START not in text or END not in text:
        sys.exit(f"{DOC}: the markers {START} and {END} are missing")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{figures}{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short run (fewer calls and rounds)")
    ap.add_argument(
        "--write",
        action="store_true",
        help=f"rewrite the figures section of {DOC.relative_to(DOC.parent.parent)}",
    )
    groups = [*GROUPS, "issuer", *APART]
    ap.add_argument(
        "--only",
        action="append",
        choices=sorted(groups),
        metavar="NAME",
        help=f"run only this group (repeatable): {', '.join(groups)}",
    )
    ap.add_argument(
        "--baseline",
        metavar="REF",
        help="load group: first run the same load on commit REF and compare the server CPU "
        "per issuance (e.g. the commit before a change)",
    )
    args = ap.parse_args(argv)
    in_process = [g for g in args.only or [] if g not in APART]
    if args.write and in_process:
        ap.error("--write needs the whole run (leave out --only, or name only browser/load)")
    rc = 0
    if args.only and not in_process:
        for name in args.only:
            rc = max(rc, _apart(name, args.quick, args.write, args.baseline))
        return rc

    settings = Settings(quick=args.quick)
    started = time.perf_counter()
    fx = build(settings.pool)
    sections = []
    for name, run in GROUPS.items():
        if args.only and name not in args.only:
            continue
        print(f"[bench] {name} …", file=sys.stderr, flush=True)
        sections.append(run(fx, settings))
    issuer_md = ""
    if not args.only or "issuer" in args.only:
        # Issuance, status-list publishing and nationwide bundle sizes (bench/issuer.py);
        # PostgreSQL lines need DUALRES_BENCH_POSTGRES_URL or DUALRES_TEST_POSTGRES_URL.
        from . import issuer

        print("[bench] issuer …", file=sys.stderr, flush=True)
        issuer_md = issuer.markdown(issuer.run(args.quick))
    out = render(sections, machine(), quick=args.quick, seconds=time.perf_counter() - started)
    if issuer_md:
        out += "\n" + issuer_md
    print(out)
    if args.write:
        write_doc(out)
        print(f"[bench] figures written to {DOC}", file=sys.stderr)
    for name in APART:
        if not args.only or name in args.only:
            _apart(name, args.quick, args.write, args.baseline)
    return rc


# Groups with a process (and a block of the document) of their own.
APART = ("browser", "load")


def _apart(name: str, quick: bool, write: bool, baseline: str | None = None) -> int:
    print(f"[bench] {name} …", file=sys.stderr, flush=True)
    if name == "browser":
        from . import browser as mod
    else:
        from . import load as mod
    flags = [f for f, on in (("--quick", quick), ("--write", write)) if on]
    if baseline and name == "load":
        flags += ["--baseline", baseline]
    rc = mod.main(flags)
    if rc:
        print(f"[bench] {name}: skipped (exit {rc}, reason above)", file=sys.stderr)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())

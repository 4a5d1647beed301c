"""The end-to-end demo on the embedded default: issue → present → QR → scan → verify offline.

Uses the development keys of ``keys.example/`` (never production keys) and
writes everything it makes under ``var/demo/`` so a person can look at it:
the trust bundle, the QR images, the verifier's replay memory.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from dualres.verifier import Bundle, SqliteReplayStore, verify
from dualres.verifier.result import VerificationResult
from dualres.verifier.wire import credential, jws, statuslist, trustlist
from dualres.wallet import holder

ROOT = Path(__file__).resolve().parents[1]
HOST = "https://demo.dualres.example.jp"
LG = ("203211", "軽井沢町", "長野県", "Karuizawa")
DEMO_PERSON = {
    "person": {
        "family_name": "二地",
        "given_name": "住代",
        "family_name_kana": "ニチ",
        "given_name_kana": "スミヨ",
        "birthdate": "1988-07-07",
    },
    "primary_residence": {"lg_code": "131016", "name": "東京都千代田区"},
    "second_home": {"address": "長野県北佐久郡軽井沢町大字軽井沢1323-1", "postal_code": "389-0102"},
    "activities": ["telework", "volunteer"],
    "registered_since": "2026-04-01",
}


def keys_dir() -> Path:
    return Path(os.environ.get("DUALRES_KEYS_DIR", ROOT / "keys.example"))


def _demo_keys(kdir: Path, code: str) -> tuple[Any, Any, Any]:
    """The development keys of a checkout; throwaway keys where there are none.

    An installed wheel has no keys.example/: the demo signs and checks its own
    credential, so keys made for this run show the same thing.
    """
    try:
        anchor = jws.load_private_pem((kdir / "trust-anchor.pem").read_bytes())
        anchor_pub = jws.load_public_pem((kdir / "trust-anchor.pub.pem").read_bytes())
        lg_key = jws.load_private_pem((kdir / f"lg-{code}.pem").read_bytes())
    except FileNotFoundError:
        print(
            "開発用の鍵がないため、このデモ限りの鍵を使います / "
            f"no development keys in {kdir}: using keys made for this run"
        )
        anchor, lg_key = jws.generate_key(), jws.generate_key()
        anchor_pub = anchor.public_key()
    return anchor, anchor_pub, lg_key


def default_out() -> Path:
    # In a checkout beside the code (var/ is ignored); installed, where the user is.
    return ROOT / "var" / "demo" if (ROOT / "pyproject.toml").exists() else Path("dualres-demo")


def _show(step: str, result: VerificationResult) -> None:
    mark = "✅" if result.ok else "❌"
    who = f"{result.issuer.prefecture}{result.issuer.name}" if result.issuer else "?"
    print(
        f"  {mark} {step}: {result.message('ja')} / {result.message('en')} "
        f"[{result.reason}] — {who}, tier={result.tier}"
    )
    if result.claims:
        print(f"     disclosed: {dict(result.claims)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dualres-demo", description=__doc__)
    parser.add_argument("--out", default=str(default_out()), help="output directory")
    args = parser.parse_args(argv)
    out = Path(args.out)
    # Before any work: the QR half needs the scan and wallet extras.
    try:
        from dualres.verifier.scan import decode_qr_image
        from dualres.wallet.qr import render_png
    except ImportError as exc:
        print(
            "dualres-demo: QRコードの作成と読み取りには追加のパッケージが必要です / needs the"
            f" scan and wallet extras: pip install 'dualres[scan,wallet]' ({exc.name or exc})",
            file=sys.stderr,
        )
        return 2
    out.mkdir(parents=True, exist_ok=True)

    code, name, pref, name_en = LG
    anchor, anchor_pub, lg_key = _demo_keys(keys_dir(), code)
    iss, kid = f"{HOST}/lg/{code}", f"{code}-1"
    uri = f"{iss}/status/1"
    now = int(time.time())

    print("ふるさと住民登録証デモ / registration card demo")
    print(f"1. 発行 / issue: {pref}{name} ({code}) signs with the development key {kid}")
    lst = statuslist.StatusList.new(131_072, 2)
    idx = secrets.randbelow(len(lst))
    holder_key = holder.new_holder_key()
    issued = credential.issue(
        iss=iss,
        kid=kid,
        key=lg_key,
        holder_jwk=jws.public_jwk(holder_key),
        tier="premium",
        iat=now,
        exp=now + 365 * 86_400,
        status_uri=uri,
        status_idx=idx,
        disclosable=DEMO_PERSON,
    )

    def sync() -> Bundle:
        tl = trustlist.sign(
            iss=HOST,
            iat=now,
            exp=now + 7 * 86_400,
            anchor_key=anchor,
            issuers=[
                {
                    "iss": iss,
                    "lg_code": code,
                    "name": name,
                    "prefecture": pref,
                    "name_en": name_en,
                    "keys": [{"kid": kid, "jwk": jws.public_jwk(lg_key)}],
                    "status_lists": [uri],
                }
            ],
        )
        token = statuslist.sign_token(
            lst, uri=uri, iat=now, exp=now + 86_400, ttl=3_600, key=lg_key, kid=kid
        )
        bundle = Bundle.from_tokens(
            trust_list=tl,
            status_lists={uri: token},
            anchors=[anchor_pub],
            created_at=now,
            source=HOST,
        )
        bundle.save(out / "bundle.json")
        return Bundle.load(out / "bundle.json", anchors=[anchor_pub])

    print(f"2. 同期 / sync: trust list + status list → {out / 'bundle.json'}")
    bundle = sync()
    replay_path = out / "replay.sqlite"
    replay_path.unlink(missing_ok=True)
    replay = SqliteReplayStore(replay_path)

    results = []
    for profile in ("counter", "office"):
        text = holder.present_qr_text(issued.compact, holder_key, now=now, profile=profile)
        png = out / f"{profile}-qr.png"
        version = render_png(text, png)
        scanned = decode_qr_image(png)
        print(f"3. 提示 / present ({profile}): {len(text)} chars, QR version {version} (M) → {png}")
        result = verify(scanned[0], bundle, profile, now=now, replay=replay)
        _show(f"scan {profile}", result)
        results.append(result.ok)
        if profile == "counter":
            again = verify(scanned[0], bundle, profile, now=now + 5, replay=replay)
            _show("same QR again (screenshot)", again)
            results.append(again.reason == "replayed")

    print("4. 取消 / revoke, then sync again")
    lst.set(idx, statuslist.REVOKED)
    bundle = sync()
    text = holder.present_qr_text(issued.compact, holder_key, now=now, profile="counter")
    revoked = verify(text, bundle, "counter", now=now, replay=replay)
    _show("scan after revocation", revoked)
    results.append(revoked.reason == "revoked")
    replay.close()
    ok = all(results)
    print(
        "デモ完了 / demo complete" if ok else "demo FAILED", file=sys.stdout if ok else sys.stderr
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

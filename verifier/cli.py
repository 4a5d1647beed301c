"""``dualres-verify``: sync trust data, then check presentations offline.

    dualres-verify sync  --trust-list URL [--anchor PEM [--replace-anchor]] --out FILE
                         [--now T] [--lang ja|en]
    dualres-verify check --bundle FILE [--profile counter|office|shelter] [--now T]
                         [--json] [--lang ja|en] [--anchor PEM] [--state-dir DIR]
                         [--accept-lg CODE[,CODE]] [--accept-pref CODE[,CODE]]
                         [--accept-tier TIER] (PAYLOAD | --image FILE | -)

``--accept-lg``, ``--accept-pref`` and ``--accept-tier`` say whom this counter
serves (municipality codes, prefecture codes 01–47, tiers); a valid credential
from elsewhere is refused with ``outside_policy`` (or ``tier_not_accepted``).

The trust anchor is pinned outside every bundle: ``--anchor`` on the command,
else the PEM file ``$DUALRES_ANCHOR`` names (the verifier's own configuration),
else the pin the first ``sync --anchor`` stored in ``$DUALRES_VERIFY_HOME``
(default ``~/.config/dualres-verify``) as ``anchor.pem``.  The anchor written
inside a bundle file is never trusted: whoever can swap the bundle could write
their own there.  A bundle under any other anchor is refused (``wrong_anchor``).

``check -`` reads one payload per line from standard input, as a
keyboard-wedge QR scanner types them, and answers each line at once.

Exit status: 0 every payload accepted (or the sync succeeded); 1 some payload
rejected; 2 a usage, file, network or bundle error.  Errors are one line on
standard error naming a stable code; never a traceback.

Replay memory (counter mode, DESIGN §5) is a SQLite file.  By default it sits
beside the bundle as ``<bundle stem>.replay.sqlite`` (``bundle.json`` →
``bundle.replay.sqlite``): every scanner process on the machine that checks
against that bundle then shares one memory, so a screenshot refused at one
terminal is refused at the next, and it survives restarts.  ``--state-dir
DIR`` puts it at ``DIR/replay.sqlite`` instead, e.g. when the bundle is on a
read-only USB stick.  The verified bundle is remembered beside the replay
memory (``bundle.verified.json``, verifier/bundlecache.py), so the next
process need not verify the same bundle again.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import math
import os
import re
import sqlite3
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, AnyStr

from dualres.verifier import wareki
from dualres.verifier._verify import verify
from dualres.verifier.bundle import Bundle, BundleError, load_anchor
from dualres.verifier.cliparse import Parser, ParserExit, add_version
from dualres.verifier.profiles import PROFILE_NAMES, Profile, with_policy
from dualres.verifier.replay import SqliteReplayStore
from dualres.verifier.result import VerificationResult
from dualres.verifier.wareki import JST
from dualres.verifier.wire import jws, trustlist

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

# Japan has had no daylight saving since 1951: a fixed offset needs no tzdata.
MAX_LINE = 16_384  # a stdin line; a version-40 QR holds 4,296 characters
ANCHOR_ENV = "DUALRES_ANCHOR"  # a PEM file: the pinned anchor, set by whoever runs the device
HOME_ENV = "DUALRES_VERIFY_HOME"  # where the first sync keeps the anchor it was given

EXIT_OK, EXIT_REJECTED, EXIT_ERROR = 0, 1, 2

TIERS: dict[str, tuple[str, str]] = {
    "premium": ("プレミアム登録", "Premium registration"),
    "basic": ("ベーシック登録", "Basic registration"),
}
WARNINGS: dict[str, tuple[str, str]] = {
    "stale_trust_list": (
        "信頼リストの有効期限が過ぎています（猶予期間中）。早めに更新してください",
        "The trust list is past its expiry (within the grace period): sync soon",
    ),
    "stale_status_list": (
        "取消情報の有効期限が過ぎています（猶予期間中）。早めに更新してください",
        "The status list is past its expiry (within the grace period): sync soon",
    ),
    "paper_compare_photo_id": (
        "紙の登録証です。氏名と生年月日を写真付きの本人確認書類と照合してください",
        "Paper registration card: compare the name and date of birth with a photo ID",
    ),
}
# Said at sync time, when no profile has judged anything yet.
SYNC_WARNINGS: dict[str, tuple[str, str]] = {
    "stale_status_list": (
        "失効リストの有効期限が既に切れています（発行元に確認してください）",
        "A status list has already expired (ask its issuer)",
    ),
    "missing_status_list": (
        "失効リストが含まれていません。この発行元の証明書は確認できません",
        "A status list is missing: this issuer's credentials cannot be checked",
    ),
}
PREFECTURES_EN: dict[str, str] = {
    "北海道": "Hokkaido",
    "青森県": "Aomori",
    "岩手県": "Iwate",
    "宮城県": "Miyagi",
    "秋田県": "Akita",
    "山形県": "Yamagata",
    "福島県": "Fukushima",
    "茨城県": "Ibaraki",
    "栃木県": "Tochigi",
    "群馬県": "Gunma",
    "埼玉県": "Saitama",
    "千葉県": "Chiba",
    "東京都": "Tokyo",
    "神奈川県": "Kanagawa",
    "新潟県": "Niigata",
    "富山県": "Toyama",
    "石川県": "Ishikawa",
    "福井県": "Fukui",
    "山梨県": "Yamanashi",
    "長野県": "Nagano",
    "岐阜県": "Gifu",
    "静岡県": "Shizuoka",
    "愛知県": "Aichi",
    "三重県": "Mie",
    "滋賀県": "Shiga",
    "京都府": "Kyoto",
    "大阪府": "Osaka",
    "兵庫県": "Hyogo",
    "奈良県": "Nara",
    "和歌山県": "Wakayama",
    "鳥取県": "Tottori",
    "島根県": "Shimane",
    "岡山県": "Okayama",
    "広島県": "Hiroshima",
    "山口県": "Yamaguchi",
    "徳島県": "Tokushima",
    "香川県": "Kagawa",
    "愛媛県": "Ehime",
    "高知県": "Kochi",
    "福岡県": "Fukuoka",
    "佐賀県": "Saga",
    "長崎県": "Nagasaki",
    "熊本県": "Kumamoto",
    "大分県": "Oita",
    "宮崎県": "Miyazaki",
    "鹿児島県": "Kagoshima",
    "沖縄県": "Okinawa",
}


class _UsageError(Exception):
    """A failure before any payload is judged: exit 2 with one line."""

    def __init__(self, ja: str, en: str) -> None:
        super().__init__(en)
        self.ja = ja
        self.en = en


# --- time ------------------------------------------------------------------------------


def parse_time(text: str) -> int:
    """ISO 8601 (an offset, or none for UTC) or integer epoch seconds → epoch seconds."""
    s = text.strip()
    if re.fullmatch(r"[+-]?[0-9]+", s):
        return int(s)
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not ISO 8601 or epoch seconds: {text!r} (e.g. 2026-11-18T18:46:40+09:00)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return math.floor(dt.timestamp())


def _now(fixed: int | None) -> int:
    return fixed if fixed is not None else math.floor(datetime.now(UTC).timestamp())


def _jst(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, JST)


def _date_text(d: date, lang: str) -> str:
    if lang == "en":
        return wareki.wareki(d, "en")
    return f"{wareki.wareki(d)}（{d.isoformat()}）"


def _moment_text(epoch: int, lang: str) -> str:
    t = _jst(epoch)
    if lang == "en":
        return f"{t:%Y-%m-%d %H:%M} JST"
    return f"{wareki.wareki(t.date())} {t:%H:%M}（{t:%Y-%m-%d}）"


# --- output ----------------------------------------------------------------------------


def _t(lang: str, ja: str, en: str) -> str:
    return en if lang == "en" else ja


def _fail(lang: str, ja: str, en: str) -> int:
    print(f"dualres-verify: {_t(lang, ja, en)}", file=sys.stderr, flush=True)
    return EXIT_ERROR


def _issuer_text(result: VerificationResult, lang: str) -> str:
    info = result.issuer
    if info is None:
        return "?"
    if lang == "en":
        pref = PREFECTURES_EN.get(info.prefecture, info.prefecture)
        return f"{info.name_en or info.name} ({pref})"
    return f"{info.name}（{info.prefecture}）"


def _claim_lines(claims: Mapping[str, Any], lang: str) -> list[str]:
    """Disclosed claims as a clerk reads them; anything unexpected shown as JSON."""
    lines: list[str] = []
    rest = dict(claims)
    person = rest.pop("person", None)
    if isinstance(person, dict):
        p = dict(person)
        name = " ".join(str(p.pop(k)) for k in ("family_name", "given_name") if k in p)
        kana = " ".join(str(p.pop(k)) for k in ("family_name_kana", "given_name_kana") if k in p)
        if name:
            lines.append(f"{_t(lang, '氏名', 'Name')}: {name}")
        if kana:
            lines.append(f"{_t(lang, 'フリガナ', 'Name (kana)')}: {kana}")
        if "birthdate" in p:
            born = p.pop("birthdate")
            try:
                born_text = _date_text(date.fromisoformat(str(born)), lang)
            except ValueError:
                born_text = str(born)
            lines.append(f"{_t(lang, '生年月日', 'Date of birth')}: {born_text}")
        lines += [f"{k}: {_json(v)}" for k, v in p.items()]
    elif person is not None:
        lines.append(f"person: {_json(person)}")
    residence = rest.pop("primary_residence", None)
    if isinstance(residence, dict) and isinstance(residence.get("name"), str):
        lines.append(
            f"{_t(lang, '住所（市区町村）', 'Residence (municipality)')}: {residence['name']}"
        )
    elif residence is not None:
        lines.append(f"primary_residence: {_json(residence)}")
    labels = {
        "second_home": ("居所", "Second home"),
        "activities": ("活動", "Activities"),
        "registered_since": ("登録日", "Registered since"),
        "sub": ("識別子", "Subject id"),
    }
    for key, value in rest.items():
        label = _t(lang, *labels[key]) if key in labels else key
        lines.append(f"{label}: {_json(value)}")
    return lines


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def format_result(result: VerificationResult, lang: str = "ja") -> str:
    """The human answer for one payload: a verdict line, then details, then warnings."""
    lines: list[str] = []
    if result.ok:
        head = f"✅ {_t(lang, '有効', 'Valid')} — {_issuer_text(result, lang)}"
        if result.tier:
            tier = TIERS.get(result.tier, (result.tier, result.tier))
            head += f" {_t(lang, '区分', 'Tier')}: {_t(lang, *tier)}"
        if result.valid_until is not None:
            # exp is the first instant no longer valid; a card shows the last valid day.
            last_day = _jst(result.valid_until - 1).date()
            head += f" {_t(lang, '有効期限', 'Valid until')}: {_date_text(last_day, lang)}"
        lines.append(head)
        lines += [f"  {line}" for line in _claim_lines(result.claims, lang)]
    else:
        lines.append(f"❌ {_t(lang, '無効', 'Invalid')} — {result.message(lang)} ({result.reason})")
    for warning in result.warnings:
        code = warning.split(" ", 1)[0]
        words = WARNINGS.get(code)
        lines.append(f"⚠ {_t(lang, *words)} ({code})" if words else f"⚠ {warning}")
    return "\n".join(lines)


# --- the pinned anchor -------------------------------------------------------------------


def config_dir() -> Path:
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dualres-verify"


def pin_path() -> Path:
    return config_dir() / "anchor.pem"


def _configured_anchor() -> tuple[ec.EllipticCurvePublicKey, str] | None:
    """The anchor this verifier is configured with (``$DUALRES_ANCHOR``, else the pin
    the first sync stored), and where it came from; None when there is none."""
    env = os.environ.get(ANCHOR_ENV)
    if env:
        return load_anchor(env), env
    pin = pin_path()
    if pin.exists():
        return load_anchor(pin), str(pin)
    return None


def _no_anchor(lang: str) -> int:
    return _fail(
        lang,
        "信頼アンカーが設定されていません (no_anchor): 最初の同期で "
        "dualres-verify sync --anchor PEM を指定するか、"
        "--anchor か $DUALRES_ANCHOR で指定してください",
        "no trust anchor is pinned (no_anchor): give --anchor PEM to the first sync, "
        "or --anchor or $DUALRES_ANCHOR here",
    )


def _write_pin(anchor: ec.EllipticCurvePublicKey) -> None:
    target = pin_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(jws.public_pem(anchor))
    os.replace(tmp, target)


# --- check -----------------------------------------------------------------------------


def _replay_path(bundle: Path, state_dir: str | None) -> Path:
    if state_dir is not None:
        return Path(state_dir) / "replay.sqlite"
    return bundle.with_name(f"{bundle.stem}.replay.sqlite")


def _whole_lines(read: Callable[[int], AnyStr], newline: AnyStr) -> Iterator[AnyStr]:
    """Lines of at most MAX_LINE, read in bounded pieces: a longer line is cut there and
    the rest of it skipped, so it gets one answer (``too_large``), not one per piece."""
    while chunk := read(MAX_LINE):
        if len(chunk) == MAX_LINE and not chunk.endswith(newline):
            while (rest := read(MAX_LINE)) and not rest.endswith(newline):
                pass
        yield chunk


def _cache_path(state_dir: str | None) -> Path:
    """Where the verified bundle is remembered (verifier/bundlecache.py).

    In the scanner's own state (``--state-dir``) or beside the anchor pin, never
    beside the bundle: the anchor is pinned outside the bundle because the bundle's
    folder is not trusted, and a cache written there could claim anything verified.
    """
    if state_dir is not None:
        return Path(state_dir) / "bundle.verified.json"
    return config_dir() / "bundle.verified.json"


def _stdin_lines() -> Iterator[str]:
    """Lines as they arrive; undecodable bytes become a rejected payload, not a crash."""
    raw = getattr(sys.stdin, "buffer", None)
    if raw is None:  # replaced by a text stream (tests, embedding programs)
        yield from _whole_lines(sys.stdin.readline, "\n")
        return
    for chunk in _whole_lines(raw.readline, b"\n"):
        yield chunk.decode("utf-8", "replace")


def _payloads(args: argparse.Namespace) -> Iterator[str]:
    if args.image is not None:
        from dualres.verifier.scan import ScanError, decode_qr_image

        try:
            texts = decode_qr_image(args.image)
        except ScanError as exc:
            raise _UsageError(f"画像を読めません: {exc}", f"cannot read the image: {exc}") from exc
        if not texts:
            raise _UsageError(
                f"QRコードが見つかりません (no_qr_found): {args.image}",
                f"no QR code found (no_qr_found): {args.image}",
            )
        yield from texts
    elif args.payload == "-":
        if sys.stdin.isatty():
            print(
                _t(
                    args.lang,
                    "QRコードを読み取ってください（終了: Ctrl-D）",
                    "Scan QR codes (end with Ctrl-D)",
                ),
                file=sys.stderr,
                flush=True,
            )
        for line in _stdin_lines():
            # A wedge scanner ends each code with Enter; blank lines are key bounce.
            if line.strip():
                yield line.strip()
    else:
        yield args.payload


def _codes(text: str | None) -> list[str]:
    return [c.strip() for c in (text or "").split(",") if c.strip()]


def _policy(args: argparse.Namespace) -> Profile:
    try:
        return with_policy(
            args.profile,
            lg_codes=_codes(args.accept_lg),
            prefectures=[c.zfill(2) for c in _codes(args.accept_pref)],
            tiers=_codes(args.accept_tier),
        )
    except ValueError as exc:
        raise _UsageError(f"対象の指定が正しくありません: {exc}", f"bad policy: {exc}") from exc


def _check(args: argparse.Namespace) -> int:
    lang: str = args.lang
    try:
        profile = _policy(args)
    except _UsageError as exc:
        return _fail(lang, exc.ja, exc.en)
    bundle_path = Path(args.bundle)
    try:
        if args.anchor:
            anchor = load_anchor(args.anchor)
        else:
            configured = _configured_anchor()
            if configured is None:
                return _no_anchor(lang)
            anchor = configured[0]
        # Always the pinned anchor, never the one recorded inside the file.
        cache_file = _cache_path(args.state_dir)
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            cache: Path | None = cache_file
        except OSError:
            cache = None  # then no cache: checking still works, only slower to start
        bundle = Bundle.load(bundle_path, [anchor], cache=cache)
    except BundleError as exc:
        return _fail(
            lang,
            f"バンドルを読み込めません ({exc.code}): {exc.description}",
            f"cannot load the bundle ({exc.code}): {exc.description}",
        )
    replay_file = _replay_path(bundle_path, args.state_dir)
    try:
        replay_file.parent.mkdir(parents=True, exist_ok=True)
        store = SqliteReplayStore(replay_file)
    except (OSError, sqlite3.Error) as exc:
        return _fail(
            lang,
            f"再利用検知の記録を開けません: {replay_file}: {exc}（--state-dir で指定）",
            f"cannot open the replay memory {replay_file}: {exc} (use --state-dir)",
        )
    rejected = False
    # What start-up built (modules, the bundle) lives as long as the process: kept out
    # of the collector's reach, a full collection in a long `check -` session does not
    # walk it again and again.
    gc.freeze()
    out = sys.stdout
    # One encoder for the session: json.dumps with an option builds a new one per line.
    encode = json.JSONEncoder(ensure_ascii=False).encode
    try:
        for payload in _payloads(args):
            # Each line is judged at its own time: a scanner session runs for hours.
            result = verify(payload, bundle, profile, now=_now(args.now), replay=store)
            rejected |= not result.ok
            text = encode(result.to_json()) if args.json else format_result(result, lang)
            # One write with its newline (print writes the end apart: two system
            # calls on an unbuffered stdout), flushed at once: someone is waiting.
            out.write(text + "\n")
            out.flush()
    except _UsageError as exc:
        return _fail(lang, exc.ja, exc.en)
    finally:
        store.close()
    return EXIT_REJECTED if rejected else EXIT_OK


# --- sync ------------------------------------------------------------------------------


def _sync(args: argparse.Namespace) -> int:
    # Imported here: http.client, ssl, email and a thread pool are a fifth of
    # the start-up of a process that only checks one scan.
    from dualres.verifier.sync import save, sync

    lang: str = args.lang
    now = _now(args.now)
    pin_it = False
    try:
        configured = _configured_anchor()
        if args.anchor:
            anchor = load_anchor(args.anchor)
            if configured is not None and trustlist.anchor_kid(anchor) != trustlist.anchor_kid(
                configured[0]
            ):
                if not args.replace_anchor:
                    return _fail(
                        lang,
                        f"指定の信頼アンカーが設定済みのもの（{configured[1]}）と違います "
                        "(anchor_changed): 本当に替えるなら --replace-anchor を付けてください",
                        f"this anchor is not the one pinned in {configured[1]} (anchor_changed): "
                        "add --replace-anchor if the national anchor really changed",
                    )
                pin_it = not os.environ.get(ANCHOR_ENV)
            pin_it = pin_it or configured is None
        elif configured is not None:
            anchor = configured[0]
        else:
            return _no_anchor(lang)
        done = sync(args.trust_list, [anchor], now=now)
        save(done.bundle, args.out)
        if pin_it:
            # Pinned only once the anchor verified a real trust list.
            try:
                _write_pin(anchor)
            except OSError as exc:
                return _fail(
                    lang,
                    f"信頼アンカーを保存できません: {pin_path()}: {exc.strerror or exc}",
                    f"cannot store the anchor pin {pin_path()}: {exc.strerror or exc}",
                )
    except BundleError as exc:
        return _fail(
            lang,
            f"同期できません ({exc.code}): {exc.description}",
            f"sync failed ({exc.code}): {exc.description}",
        )
    b = done.bundle
    tl = b.trust_list
    names = [_t(lang, i.name, i.name_en or i.name) for i in tl.issuers.values()]
    shown = "、".join(names) if lang != "en" else ", ".join(names)
    if len(names) > 5:
        shown = _t(lang, f"{'、'.join(names[:5])} ほか", f"{', '.join(names[:5])}, ...")
    list_exps = [e.token.exp for e in b.status.values() if e.token.exp is not None]
    how = _t(lang, "バンドルファイルから", "from a bundle file") if done.carried_bundle else ""
    print(
        _t(
            lang,
            f"✅ 同期しました{how and '（' + how + '）'} → {args.out}",
            f"✅ Synced{how and ' ' + how} → {args.out}",
        )
    )
    print(
        f"  {_t(lang, '発行元', 'Issuers')}: {len(names)}{_t(lang, ' 件', '')}"
        + (f"（{shown}）" if lang != "en" else f" ({shown})")
    )
    line = f"  {_t(lang, '失効リスト', 'Status lists')}: {len(b.status)}{_t(lang, ' 件', '')}"
    if list_exps:
        line += _t(
            lang,
            f"、最も早い期限 {_moment_text(min(list_exps), lang)}",
            f", earliest expiry {_moment_text(min(list_exps), lang)}",
        )
    print(line)
    print(
        f"  {_t(lang, '信頼リストの有効期限', 'Trust list expires')}: {_moment_text(tl.exp, lang)}"
    )
    for warning in done.warnings:
        code, _, where = warning.partition(" ")
        words = SYNC_WARNINGS.get(code)
        print(f"⚠ {_t(lang, *words)} ({code}) {where}" if words else f"⚠ {warning}")
    return EXIT_OK


# --- entry point -----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="dualres-verify",
        description="Verify dual-residence (二地域居住) credentials offline.",
    )
    add_version(parser)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--now",
            type=parse_time,
            default=None,
            metavar="T",
            help="the time to judge at: ISO 8601 (no offset = UTC) or epoch "
            "seconds; default: this computer's clock",
        )
        p.add_argument(
            "--lang", choices=("ja", "en"), default="ja", help="output language (default: ja)"
        )

    s = sub.add_parser("sync", help="fetch and verify the trust list and status lists")
    s.add_argument(
        "--trust-list",
        required=True,
        metavar="URL",
        help="http(s):// or file:// URL or path of the signed trust list, "
        "or of a bundle file (e.g. on a USB stick)",
    )
    s.add_argument(
        "--anchor",
        metavar="PEM",
        help="the trust anchor's public key (PEM), received out of band; the first sync "
        f"pins it (in ${HOME_ENV}, default ~/.config/dualres-verify); "
        f"default: ${ANCHOR_ENV} or that pin",
    )
    s.add_argument(
        "--replace-anchor",
        action="store_true",
        help="with --anchor: replace the pinned anchor (only when the national anchor changed)",
    )
    s.add_argument("--out", required=True, metavar="FILE", help="bundle file to write")
    common(s)
    s.set_defaults(func=_sync)

    c = sub.add_parser("check", help="verify presentations against a synced bundle")
    c.add_argument("--bundle", required=True, metavar="FILE", help="bundle made by sync")
    c.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        default="counter",
        help="what this counter requires (default: counter)",
    )
    common(c)
    c.add_argument(
        "--accept-lg",
        metavar="CODE[,CODE]",
        help="serve only registrants of these municipalities (6-digit codes)",
    )
    c.add_argument(
        "--accept-pref",
        metavar="CODE[,CODE]",
        help="serve only registrants in these prefectures (codes 01-47, e.g. 20 for Nagano)",
    )
    c.add_argument(
        "--accept-tier",
        metavar="TIER",
        help="serve only this tier (basic or premium; comma-separated for several)",
    )
    c.add_argument("--json", action="store_true", help="one JSON object per payload")
    c.add_argument(
        "--anchor",
        metavar="PEM",
        help=f"pinned trust anchor public key; default: ${ANCHOR_ENV}, else the pin the "
        "first sync stored (never the anchor written inside the bundle)",
    )
    c.add_argument(
        "--state-dir",
        metavar="DIR",
        help="directory for replay.sqlite; default: beside the bundle, "
        "as <bundle stem>.replay.sqlite",
    )
    what = c.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "payload",
        nargs="?",
        metavar="PAYLOAD",
        help="the scanned text (DR1:… or a compact SD-JWT); - reads stdin, one payload per line",
    )
    what.add_argument("--image", metavar="FILE", help="decode QR codes from an image")
    c.set_defaults(func=_check)
    return parser


def _quiet_broken_pipe() -> None:
    # `dualres-verify check - | head`: the reader went away.  Point stdout at
    # devnull so the interpreter's final flush does not print a traceback.
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass
    finally:
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    # Japanese output on a console that cannot show it: replace, never crash.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    try:
        args = _parser().parse_args(None if argv is None else list(argv))
    except ParserExit as exc:
        return exc.status
    lang = str(getattr(args, "lang", "ja"))
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _quiet_broken_pipe()
        return EXIT_ERROR
    except Exception as exc:  # a counter gets one line, never a traceback
        return _fail(
            lang,
            f"予期しないエラー ({type(exc).__name__}): {exc}",
            f"unexpected error ({type(exc).__name__}): {exc}",
        )


if __name__ == "__main__":
    raise SystemExit(main())

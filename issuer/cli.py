"""``dualres-issuer``: run and administer one issuer deployment.

    dualres-issuer serve [--demo] [--host H] [--port P] [--base-url URL] [--check]
    dualres-issuer db upgrade
    dualres-issuer db purge [--older-than DAYS] [--dry-run]
    dualres-issuer municipality add CODE | municipality list
    dualres-issuer postal import FILE   (Japan Post's KEN_ALL.CSV, for /apply/'s search)
    dualres-issuer keys generate --municipality CODE [--not-before T] [--pkcs11 URI [--existing]]
    dualres-issuer keys generate --trust-anchor [--pkcs11 URI [--existing]]
    dualres-issuer keys list [--municipality CODE] [--json]
    dualres-issuer keys remove --kid KID --reason TEXT
    dualres-issuer keys certify [--municipality CODE]
    dualres-issuer token create --municipality CODE --role clerk|supervisor [--label TEXT]
                                [--days N]
    dualres-issuer token list [--municipality CODE] [--all] [--json] | token revoke --id N
    dualres-issuer staff create --municipality CODE --role clerk|supervisor --username NAME
                                [--password-file F | --password-env VAR | --password-stdin]
    dualres-issuer staff list [--municipality CODE] [--json]
    dualres-issuer staff disable|enable --username NAME
    dualres-issuer staff password --username NAME [--password-file F | --password-env VAR |
                                  --password-stdin]
    dualres-issuer staff role --username NAME --role clerk|supervisor
    dualres-issuer identity init | demo-cards [--json] | crl
    dualres-issuer identity renew|revoke|unlock --card ID   (the JPKI simulator)

Every command takes ``--data-dir DIR`` (default ``$DUALRES_DATA_DIR`` or
``var/issuer``): it holds the SQLite database (unless ``DATABASE_URL`` names
another), the encrypted private keys and the identity-hash secret.  Commands
are safe to run beside a running server on the same data directory (SQLite
is in WAL mode; each command is one short transaction).

Exit status: 0 done; 2 an error, said in one line on standard error (Japanese,
then English), never a traceback.  Secrets printed once (a new token, a new
trust-anchor public key) go to standard output alone, everything else to
standard error, so ``TOKEN=$(dualres-issuer token create ...)`` works.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import os
import shutil
import signal
import socket
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from dualres.issuer.bootstrap import (
    alembic_heads,
    demo_setup,
    open_first_list,
    schema_problem,
    startup_problems,
)
from dualres.issuer.config import DEMO_MUNICIPALITIES, Settings
from dualres.issuer.domain.db import Database, utc
from dualres.issuer.domain.errors import IssuerError

# One parser for both command lines: it raises ParserExit where argparse would exit.
from dualres.verifier.cliparse import Parser, ParserExit, add_version
from dualres.verifier.wareki import day_start

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

    from dualres.issuer.domain.keys import KeyStore
    from dualres.issuer.domain.models import Municipality

EXIT_OK, EXIT_ERROR = 0, 2
WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # noqa: S104 - names, not a bind
PROG = "dualres-issuer"


class CliError(Exception):
    """A failure to report in one line: Japanese for staff, English for the log."""

    def __init__(self, ja: str, en: str) -> None:
        super().__init__(en)
        self.ja = ja
        self.en = en


def _info(text: str = "") -> None:
    print(text, file=sys.stderr, flush=True)


def _now() -> datetime:
    return datetime.now(UTC)


def _actor() -> str:
    # Audit entries name who ran the command; a container may have no passwd entry.
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}"[:128]


def _audit(
    s: Session,
    m: Municipality,
    action: str,
    *,
    target: str | None,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    """The audit entry for what this command did, naming who ran it."""
    from dualres.issuer.domain import audit

    audit.append(s, m, actor=_actor(), action=action, target=target, detail=detail, now=now)


def _iso(dt: datetime | None) -> str:
    if dt is None:
        return "-"
    return utc(dt).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_when(text: str) -> datetime:
    """``now``, a date (00:00 JST that day: dates are Japanese calendar days),
    or an ISO 8601 date-time (no offset means UTC, as in ``dualres-verify --now``)."""
    s = text.strip()
    if s.lower() == "now":
        return _now()
    try:
        if len(s) == 10:
            d = date.fromisoformat(s)
            return day_start(d)
        return utc(datetime.fromisoformat(s))
    except (ValueError, OverflowError):  # year 1 minus nine hours does not exist
        raise argparse.ArgumentTypeError(
            f"not a date or ISO 8601 date-time: {text!r} (e.g. 2027-04-01 or "
            "2027-04-01T09:00:00+09:00)"
        ) from None


# --- text tables -----------------------------------------------------------------------


def _width(text: str) -> int:
    # Full-width (kanji, kana) characters take two terminal columns.
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [_width(h) for h in header]
    for row in rows:
        widths = [max(w, _width(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c + " " * (w - _width(c)) for c, w in zip(cells, widths, strict=True))

    out = [line(header), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(s.rstrip() for s in out)


# --- the deployment a command works on -----------------------------------------------------


def settings_for(
    args: argparse.Namespace, *, demo: bool = False, base_url: str | None = None
) -> Settings:
    try:
        return Settings.from_env(data_dir=args.data_dir, demo=demo, base_url=base_url)
    except ValueError as exc:  # a bad environment variable: one line, not a traceback
        raise CliError("環境変数の値が正しくありません", str(exc)) from None


@contextmanager
def _database(settings: Settings, *, check_schema: bool = True) -> Iterator[Database]:
    db = Database(settings.database_url)
    from dualres.issuer.domain import audit
    from dualres.issuer.domain.keys import KeyStore

    def unsigned(code: str, exc: Exception) -> None:
        _info(
            f"警告: {code} の監査ログに署名できません（鍵を使えません） / warning: cannot sign "
            f"the audit head of {code} ({type(exc).__name__}): run `{PROG} audit checkpoint "
            "--adopt` with the key available"
        )

    # Commands sign the audit head too; one that cannot use the key still does its work.
    # A demo deployment (`serve --demo`, or DUALRES_DEMO=1 under gunicorn) signs its audit
    # heads with the published development keys; a command on it says so the same way.
    # Never inferred from the database: a key row naming a development key could be
    # written by anyone who can write the database.
    demo = os.environ.get("DUALRES_DEMO") == "1"
    demo_keys = KeyStore(dataclasses.replace(settings, demo=True)) if demo else None
    audit.install(db.sessions, KeyStore(settings), development=demo_keys, on_unavailable=unsigned)
    try:
        if check_schema and (problem := schema_problem(db)) is not None:
            raise CliError(problem.ja, problem.en)
        yield db
    finally:
        db.dispose()


def _municipality(s: Session, code: str) -> Municipality:
    from dualres.issuer.domain.models import Municipality

    m = s.execute(select(Municipality).where(Municipality.lg_code == code)).scalar_one_or_none()
    if m is None:
        raise CliError(
            f"自治体 {code} はこのサーバーに登録されていません"
            f"（dualres-issuer municipality add {code}）",
            f"municipality {code} is not served here: run "
            f"`dualres-issuer municipality add {code}` first",
        )
    return m


# --- serve -------------------------------------------------------------------------------


def _port_problem(host: str, port: int) -> str | None:
    """Try the bind first: werkzeug would print its own lines and sys.exit(1)."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"cannot resolve {host!r}: {exc.strerror}"
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _shown_path(path: Path) -> str:
    """Relative to the working directory when below it (shorter to copy), else absolute."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if rel.startswith("..") else rel


def program(name: str, module: str) -> str:
    """How to type ``name`` here: bare when on PATH, else the venv's script, else -m."""
    beside = Path(sys.executable).with_name(name)
    found = shutil.which(name)
    if found and (not beside.exists() or Path(found).resolve() == beside.resolve()):
        return name
    if beside.exists():
        return _shown_path(beside)
    return f"python -m {module}"


def banner(settings: Settings, *, host: str, port: int, names: Sequence[str]) -> str:
    base = settings.base_url
    issuer_cmd = program("dualres-issuer", "dualres.issuer.cli")
    verify_cmd = program("dualres-verify", "dualres.verifier.cli")
    anchor = (
        settings.keys_dir / "trust-anchor.pub.pem"
        if settings.demo
        else settings.data_dir / "keys" / "trust-anchor.pub.pem"
    )
    data_opt = ""
    if settings.data_dir != Path(os.environ.get("DUALRES_DATA_DIR") or "var/issuer").resolve():
        data_opt = f" --data-dir {_shown_path(settings.data_dir)}"
    mode = (
        "デモモード: 公開済みの開発用鍵で署名します。本番では使わないでください\n"
        "demo mode: signing with the published development keys; never use in production"
        if settings.demo
        else "本番モード / production mode\n"
        "（内蔵サーバーは小規模向け。本番は gunicorn で / use gunicorn for production)"
    )
    served = "、".join(names) if names else "（まだありません: dualres-issuer municipality add）"
    lines = [
        "",
        "dualres 発行サーバー / issuer",
        mode,
        "",
        f"  職員コンソール / console     {base}/console/",
        f"  ウォレット / wallet          {base}/wallet/",
        f"  確認アプリ / verifier app    {base}/verify/",
        f"  信頼リスト / trust list      {base}/trust-list",
        f"  職員 API / staff API         {base}/api/v1",
        f"  API 仕様 / OpenAPI           {base}/api/v1/openapi.json",
        f"  データ / data dir            {settings.data_dir}",
        f"  自治体 / municipalities      {served}",
        f"  待ち受け / listening         http://{host or '*'}:{port}",
        "",
        "職員アカウントの作成 / create a console account:",
        f"  {issuer_cmd} staff create{data_opt} --municipality "
        f"{DEMO_MUNICIPALITIES[0] if settings.demo else 'CODE'} --role supervisor "
        "--username tanaka",
        "職員用トークンの作成（一度だけ表示） / create a staff API token (shown once):",
        f"  {issuer_cmd} token create{data_opt} --municipality "
        f"{DEMO_MUNICIPALITIES[0] if settings.demo else 'CODE'} --role supervisor --label 窓口",
        "検証アプリの同期 / sync a verifier:",
        f"  {verify_cmd} sync --trust-list {base}/trust-list "
        f"--anchor {_shown_path(anchor)} --out bundle.json",
    ]
    if settings.demo:
        lines += [
            "デモ用マイナンバーカード（架空） / synthetic demo cards:",
            f"  {issuer_cmd} identity demo-cards{data_opt}",
        ]
    else:
        lines += [
            "本番の公開 / production: DUALRES_DATA_DIR=... gunicorn -w 4 -b 0.0.0.0:8080 "
            "'dualres.issuer.wsgi:app'",
        ]
    lines += ["停止 / stop: Ctrl+C", ""]
    return "\n".join(lines)


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def cmd_serve(args: argparse.Namespace) -> int:
    from dualres.issuer.domain.models import Municipality

    host: str = args.host
    wildcard = host in WILDCARD_HOSTS
    base_url = args.base_url or os.environ.get("DUALRES_BASE_URL")
    if base_url is None and wildcard and not args.demo:
        # Serving everyone with real keys is a production start: a guessed URL
        # would be signed into every credential (the WSGI entry refuses too).
        raise CliError(
            "公開URLがありません: --base-url か DUALRES_BASE_URL を指定してください",
            f"listening on {host or '*'} with real keys needs the public URL: "
            "--base-url or DUALRES_BASE_URL",
        )
    if base_url is None:
        # Every ``iss`` and status-list URI embeds the base URL: it must be an
        # address wallets and verifiers can reach, which a wildcard is not.
        base_url = f"http://{'127.0.0.1' if wildcard else host}:{args.port}"
        if wildcard:
            _info(f"注意 / note: --base-url を指定してください (using {base_url} in every iss)")
    settings = settings_for(args, demo=args.demo, base_url=base_url)
    now = _now()
    with _database(settings, check_schema=False) as db:
        db.upgrade()
        if settings.demo:
            demo_setup(db, settings, now)
        with db.session() as s:
            problems = startup_problems(settings, s, now)
            names = [
                f"{m.lg_code} {m.name}"
                for m in s.execute(select(Municipality).order_by(Municipality.lg_code)).scalars()
            ]
    if problems:
        more = (
            f" (+{len(problems) - 1} more; see `dualres-issuer keys list`)"
            if len(problems) > 1
            else ""
        )
        raise CliError("起動できません（鍵）", f"cannot start: {problems[0]}{more}")
    if args.check:
        _info(
            f"OK: 起動できます / ready to serve ({len(names)} municipalities, "
            f"{'demo' if settings.demo else 'production'} keys)"
        )
        return EXIT_OK
    if (why := _port_problem(host, args.port)) is not None:
        raise CliError(
            f"ポート {args.port} で待ち受けできません: {why}（--port で変更）",
            f"cannot listen on {host}:{args.port}: {why} (choose another with --port)",
        )

    from werkzeug.serving import make_server

    from dualres.issuer.web.app import create_app

    app = create_app(settings, upgrade=False)
    server = make_server(host, args.port, app, threaded=True)
    _info(banner(settings, host=host, port=args.port, names=names))
    # SIGTERM (docker stop, systemd, a test's terminate()) ends it like Ctrl+C.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        server.serve_forever()  # werkzeug's returns on KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.extensions["dualres"].db.dispose()
    _info("停止しました / stopped")
    return EXIT_OK


# --- db ----------------------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    with _database(settings, check_schema=False) as db:
        before, heads = alembic_heads(db)
        db.upgrade()
    if before == heads:
        _info(f"最新です / already current ({', '.join(sorted(heads))})")
    else:
        _info(f"更新しました / upgraded to {', '.join(sorted(heads))}")
    return EXIT_OK


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = -1
    if days < 0:
        raise argparse.ArgumentTypeError(f"not a whole number of days (0 or more): {text!r}")
    return days


def cmd_db_purge(args: argparse.Namespace) -> int:
    from dualres.issuer.domain.purge import TABLES, purge

    settings = settings_for(args)
    older_than = timedelta(days=args.older_than)
    with _database(settings) as db:
        report = purge(db.sessions, _now(), older_than, dry_run=args.dry_run, actor=_actor())
        counters = 0
        if not args.dry_run:
            from dualres.issuer.domain.staff import purge_failures, purge_sessions

            # Sign-in failure counters of names nobody has tried for half an hour:
            # they name nobody (HMAC of what was typed) and lock nothing.  Console
            # sessions over for longer than the grace go too.
            with db.session() as s:
                counters = purge_failures(s, _now())
                counters += purge_sessions(s, _now(), older_than)
        evidence = _purge_evidence(db, settings, dry_run=args.dry_run)
    what = "対象 / would delete" if args.dry_run else "削除 / deleted"
    totals = report.totals()
    rows = [[t, str(totals[t])] for t in TABLES]
    rows.append(["evidence_files", str(evidence)])
    print(table(["テーブル / table", what], rows), flush=True)
    cutoff = _iso(report.cutoff)
    scope = (
        f"{cutoff} より前に期限切れのオファーとトークン（{args.older_than} 日前）/ offers and "
        f"tokens expired before {cutoff} ({args.older_than} days ago), expired nonces and jtis"
    )
    if args.dry_run:
        _info(f"試行のみ、削除していません / dry run, nothing deleted: {scope}")
    else:
        _info(
            f"削除しました / purged: {scope}; 監査記録 / audit entries: "
            f"{len(report.audited)} municipalities; 古いサインイン失敗の記録と終了したセッション / "
            f"stale sign-in failure counters and ended console sessions: {counters}"
        )
    _info(
        f"申請の証明書類は決定から {settings.evidence_retention_days} 日後に削除 / application "
        f"evidence files go {settings.evidence_retention_days} days after the decision "
        "(evidence_retention_days)"
    )
    return EXIT_OK


def _purge_evidence(db: Database, settings: Settings, *, dry_run: bool) -> int:
    """Evidence files of applications decided longer ago than the retention (docs/apply.md)."""
    from dualres.issuer.domain.applications import purge_evidence
    from dualres.issuer.domain.evidence import FilesystemStore

    store = FilesystemStore(settings.evidence_path)
    with db.session() as s:  # commits at the end of the block; a dry run changes nothing
        return purge_evidence(s, store, now=_now(), settings=settings, dry_run=dry_run)


# --- postal codes ------------------------------------------------------------------------


def cmd_postal_import(args: argparse.Namespace) -> int:
    from dualres.issuer.domain import postal

    settings = settings_for(args)
    path = Path(args.file)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CliError(
            f"ファイルを読めません: {path}", f"cannot read {path}: {exc.strerror or exc}"
        ) from None
    try:
        report = postal.import_ken_all(raw, settings.data_dir)
    except ValueError as exc:
        raise CliError("KEN_ALL.CSV の形式ではありません", f"{path}: {exc}") from None
    _info(
        f"郵便番号を取り込みました / imported postal codes: {report.rows} rows, "
        f"{report.municipalities} municipalities, {report.skipped} rows with a code not in "
        f"the code list skipped -> {settings.data_dir / postal.FILE}"
    )
    return EXIT_OK


# --- municipality ------------------------------------------------------------------------


def cmd_municipality_add(args: argparse.Namespace) -> int:
    from dualres.issuer.domain.models import Municipality
    from dualres.issuer.domain.tenants import ensure_municipality
    from dualres.schemas import lgcodes

    code: str = args.code
    if not lgcodes.is_well_formed(code) or not lgcodes.is_municipality(code):
        raise CliError(
            f"{code} は市区町村の全国地方公共団体コード（6桁、検査数字付き）ではありません",
            f"{code} is not a municipality's 6-digit local government code (with check digit)",
        )
    settings = settings_for(args)
    now = _now()
    with _database(settings) as db, db.session() as s:
        existed = (
            s.execute(select(Municipality).where(Municipality.lg_code == code)).scalar_one_or_none()
            is not None
        )
        m = ensure_municipality(s, code, now)
        open_first_list(s, m, settings, now)
        if not existed:
            _audit(s, m, "municipality.add", target=code, detail={"name": m.name}, now=now)
        label = f"{m.lg_code} {m.prefecture} {m.name}"
    if existed:
        _info(f"登録済みです / already served: {label}")
    else:
        _info(f"追加しました / added: {label}")
        _info(f"次に署名鍵を作成 / next: dualres-issuer keys generate --municipality {code}")
    return EXIT_OK


def cmd_municipality_list(args: argparse.Namespace) -> int:
    from dualres.issuer.domain.keys import signing_key
    from dualres.issuer.domain.models import Credential, Municipality, Registration

    settings = settings_for(args)
    now = _now()
    rows = []
    with _database(settings) as db, db.session() as s:
        for m in s.execute(select(Municipality).order_by(Municipality.lg_code)).scalars():
            try:
                kid = signing_key(s, m, now).kid
            except IssuerError:
                kid = "（なし / none）"
            creds = s.execute(
                select(func.count())
                .select_from(Credential)
                .join(Registration, Credential.registration_id == Registration.id)
                .where(Registration.municipality_id == m.id)
            ).scalar_one()
            rows.append([m.lg_code, m.prefecture, m.name, kid, str(creds)])
    print(table(["コード", "都道府県", "名称", "署名鍵 (kid)", "発行数"], rows))
    return EXIT_OK


# --- keys ----------------------------------------------------------------------------------


# A key's state (keys list --json) -> its Japanese word in the table.
KEY_STATES_JA = {
    "removed": "削除",
    "signing": "使用中",
    "next": "予告",
    "standby": "待機",
    "retired": "退役",
}


def _key_state(key: Any, signer: str | None, now: datetime) -> str:
    if key.removed_at is not None:
        return "removed"
    if key.kid == signer:
        return "signing"
    if key.not_before > now:
        return "next"
    if key.not_after is None or key.not_after > now:
        # In its window but a newer key signs; it would again if that one were removed.
        return "standby"
    return "retired"


MIN_PASSPHRASE = 20


def _need_passphrase(keys: KeyStore) -> None:
    try:
        passphrase = keys.passphrase()
    except IssuerError as exc:
        raise CliError("パスフレーズのファイルを読めません", exc.description) from None
    if not passphrase:
        raise CliError(
            "DUALRES_KEY_PASSPHRASE を設定してください（秘密鍵は暗号化して保存します）",
            "set DUALRES_KEY_PASSPHRASE (or DUALRES_KEY_PASSPHRASE_FILE): "
            "private keys are stored encrypted",
        )
    if len(passphrase) < MIN_PASSPHRASE:
        # PKCS#8 as cryptography writes it stretches with only 2,048 PBKDF2 rounds:
        # the passphrase itself must carry the strength against a stolen file.
        raise CliError(
            f"パスフレーズは{MIN_PASSPHRASE}文字以上にしてください（例: openssl rand -base64 32）",
            f"the key passphrase must be at least {MIN_PASSPHRASE} characters "
            "(e.g. openssl rand -base64 32)",
        )


def _token_key(
    keys: KeyStore, uri_text: str, *, existing: bool
) -> tuple[str, ec.EllipticCurvePublicKey]:
    """Make a key pair inside the token ``uri_text`` names (or take the one there);
    its reference and public key.

    The key is then opened as the issuer will open it (PIN, label, sensitivity,
    a test signature), so a reference that cannot sign is never stored.
    """
    from dualres.issuer.domain import hsm

    try:
        uri = hsm.parse_uri(uri_text)
        ref = str(uri)
        if existing:
            public = keys.signer(ref).public_key()
        else:
            public = hsm.generate(uri, module=keys.settings.pkcs11_module, pin=keys.pkcs11_pin(uri))
            if keys.signer(ref).public_key() != public:
                raise hsm.KeyUnavailable("key_mismatch", f"{ref} opens another key")
    except IssuerError as exc:
        raise CliError(f"HSM の鍵を使えません ({exc.error})", exc.description) from None
    return ref, public


def _certify(keys: Any, key: Any, m: Any) -> bool:
    """Certify a new key under the issuing CA (HAIP x5c); a warning, not a failure,
    where the CA (or the anchor, to make the CA's certificate) is unavailable:
    certify it later with ``keys certify`` where they are."""
    from dualres.issuer.domain.certs import certify
    from dualres.issuer.domain.keys import KeyUnavailable

    try:
        certify(key, m, keys, keys.settings, _now())
    except (IssuerError, KeyUnavailable, OSError, TypeError, ValueError) as exc:
        _info(
            f"  証明書なし（発行 CA またはトラストアンカーが使えません）/ no certificate: the "
            f"issuing CA or the trust anchor is unavailable here ({type(exc).__name__})"
        )
        return False
    _info("  X.509 証明書を発行しました / X.509 certificate issued under the issuing CA")
    return True


def cmd_keys_generate(args: argparse.Namespace) -> int:
    if args.trust_anchor:
        return _generate_anchor(args)
    from dualres.issuer.domain.keys import KeyStore, add_key, signing_key
    from dualres.verifier.wire import jws

    settings = settings_for(args)
    keys = KeyStore(settings)
    if args.existing and not args.pkcs11:
        raise CliError("--existing は --pkcs11 と使います", "--existing goes with --pkcs11")
    if not args.pkcs11:
        _need_passphrase(keys)
    now = _now()
    private = None if args.pkcs11 else jws.generate_key()
    written: Path | None = None
    try:
        with _database(settings) as db, db.session() as s:
            m = _municipality(s, args.municipality)
            try:
                current: str | None = signing_key(s, m, now).kid
            except IssuerError:
                current = None
            not_before: datetime = args.not_before or (
                # Announce a successor a whole trust-list lifetime ahead: every
                # verifier whose bundle is not stale then knows the key before
                # the first credential it signs.
                now + timedelta(seconds=settings.trust_list_lifetime) if current else now
            )
            if private is None:
                # After the municipality check: no orphan key in the token either.
                ref, public = _token_key(keys, args.pkcs11, existing=args.existing)
                where = ref
            else:
                name = f"lg-{m.lg_code}-{int(now.timestamp())}-{os.urandom(3).hex()}.pem"
                ref = keys.write_encrypted(name, private)
                written = settings.data_dir / "keys" / name
                public, where = private.public_key(), str(written)
            key = add_key(s, m, public=public, key_ref=ref, not_before=not_before, now=now)
            certified = _certify(keys, key, m)
            detail = {"not_before": _iso(not_before), "replaces": current, "x509": certified}
            _audit(s, m, "key.add", target=key.kid, detail=detail, now=now)
            kid, code = key.kid, m.lg_code
    except BaseException:
        if written is not None:
            written.unlink(missing_ok=True)  # nothing in the database points at it
        raise
    _info(f"鍵を作成しました / key created: {kid} ({code}), {where}")
    _info(f"  署名開始 / signs from: {_iso(not_before)}")
    if current:
        _info(
            f"  {current} はその時点で署名を終え、発行済みの証明書が切れるまで信頼リストに残ります"
            f" / {current} stops signing then and stays listed until its last credential expires"
        )
    return EXIT_OK


def _generate_anchor(args: argparse.Namespace) -> int:
    from dualres.issuer.domain.keys import DEFAULT_ANCHOR_REF, KeyStore
    from dualres.verifier.wire import jws, trustlist

    settings = settings_for(args)
    keys = KeyStore(settings)
    kdir = settings.data_dir / "keys"
    pub = kdir / "trust-anchor.pub.pem"
    exists = CliError(
        "keys/trust-anchor.pem は既にあります"
        "（信頼アンカーを替えると全検証端末の再設定が必要です）",
        "keys/trust-anchor.pem exists: a new trust anchor means every verifier must pin "
        "the new key; move the old file away first if that is really meant",
    )
    if pub.exists() or (kdir / "trust-anchor.pem").exists():
        raise exists
    public: ec.EllipticCurvePublicKey
    if args.existing and not args.pkcs11:
        raise CliError("--existing は --pkcs11 と使います", "--existing goes with --pkcs11")
    if args.pkcs11:
        ref, public = _token_key(keys, args.pkcs11, existing=args.existing)
    else:
        _need_passphrase(keys)
        private = jws.generate_key()
        try:
            ref = keys.write_encrypted("trust-anchor.pem", private)
        except FileExistsError:
            raise exists from None
        public = private.public_key()
    pem = jws.public_pem(public)
    kdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    pub.write_bytes(pem)
    _info(f"信頼アンカーを作成しました / trust anchor created: kid {trustlist.anchor_kid(public)}")
    if ref != DEFAULT_ANCHOR_REF:
        _info(f"  発行サーバーの設定 / set for the issuer: DUALRES_TRUST_ANCHOR_KEY='{ref}'")
    _info(f"  公開鍵 / public key: {pub}  (検証端末に配布 / give it to every verifier:")
    _info(
        "   dualres-verify sync --trust-list URL --anchor trust-anchor.pub.pem --out bundle.json)"
    )
    sys.stdout.write(pem.decode("ascii"))
    return EXIT_OK


def cmd_keys_list(args: argparse.Namespace) -> int:
    from dualres.issuer.domain.keys import signing_key, trusted_keys
    from dualres.issuer.domain.models import Municipality, SigningKey

    settings = settings_for(args)
    now = _now()
    with _database(settings) as db, db.session() as s:
        q = select(Municipality).order_by(Municipality.lg_code)
        if args.municipality:
            q = q.where(Municipality.lg_code == _municipality(s, args.municipality).lg_code)
        items: list[dict[str, Any]] = []
        for m in s.execute(q).scalars():
            listed = {k.kid for k in trusted_keys(s, m, now)}
            try:
                signer: str | None = signing_key(s, m, now).kid
            except IssuerError:
                signer = None
            for k in s.execute(
                select(SigningKey).where(SigningKey.municipality_id == m.id).order_by(SigningKey.id)
            ).scalars():
                items.append(
                    {
                        "lg_code": m.lg_code,
                        "kid": k.kid,
                        "state": _key_state(k, signer, now),
                        "in_trust_list": k.kid in listed,
                        "not_before": _iso(k.not_before),
                        "not_after": None if k.not_after is None else _iso(k.not_after),
                        "removed_at": None if k.removed_at is None else _iso(k.removed_at),
                        "key_ref": k.key_ref,
                    }
                )
    if args.json:
        print(json.dumps(items, ensure_ascii=False, indent=1))
        return EXIT_OK
    rows = [
        [
            it["lg_code"],
            it["kid"],
            f"{KEY_STATES_JA[it['state']]} {it['state']}",
            "掲載" if it["in_trust_list"] else "-",
            it["not_before"],
            it["not_after"] or "-",
            it["removed_at"] or "-",
            it["key_ref"],
        ]
        for it in items
    ]
    header = ["自治体", "kid", "状態", "信頼リスト", "署名開始", "署名終了", "削除", "保管場所"]
    print(table(header, rows))
    return EXIT_OK


def cmd_keys_certify(args: argparse.Namespace) -> int:
    """Certify keys made before certificates existed, or before the issuing CA or
    the anchor changed (the issuing CA is made under the anchor first if needed)."""
    from dualres.issuer.domain import certs
    from dualres.issuer.domain.keys import KeyStore
    from dualres.issuer.domain.models import SigningKey

    settings = settings_for(args)
    keys = KeyStore(settings)
    now = _now()
    # KeyUnavailable here is the usual key error.
    _, renewed = certs.ensure_issuing_ca(settings, keys, now)
    if renewed:
        _info(
            "発行 CA の証明書をトラストアンカーの下で発行しました / issuing CA certified under "
            f"the trust anchor ({certs.ca_cert_path(settings)})"
        )
    done = []
    with _database(settings) as db, db.session() as s:
        q = select(SigningKey).where(SigningKey.removed_at.is_(None))
        if args.municipality:
            q = q.where(SigningKey.municipality_id == _municipality(s, args.municipality).id)
        for key in s.execute(q.order_by(SigningKey.id)).scalars():
            chain = certs.x5c(key, keys)
            if chain is not None and len(chain) == 2:
                continue  # already certified by this issuing CA under this anchor
            certs.certify(key, key.municipality, keys, settings, now)
            _audit(s, key.municipality, "key.certify", target=key.kid, detail={}, now=now)
            done.append(key.kid)
    _info(
        f"証明書を発行しました / certified: {', '.join(done)}"
        if done
        else "証明書のない鍵はありません / every listed key has a certificate"
    )
    return EXIT_OK


def cmd_keys_remove(args: argparse.Namespace) -> int:
    from dualres.issuer.domain import parse
    from dualres.issuer.domain.keys import signing_key
    from dualres.issuer.domain.models import Credential, SigningKey

    reason = parse.reason({"reason": args.reason})  # 1..500 chars, no My Number
    settings = settings_for(args)
    now = _now()
    with _database(settings) as db, db.session() as s:
        key = s.execute(
            select(SigningKey).where(SigningKey.kid == args.kid).with_for_update()
        ).scalar_one_or_none()
        if key is None:
            raise CliError(f"鍵 {args.kid} はありません", f"no key {args.kid} (see `keys list`)")
        if key.removed_at is not None:
            raise CliError(
                f"鍵 {args.kid} は削除済みです ({_iso(key.removed_at)})",
                f"key {args.kid} was already removed at {_iso(key.removed_at)}",
            )
        key.removed_at = now
        affected = s.execute(
            select(func.count())
            .select_from(Credential)
            .where(Credential.kid == key.kid, Credential.expires_at > now)
        ).scalar_one()
        m = key.municipality
        detail = {"reason": reason, "unexpired_credentials": affected}
        _audit(s, m, "key.remove", target=key.kid, detail=detail, now=now)
        s.flush()
        try:
            successor: str | None = signing_key(s, m, now).kid
        except IssuerError:
            successor = None
        code = m.lg_code
    _info(f"鍵 {args.kid} を削除しました / removed. 次回の同期以降、検証端末はこの鍵を拒否します")
    _info(
        f"  (verifiers reject it after their next sync; {affected} unexpired credentials "
        "signed by it must be issued again)"
    )
    if successor is None:
        _info(
            f"  注意: {code} には署名できる鍵がありません / no key signs for {code} now: "
            f"dualres-issuer keys generate --municipality {code} --not-before now"
        )
    return EXIT_OK


# --- token ---------------------------------------------------------------------------------


def cmd_token_create(args: argparse.Namespace) -> int:
    from dualres.issuer.domain.tokens import create_token

    settings = settings_for(args)
    now = _now()
    label: str = args.label or f"{_actor()} {now.date().isoformat()}"
    with _database(settings) as db, db.session() as s:
        m = _municipality(s, args.municipality)
        token = create_token(s, m, args.role, label, now, days=args.days)
        detail = {"role": args.role, "label": label, "days": args.days}
        _audit(s, m, "api_token.create", target=None, detail=detail, now=now)
        until = _iso(now + timedelta(days=args.days))
    _info(
        f"{m.lg_code} {m.name} の {args.role} 用トークン（{until} まで有効。この一度だけ表示します"
        f" / valid until {until}, shown once):"
    )
    print(token, flush=True)
    return EXIT_OK


TOKEN_STATES_JA = {"live": "有効", "expired": "期限切れ", "revoked": "取消済み"}


def cmd_token_list(args: argparse.Namespace) -> int:
    from dualres.issuer.domain.tokens import list_tokens, token_state

    settings = settings_for(args)
    now = _now()
    with _database(settings) as db, db.session() as s:
        m = _municipality(s, args.municipality) if args.municipality else None
        items: list[dict[str, Any]] = [
            {
                "id": t.id,
                "lg_code": t.municipality.lg_code,
                "role": t.role,
                "label": t.label,
                "state": token_state(t, now),
                "created_at": _iso(t.created_at),
                "expires_at": _iso(t.expires_at),
                "revoked_at": None if t.revoked_at is None else _iso(t.revoked_at),
            }
            for t in list_tokens(s, m)
        ]
    if not args.all:
        items = [it for it in items if it["state"] == "live"]
    if args.json:
        print(json.dumps(items, ensure_ascii=False, indent=1))
        return EXIT_OK
    rows = [
        [
            str(it["id"]),
            it["lg_code"],
            it["role"],
            f"{TOKEN_STATES_JA[it['state']]} {it['state']}",
            it["created_at"],
            it["expires_at"],
            it["label"],
        ]
        for it in items
    ]
    print(table(["id", "自治体", "役割", "状態", "作成", "期限", "ラベル"], rows))
    return EXIT_OK


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from dualres.issuer.domain.models import ApiToken
    from dualres.issuer.domain.tokens import revoke_token

    settings = settings_for(args)
    now = _now()
    with _database(settings) as db, db.session() as s:
        row = s.get(ApiToken, args.id, with_for_update=True)
        if row is None:
            raise CliError(
                f"トークン {args.id} はありません", f"no token {args.id} (see `token list`)"
            )
        if not revoke_token(s, row.id, now):
            raise CliError(
                f"トークン {args.id} は取消済みです", f"token {args.id} was already revoked"
            )
        detail = {"role": row.role, "label": row.label}
        _audit(s, row.municipality, "api_token.revoke", target=str(row.id), detail=detail, now=now)
    _info(f"トークン {args.id} を取り消しました / revoked: refused from the next request on")
    return EXIT_OK


# --- staff ---------------------------------------------------------------------------------


def _read_password(args: argparse.Namespace) -> str:
    """The new password from a file, an environment variable, standard input or a
    terminal prompt (asked twice), in that order of the options given."""
    if args.password_file:
        try:
            text = Path(args.password_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(
                f"パスワードファイルを読めません: {args.password_file}",
                f"cannot read the password file {args.password_file}: {exc}",
            ) from None
        return text.splitlines()[0] if text.strip() else ""
    if args.password_env:
        value = os.environ.get(args.password_env)
        if value is None:
            raise CliError(
                f"環境変数 {args.password_env} がありません",
                f"the environment variable {args.password_env} is not set",
            )
        return value
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        # getpass would fall back to reading a pipe with a warning, or fail on
        # EOF: say what to do instead.
        raise CliError(
            "端末がありません: --password-file、--password-env か "
            "--password-stdin を使ってください",
            "no terminal to ask on: use --password-file FILE, --password-env NAME "
            "or --password-stdin",
        )
    try:
        first = getpass.getpass("パスワード / password (12文字以上 / at least 12 characters): ")
        again = getpass.getpass("もう一度 / again: ")
    except EOFError:
        raise CliError("入力が終わりました", "no password was typed") from None
    if first != again:
        raise CliError("パスワードが一致しません", "the passwords do not match")
    return first


def _new_password(args: argparse.Namespace) -> str:
    from dualres.issuer.domain.staff import MIN_PASSWORD

    password = _read_password(args)
    if len(password) < MIN_PASSWORD:
        raise CliError(
            f"パスワードは{MIN_PASSWORD}文字以上にしてください",
            f"the password must be at least {MIN_PASSWORD} characters",
        )
    return password


def cmd_staff_create(args: argparse.Namespace) -> int:
    from dualres.issuer.domain.staff import create_staff

    password = _new_password(args)
    settings = settings_for(args)
    now = _now()
    with _database(settings) as db, db.session() as s:
        m = _municipality(s, args.municipality)
        user = create_staff(
            s, m, username=args.username, role=args.role, password=password, now=now
        )
        detail = {"username": user.username, "role": user.role}
        _audit(s, m, "staff.create", target=None, detail=detail, now=now)
    _info(f"{m.lg_code} {m.name} の職員 {args.username}（{args.role}）を作成しました / created")
    return EXIT_OK


def cmd_staff_list(args: argparse.Namespace) -> int:
    from dualres.issuer.domain.models import StaffUser
    from dualres.issuer.domain.staff import open_sessions

    settings = settings_for(args)
    now = _now()
    with _database(settings) as db, db.session() as s:
        q = select(StaffUser).order_by(StaffUser.username)
        if args.municipality:
            q = q.where(StaffUser.municipality_id == _municipality(s, args.municipality).id)
        items: list[dict[str, Any]] = [
            {
                "username": u.username,
                "lg_code": u.municipality.lg_code,
                "role": u.role,
                "state": "disabled" if u.disabled_at is not None else "active",
                "created_at": _iso(u.created_at),
                "disabled_at": None if u.disabled_at is None else _iso(u.disabled_at),
                "open_sessions": open_sessions(s, u, now),
            }
            for u in s.execute(q).scalars()
        ]
    if args.json:
        print(json.dumps(items, ensure_ascii=False, indent=1))
        return EXIT_OK
    states = {"active": "有効", "disabled": "停止"}
    rows = [
        [
            it["username"],
            it["lg_code"],
            it["role"],
            f"{states[it['state']]} {it['state']}",
            str(it["open_sessions"]),
            it["created_at"],
        ]
        for it in items
    ]
    print(table(["ユーザー名", "自治体", "役割", "状態", "サインイン中", "作成"], rows))
    return EXIT_OK


def _staff_change(
    args: argparse.Namespace,
    action: str,
    change: Callable[[Session, Any, datetime], dict[str, Any]],
) -> dict[str, Any]:
    """Find the account, change it, audit it, in one transaction."""
    from dualres.issuer.domain.staff import find_staff

    settings = settings_for(args)
    now = _now()
    with _database(settings) as db, db.session() as s:
        try:
            user = find_staff(s, args.username)
        except IssuerError:
            raise CliError(
                f"職員 {args.username} はいません", f"no staff member {args.username}"
            ) from None
        detail = {"username": user.username, **change(s, user, now)}
        _audit(s, user.municipality, action, target=None, detail=detail, now=now)
    return detail


def cmd_staff_disable(args: argparse.Namespace) -> int:
    from dualres.issuer.domain.staff import disable

    d = _staff_change(
        args, "staff.disable", lambda s, u, now: {"sessions_ended": disable(s, u, now)}
    )
    _info(
        f"職員 {args.username} を停止しました（サインイン中のセッション {d['sessions_ended']} 件を"
        f"終了） / disabled; {d['sessions_ended']} console sessions ended"
    )
    return EXIT_OK


def cmd_staff_enable(args: argparse.Namespace) -> int:
    from dualres.issuer.domain.staff import enable

    def change(s: Session, u: Any, now: datetime) -> dict[str, Any]:
        enable(s, u)
        return {}

    _staff_change(args, "staff.enable", change)
    _info(f"職員 {args.username} を再開しました / enabled")
    return EXIT_OK


def cmd_staff_password(args: argparse.Namespace) -> int:
    from dualres.issuer.domain.staff import set_password

    password = _new_password(args)
    d = _staff_change(
        args,
        "staff.password",
        lambda s, u, now: {"sessions_ended": set_password(s, u, password, now)},
    )
    _info(
        f"職員 {args.username} のパスワードを変更しました（セッション {d['sessions_ended']} 件を"
        f"終了） / password set; {d['sessions_ended']} console sessions ended"
    )
    return EXIT_OK


def cmd_staff_role(args: argparse.Namespace) -> int:
    from dualres.issuer.domain.staff import set_role

    def change(s: Session, u: Any, now: datetime) -> dict[str, Any]:
        before = u.role
        set_role(s, u, args.role)
        return {"from": before, "to": args.role}

    _staff_change(args, "staff.role", change)
    _info(
        f"職員 {args.username} の役割を {args.role} にしました / role set (from the next request)"
    )
    return EXIT_OK


# --- identity ----------------------------------------------------------------------------


SEX_JA = {"male": "男", "female": "女"}


def _simulator(args: argparse.Namespace) -> Any:
    from dualres.issuer.domain.identity.jpki import JpkiSimulator

    path = settings_for(args).jpki_path
    if not (path / "crl.der").is_file():
        raise CliError(
            f"JPKI シミュレーターがありません（{path}）: identity init で作成してください",
            f"no JPKI simulator in {path}: create it with 'identity init'",
        )
    return JpkiSimulator(path)


def _resident(card_id: str) -> Any:
    from dualres.issuer.domain.identity.residents import BY_CARD

    if card_id not in BY_CARD:
        raise CliError(f"カード {card_id} はありません", f"no card {card_id}")
    return BY_CARD[card_id]


def cmd_identity_init(args: argparse.Namespace) -> int:
    from dualres.issuer.domain.identity.jpki import JpkiSimulator

    path = settings_for(args).jpki_path
    if (path / "crl.der").is_file():
        raise CliError(f"{path} にはすでにあります", f"{path} already holds a simulator")
    JpkiSimulator.create(path, datetime.now(UTC))
    _info(f"JPKI シミュレーター（試験用の認証局と架空のカード）を作成しました / created in {path}")
    return EXIT_OK


def cmd_identity_demo_cards(args: argparse.Namespace) -> int:
    from dualres.issuer.domain.identity.jpki import AUTH, SIGN
    from dualres.issuer.domain.identity.residents import BY_CARD

    sim = _simulator(args)
    cards = []
    for cid in sim.card_ids():
        r, card = BY_CARD.get(cid), sim.card(cid)
        if r is None:
            continue
        cards.append(
            {
                "card_id": cid,
                **{k: v for k, v in r.facts().items() if k != "birthdate"},
                "birthdate": r.birthdate.isoformat(),
                "sign_password": r.sign_password,
                "pin": r.pin,
                "sign_serial": format(card.certificate(SIGN).serial_number, "x"),
                "sign_tries_left": card.tries_left(SIGN),
                "auth_tries_left": card.tries_left(AUTH),
            }
        )
    if args.json:
        print(json.dumps(cards, ensure_ascii=False, indent=1))
        return EXIT_OK
    rows = [
        [
            c["card_id"],
            f"{c['family_name']} {c['given_name']}",
            f"{c['family_name_kana']} {c['given_name_kana']}",
            c["birthdate"],
            SEX_JA.get(c.get("sex") or "", c.get("sex") or "-"),
            f"{c['address']} ({c['address_lg_code']})",
            c["sign_password"],
            c["pin"],
        ]
        for c in cards
    ]
    _info("デモ用の架空のカードです（実在しません） / synthetic demo cards only")
    header = [
        "カード",
        "氏名",
        "カナ",
        "生年月日",
        "性別",
        "住所 (コード)",
        "署名用",
        "利用者証明用",
    ]
    print(table(header, rows))
    return EXIT_OK


def cmd_identity_renew(args: argparse.Namespace) -> int:
    sim = _simulator(args)
    changes = {"address": args.address} if args.address else {}
    if args.address_lg_code:
        changes["address_lg_code"] = args.address_lg_code
    new = sim.renew(_resident(args.card), datetime.now(UTC), **changes)
    _info(f"カード {args.card} の電子証明書を更新しました / renewed: new serials {new}")
    return EXIT_OK


def cmd_identity_revoke(args: argparse.Namespace) -> int:
    _resident(args.card)
    _simulator(args).revoke(args.card, datetime.now(UTC))
    _info(f"カード {args.card} の電子証明書を失効させました / revoked (CRL republished)")
    return EXIT_OK


def cmd_identity_unlock(args: argparse.Namespace) -> int:
    _resident(args.card)
    sim = _simulator(args)
    for kind in ("sign", "auth"):
        sim.card(args.card).unlock(kind)
    _info(f"カード {args.card} のロックを解除しました / unlocked")
    return EXIT_OK


def cmd_identity_crl(args: argparse.Namespace) -> int:
    _simulator(args).publish_crl(datetime.now(UTC))
    _info("失効リストを再発行しました / CRL republished")
    return EXIT_OK


# --- audit -------------------------------------------------------------------------------------


def _audited_municipalities(s: Session, code: str | None) -> list[Municipality]:
    from dualres.issuer.domain.models import Municipality

    if code is not None:
        return [_municipality(s, code)]
    return list(s.execute(select(Municipality).order_by(Municipality.lg_code)).scalars())


def _checkpoint_lines(paths: Sequence[str]) -> list[str]:
    lines: list[str] = []
    for path in paths:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        lines += [x.strip() for x in text.splitlines() if x.strip() and not x.startswith("#")]
    return lines


def _chain_line(code: str, check: Any) -> str:
    if check.ok:
        signed = "-" if check.signed_seq is None else str(check.signed_seq)
        return (
            f"✅ {code} 監査ログは正常 / audit chain intact: {check.entries} 件 / entries, "
            f"署名済み / signed through {signed}, 外部チェックポイント / outside checkpoints "
            f"{check.checkpoints}"
        )
    return (
        f"❌ {code} 監査ログの改ざんを検出 / audit chain broken at entry "
        f"{check.first_bad_seq}: {check.problem}"
    )


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Recompute every chain (streamed), check the signed heads and the checkpoints given."""
    from dualres.issuer.domain import audit

    settings = settings_for(args)
    lines = _checkpoint_lines(args.checkpoints or [])
    broken = 0
    with _database(settings) as db, db.session() as s:
        for m in _audited_municipalities(s, args.municipality):
            started = time.perf_counter()
            check = audit.verify_chain(s, m, lines)
            took = time.perf_counter() - started
            print(_chain_line(m.lg_code, check))
            _info(f"  {check.entries} entries in {took:.1f} s")
            broken += not check.ok
    return 1 if broken else EXIT_OK


def cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    """Copy each municipality's signed head out of the database, after checking the chain
    against it and against the checkpoints already in the file."""
    from dualres.issuer.domain import audit

    settings = settings_for(args)
    out: str = args.out
    kept = _checkpoint_lines([out]) if out != "-" and Path(out).exists() else []
    now = _now()
    written: list[str] = []
    broken = 0
    with _database(settings) as db:
        with db.session() as s:
            for m in _audited_municipalities(s, args.municipality):
                check = audit.verify_chain(s, m, kept)
                adopt = args.adopt and check.problem == "head not signed"
                if not check.ok and not adopt:
                    print(_chain_line(m.lg_code, check))
                    broken += 1
                    continue
                if adopt:
                    # The operator vouches for entries nobody signed (written before
                    # checkpoints existed); the adoption is itself audited and signed.
                    _audit(s, m, "audit.adopt", target=None, detail={
                        "signed_seq": check.signed_seq, "seq": check.entries}, now=now)  # fmt: skip
                    audit.adopt_head(s, m)
        with db.session() as s:
            for m in _audited_municipalities(s, args.municipality):
                if m.audit_checkpoint is None:
                    _info(f"{m.lg_code}: 署名鍵がないため署名なし / no key yet: nothing signed")
                    continue
                if m.audit_checkpoint not in kept:
                    written.append(m.audit_checkpoint)
    text = "".join(f"{line}\n" for line in written)
    if out == "-":
        sys.stdout.write(text)
    elif text:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    _info(f"チェックポイント / checkpoints written: {len(written)}")
    return 1 if broken else EXIT_OK


# --- parser --------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument(
        "--data-dir",
        metavar="DIR",
        default=None,
        help="data directory (default $DUALRES_DATA_DIR or var/issuer); "
        "DATABASE_URL overrides its SQLite file",
    )

    p = Parser(
        prog=PROG,
        description="dualres 発行サーバーの起動と管理 / run and administer "
        "a dual-residence credential issuer",
    )
    add_version(p)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    serve = sub.add_parser("serve", parents=[common], help="start the issuer (Flask's server)")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="three demo municipalities signed with keys.example/ (never in production)",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--base-url",
        metavar="URL",
        help="public URL prefix of every iss (default http://HOST:PORT)",
    )
    serve.add_argument(
        "--check",
        action="store_true",
        help="upgrade the database, load every key, then exit 0 without serving",
    )
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database schema and housekeeping").add_subparsers(
        dest="db_command", required=True, metavar="ACTION", parser_class=Parser
    )
    db.add_parser("upgrade", parents=[common], help="apply migrations (Alembic)").set_defaults(
        func=cmd_db_upgrade
    )
    pg = db.add_parser(
        "purge",
        parents=[common],
        help="delete expired credential offers, access tokens, nonces and DPoP jtis, and "
        "application evidence files past their retention (safe while serving; run daily)",
    )
    pg.add_argument(
        "--older-than",
        type=_days,
        default=30,
        metavar="DAYS",
        help="keep offers and access tokens until DAYS after they expired (default 30); "
        "nonces and jtis go as soon as they expire",
    )
    pg.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
    pg.set_defaults(func=cmd_db_purge)

    pos = sub.add_parser("postal", help="postal codes for /apply/'s search").add_subparsers(
        dest="postal_command", required=True, metavar="ACTION", parser_class=Parser
    )
    pim = pos.add_parser(
        "import",
        parents=[common],
        help="load Japan Post's KEN_ALL.CSV (Shift_JIS or UTF-8) into the data directory",
    )
    pim.add_argument("file", metavar="FILE", help="KEN_ALL.CSV or utf_ken_all.csv, unzipped")
    pim.set_defaults(func=cmd_postal_import)

    mun = sub.add_parser("municipality", help="municipalities served here").add_subparsers(
        dest="municipality_command", required=True, metavar="ACTION", parser_class=Parser
    )
    add = mun.add_parser("add", parents=[common], help="serve a municipality")
    add.add_argument("code", metavar="CODE", help="6-digit local government code, e.g. 203211")
    add.set_defaults(func=cmd_municipality_add)
    mun.add_parser(
        "list", parents=[common], help="municipalities and their signing keys"
    ).set_defaults(func=cmd_municipality_list)

    keys = sub.add_parser("keys", help="signing keys").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION", parser_class=Parser
    )
    gen = keys.add_parser(
        "generate",
        parents=[common],
        help="a new P-256 key, encrypted with DUALRES_KEY_PASSPHRASE or made in a PKCS#11 token",
    )
    which = gen.add_mutually_exclusive_group(required=True)
    which.add_argument("--municipality", metavar="CODE", help="an issuer key (rotation)")
    which.add_argument(
        "--trust-anchor",
        action="store_true",
        help="the trust-list signing key (prints its public PEM)",
    )
    gen.add_argument(
        "--not-before",
        type=parse_when,
        metavar="T",
        help="when it starts signing: now, a date (00:00 JST) or ISO date-time; "
        "default now for a first key, else a trust-list lifetime ahead",
    )
    gen.add_argument(
        "--pkcs11",
        metavar="URI",
        help="make the key inside a PKCS#11 token instead (HSM; never extractable), e.g. "
        "'pkcs11:token=dualres;object=lg-203211-2'; module and PIN from "
        "DUALRES_PKCS11_MODULE and DUALRES_PKCS11_PIN[_FILE] (docs/keys.md)",
    )
    gen.add_argument(
        "--existing",
        action="store_true",
        help="with --pkcs11: take the key pair already in the token (made by the HSM "
        "vendor's tool or in a key ceremony) instead of making one",
    )
    gen.set_defaults(func=cmd_keys_generate)
    ls = keys.add_parser("list", parents=[common], help="keys and their state")
    ls.add_argument("--municipality", metavar="CODE")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_keys_list)
    rm = keys.add_parser(
        "remove", parents=[common], help="drop a compromised key from the next trust list"
    )
    rm.add_argument("--kid", required=True)
    rm.add_argument("--reason", required=True, metavar="TEXT")
    rm.set_defaults(func=cmd_keys_remove)
    cert = keys.add_parser(
        "certify",
        parents=[common],
        help="issue X.509 certificates under the issuing CA (made under the trust anchor if "
        "there is none) to listed keys that have none, or one from an earlier CA or anchor",
    )
    cert.add_argument("--municipality", metavar="CODE")
    cert.set_defaults(func=cmd_keys_certify)

    tok = sub.add_parser("token", help="staff API tokens").add_subparsers(
        dest="token_command", required=True, metavar="ACTION", parser_class=Parser
    )
    tc = tok.add_parser("create", parents=[common], help="print a new bearer token once")
    tc.add_argument("--municipality", metavar="CODE", required=True)
    tc.add_argument("--role", choices=("clerk", "supervisor"), required=True)
    tc.add_argument("--label", metavar="TEXT", help="who or what holds it (1-128 characters)")
    tc.add_argument(
        "--days", type=int, default=90, metavar="N", help="valid for N days (1-366, default 90)"
    )
    tc.set_defaults(func=cmd_token_create)
    tl = tok.add_parser("list", parents=[common], help="tokens (never the secrets)")
    tl.add_argument("--municipality", metavar="CODE")
    tl.add_argument("--all", action="store_true", help="expired and revoked ones too")
    tl.add_argument("--json", action="store_true")
    tl.set_defaults(func=cmd_token_list)
    tr = tok.add_parser("revoke", parents=[common], help="refuse a token from now on")
    tr.add_argument("--id", type=int, required=True, help="its id in `token list`")
    tr.set_defaults(func=cmd_token_revoke)

    staff = sub.add_parser("staff", help="staff console accounts").add_subparsers(
        dest="staff_command", required=True, metavar="ACTION", parser_class=Parser
    )

    def password_source(p: argparse.ArgumentParser) -> None:
        g = p.add_mutually_exclusive_group()
        g.add_argument("--password-file", metavar="FILE", help="read it from the first line")
        g.add_argument("--password-env", metavar="NAME", help="read it from this variable")
        g.add_argument(
            "--password-stdin", action="store_true", help="read one line from standard input"
        )

    sc = staff.add_parser(
        "create", parents=[common], help="a console sign-in (password from a terminal prompt)"
    )
    sc.add_argument("--municipality", metavar="CODE", required=True)
    sc.add_argument("--role", choices=("clerk", "supervisor"), required=True)
    sc.add_argument("--username", metavar="NAME", required=True)
    password_source(sc)
    sc.set_defaults(func=cmd_staff_create)
    sl = staff.add_parser("list", parents=[common], help="accounts, roles, open sessions")
    sl.add_argument("--municipality", metavar="CODE")
    sl.add_argument("--json", action="store_true")
    sl.set_defaults(func=cmd_staff_list)
    for name, command, text in (
        ("disable", cmd_staff_disable, "refuse sign-in and end its sessions now"),
        ("enable", cmd_staff_enable, "allow sign-in again"),
    ):
        sp = staff.add_parser(name, parents=[common], help=text)
        sp.add_argument("--username", metavar="NAME", required=True)
        sp.set_defaults(func=command)
    sw = staff.add_parser(
        "password", parents=[common], help="set a new password (ends its sessions)"
    )
    sw.add_argument("--username", metavar="NAME", required=True)
    password_source(sw)
    sw.set_defaults(func=cmd_staff_password)
    sr = staff.add_parser("role", parents=[common], help="change the role")
    sr.add_argument("--username", metavar="NAME", required=True)
    sr.add_argument("--role", choices=("clerk", "supervisor"), required=True)
    sr.set_defaults(func=cmd_staff_role)

    aud = sub.add_parser(
        "audit", help="the audit chains and their signed checkpoints"
    ).add_subparsers(dest="audit_command", required=True, metavar="ACTION", parser_class=Parser)
    av = aud.add_parser("verify", parents=[common], help="recompute and check every chain")
    av.add_argument("--municipality", metavar="CODE")
    av.add_argument(
        "--checkpoints",
        metavar="FILE",
        action="append",
        help="checkpoints kept outside the database (one per line; - for stdin); repeatable",
    )
    av.set_defaults(func=cmd_audit_verify)
    ac = aud.add_parser(
        "checkpoint", parents=[common], help="append the signed heads to a file kept elsewhere"
    )
    ac.add_argument("--municipality", metavar="CODE")
    ac.add_argument("--out", metavar="FILE", required=True, help="file to append to (- stdout)")
    ac.add_argument(
        "--adopt",
        action="store_true",
        help="sign a head nobody signed yet (once, after upgrading to signed checkpoints)",
    )
    ac.set_defaults(func=cmd_audit_checkpoint)

    ident = sub.add_parser("identity", help="the JPKI simulator (demo, tests)").add_subparsers(
        dest="identity_command", required=True, metavar="ACTION", parser_class=Parser
    )
    ii = ident.add_parser("init", parents=[common], help="create the test CA and the demo cards")
    ii.set_defaults(func=cmd_identity_init)
    dc = ident.add_parser(
        "demo-cards", parents=[common], help="the synthetic cards, their PINs and state"
    )
    dc.add_argument("--json", action="store_true")
    dc.set_defaults(func=cmd_identity_demo_cards)
    rn = ident.add_parser("renew", parents=[common], help="new certificates, linked to the old")
    rn.add_argument("--card", required=True, metavar="ID")
    rn.add_argument("--address", metavar="TEXT", help="the new address (a move)")
    rn.add_argument("--address-lg-code", metavar="CODE")
    rn.set_defaults(func=cmd_identity_renew)
    rv = ident.add_parser("revoke", parents=[common], help="a lost card: revoke, new CRL")
    rv.add_argument("--card", required=True, metavar="ID")
    rv.set_defaults(func=cmd_identity_revoke)
    ul = ident.add_parser("unlock", parents=[common], help="reset a locked card's PINs")
    ul.add_argument("--card", required=True, metavar="ID")
    ul.set_defaults(func=cmd_identity_unlock)
    cr = ident.add_parser("crl", parents=[common], help="republish the CRL")
    cr.set_defaults(func=cmd_identity_crl)
    return p


def _db_message(exc: SQLAlchemyError) -> str:
    # The driver's first line says what went wrong; SQLAlchemy's full text adds
    # the statement and its parameters, which may hold personal data.
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return f"{type(orig or exc).__name__}: {text[0] if text else ''}"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except ParserExit as exc:
        return exc.status
    try:
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except CliError as exc:
        _info(f"{PROG}: エラー: {exc.ja} / {exc.en}")
    except IssuerError as exc:
        ja = exc.description_ja or exc.description
        _info(f"{PROG}: エラー: {ja} / {exc.error}: {exc.description}")
    except SQLAlchemyError as exc:
        _info(f"{PROG}: エラー: データベース / database: {_db_message(exc)}")
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        _info(f"{PROG}: エラー: ファイル / file{where}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        return 130
    return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())

"""Settings of one issuer deployment, from arguments and the environment.

| variable                   | meaning                                              |
|----------------------------|------------------------------------------------------|
| DATABASE_URL               | SQLAlchemy URL; default SQLite under the data dir    |
| DUALRES_DATA_DIR           | data directory (default ``./var/issuer``)            |
| DUALRES_BASE_URL           | public base URL, the prefix of every ``iss``         |
| DUALRES_IDENTITY_SECRET    | hex HMAC key for identity hashes (else a 0600 file)  |
| DUALRES_KEY_PASSPHRASE     | passphrase of the encrypted private keys             |
| DUALRES_KEY_PASSPHRASE_FILE| a file holding it instead (one line; docs/keys.md)   |
| DUALRES_TRUST_ANCHOR_KEY   | key reference of the trust-anchor key (default       |
|                            | ``file:keys/trust-anchor.pem``; or ``pkcs11:...``)   |
| DUALRES_ISSUING_CA_KEY     | key reference of the deployment's issuing CA, which  |
|                            | certifies municipal keys (default                    |
|                            | ``file:keys/issuing-ca.pem``; docs/keys.md)          |
| DUALRES_PKCS11_MODULE      | PKCS#11 module (default SoftHSM2's)                  |
| DUALRES_PKCS11_PIN[_FILE]  | the tokens' user PIN, or a file holding it           |
| DUALRES_JPKI_DIR           | the JPKI trust files: root.pem, ca.pem, crl.der,     |
|                            | links.json (default <data dir>/jpki; the demo puts   |
|                            | the simulator there: docs/identity.md)               |
| DUALRES_TRUSTED_PROXIES    | reverse proxies in front that set X-Forwarded-For    |
|                            | and X-Forwarded-Proto (default 0: trust no header);  |
|                            | 1 behind one TLS-terminating proxy                   |
| DUALRES_DPOP_NONCE         | 1: DPoP proofs must carry a server-provided nonce    |
|                            | (RFC 9449 §8; default 0, as HAIP leaves it optional)  |
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEV_KEYS_DIR = ROOT / "keys.example"
DEMO_MUNICIPALITIES = ("203211", "011002", "131016")


@dataclass
class Settings:
    data_dir: Path
    database_url: str
    base_url: str = "http://127.0.0.1:8080"
    demo: bool = False
    identity_secret: bytes = b""
    # The JPKI root, CAs, CRL and renewal links the card check trusts; None: <data_dir>/jpki.
    jpki_dir: Path | None = None
    key_passphrase: bytes | None = field(default=None, repr=False)
    key_passphrase_file: Path | None = None  # read when a key is loaded (docs/keys.md)
    trust_anchor_key: str = "file:keys/trust-anchor.pem"
    # The intermediate CA under the anchor (LGPKI-like): it certifies the
    # municipal keys, so the anchor signs a certificate only once per CA.
    issuing_ca_key: str = "file:keys/issuing-ca.pem"
    pkcs11_module: str = "/usr/lib/softhsm/libsofthsm2.so"
    pkcs11_pin: str | None = field(default=None, repr=False)
    pkcs11_pin_file: Path | None = None
    keys_dir: Path = field(default_factory=lambda: DEV_KEYS_DIR)
    status_list_size: int = 131_072  # herd privacy: never smaller (DESIGN §6)
    status_list_token_lifetime: int = 86_400  # exp of a served status list token
    status_list_ttl: int = 300  # the token's ttl: how soon verifiers should refetch
    trust_list_lifetime: int = 7 * 86_400
    credential_max_days: int = 366  # about one year (DESIGN §1)
    # Credentials per OpenID4VCI credential request (batch_credential_issuance):
    # each is shown once at a counter (issue 13).  Chosen by bench/batch_scale.py
    # against the 3 MB nationwide bundle (docs/scale.md §5).
    batch_size: int = 10
    # Days a credential of a batch stays valid (day-granular, never past the
    # registration): short enough that revoked credentials leave the status
    # lists within a month, which keeps the nationwide bundle small; the
    # wallet refills with its refresh token while online (docs/scale.md §5).
    credential_days: int = 30
    max_request_bytes: int = 1024 * 1024
    # Online applications (issue 12, docs/apply.md): the least role that may approve
    # or reject each tier, and how long evidence files outlive the decision.
    review_roles: dict[str, str] = field(
        default_factory=lambda: {"basic": "clerk", "premium": "supervisor"}
    )
    evidence_retention_days: int = 90
    # The OpenID Provider /apply/ signs residents in with; None: the demo stub at /idp.
    oidc_issuer: str | None = None
    # None: <data_dir>/evidence (the filesystem store, issuer/domain/evidence.py).
    evidence_dir: Path | None = None
    # How many proxies' X-Forwarded-For/-Proto to believe.  0 (the default) believes
    # none: a client could otherwise claim https (and get HSTS) or any address.
    trusted_proxies: int = 0
    # RFC 9449 §8 server nonces: they bound a stolen proof's life to minutes
    # rather than the iat window, at the cost of one extra round trip.
    dpop_nonce: bool = False

    @classmethod
    def from_env(
        cls,
        *,
        data_dir: str | Path | None = None,
        demo: bool = False,
        base_url: str | None = None,
        database_url: str | None = None,
    ) -> Settings:
        data = Path(data_dir or os.environ.get("DUALRES_DATA_DIR") or "var/issuer").resolve()
        data.mkdir(parents=True, exist_ok=True)
        url = (
            database_url
            or os.environ.get("DATABASE_URL")
            or f"sqlite:///{data / 'dualres.sqlite3'}"
        )
        passphrase = os.environ.get("DUALRES_KEY_PASSPHRASE")
        # Checked before the identity secret is read (or made) in the data directory.
        proxies = _count("DUALRES_TRUSTED_PROXIES", 0, 10, "proxies")
        # A municipality's records policy decides how long evidence outlives a decision.
        keep = _count("DUALRES_EVIDENCE_RETENTION_DAYS", cls.evidence_retention_days, 3650, "days")
        return cls(
            data_dir=data,
            database_url=url,
            base_url=(base_url or os.environ.get("DUALRES_BASE_URL") or cls.base_url).rstrip("/"),
            demo=demo,
            identity_secret=_identity_secret(data),
            key_passphrase=passphrase.encode("utf-8") if passphrase else None,
            **_env_settings(),
            trusted_proxies=proxies,
            evidence_retention_days=keep,
            dpop_nonce=os.environ.get("DUALRES_DPOP_NONCE", "0").strip().lower()
            in ("1", "true", "yes"),
        )

    @property
    def jpki_path(self) -> Path:
        return self.jpki_dir or self.data_dir / "jpki"

    @property
    def evidence_path(self) -> Path:
        return self.evidence_dir or self.data_dir / "evidence"


def _count(name: str, default: int, most: int, what: str) -> int:
    value = os.environ.get(name, "").strip() or str(default)
    if not value.isdigit() or int(value) > most:
        raise ValueError(f"{name} must be a number of {what}, 0 to {most}")
    return int(value)


def _env_settings() -> dict[str, Any]:
    """The paths and key settings set in the environment (unset: the field's default)."""
    env = os.environ
    out: dict[str, Any] = {}
    for name, attr in (
        ("DUALRES_KEY_PASSPHRASE_FILE", "key_passphrase_file"),
        ("DUALRES_PKCS11_PIN_FILE", "pkcs11_pin_file"),
        ("DUALRES_EVIDENCE_DIR", "evidence_dir"),
        ("DUALRES_JPKI_DIR", "jpki_dir"),
    ):
        if env.get(name):
            out[attr] = Path(env[name])
    for name, attr in (
        ("DUALRES_TRUST_ANCHOR_KEY", "trust_anchor_key"),
        ("DUALRES_ISSUING_CA_KEY", "issuing_ca_key"),
        ("DUALRES_PKCS11_MODULE", "pkcs11_module"),
        ("DUALRES_PKCS11_PIN", "pkcs11_pin"),
    ):
        if env.get(name):
            out[attr] = env[name]
    return out


def _identity_secret(data_dir: Path) -> bytes:
    """The HMAC key for identity hashes.

    Kept outside the database on purpose: a person key is an HMAC of a
    certificate serial (or of kana and birth date), small enough spaces that a
    hash without a secret key would be reversed by brute force.
    """
    env = os.environ.get("DUALRES_IDENTITY_SECRET")
    if env:
        return bytes.fromhex(env)
    return shared_secret_file(data_dir / "identity-secret.key")


def shared_secret_file(path: Path) -> bytes:
    """32 random bytes kept hex in a 0600 file, made on first use.

    Every worker of a deployment must read the same key, and gunicorn boots
    them together: the key is written whole under a private name and then
    linked into place, so a worker never reads a half-written or empty file
    and never fails because another one won the race.
    """
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another worker won; use its key
        finally:
            tmp.unlink()
    key = bytes.fromhex(path.read_text().strip())
    if len(key) < 32:
        raise ValueError(f"{path} must hold at least 32 random bytes in hex")
    return key

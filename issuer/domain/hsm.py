"""Signing keys that never leave a PKCS#11 token (an HSM; SoftHSM2 in tests).

A key is named by a ``pkcs11:`` URI, a subset of RFC 7512::

    pkcs11:token=dualres;object=lg-203211-2[;id=%01%02][?pin-source=file:/run/secrets/pin]

``token`` (the token label) and ``object`` (the key's CKA_LABEL) or ``id``
(CKA_ID, percent-encoded bytes) pick the key.  The module (shared library)
comes from ``DUALRES_PKCS11_MODULE`` only, and the PIN from ``pin-source``
(a ``file:`` path), ``DUALRES_PKCS11_PIN_FILE`` or ``DUALRES_PKCS11_PIN``:
key references are stored in the database, and a database row must neither
load a library into the issuer (``module-path``) nor hold a secret
(``pin-value``), so both are refused.

ES256 is CKM_ECDSA over a SHA-256 digest computed here (many tokens lack
CKM_ECDSA_SHA256); PKCS#11 returns ECDSA signatures as raw r||s, which is
JWS's encoding already.

``SignerKey`` wraps any signer as a ``cryptography`` private key object, so
code that signs with ``jws.sign`` (credentials, status lists, the trust list)
signs in the token without knowing it.
"""

from __future__ import annotations

import hashlib
import os
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from dualres.issuer.domain.errors import IssuerError
from dualres.verifier.wire import jws

if TYPE_CHECKING:
    from cryptography.hazmat.primitives import _serialization
    from cryptography.utils import Buffer


_PATH_ATTRS = frozenset({"token", "object", "id", "type"})
_QUERY_ATTRS = frozenset({"pin-source"})
_SECRET_OR_CODE = frozenset({"pin-value", "module-path", "module-name"})


class KeyUnavailable(IssuerError):
    """A private key cannot be used; ``error`` says why in one word for the log.

    Defined here rather than in keys.py, which imports this module."""

    status = 500


class Signer(Protocol):
    """What signs for an issuer: ES256 over ``data``, the signature as raw r||s."""

    def public_key(self) -> ec.EllipticCurvePublicKey: ...

    def sign(self, data: bytes) -> bytes: ...


def public_jwk(signer: Signer) -> dict[str, str]:
    return jws.public_jwk(signer.public_key())


class SignerKey(ec.EllipticCurvePrivateKey):
    """A signer in the shape of a ``cryptography`` P-256 private key: signing only."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not (
            isinstance(signature_algorithm, ec.ECDSA)
            and isinstance(signature_algorithm.algorithm, hashes.SHA256)
        ):
            raise TypeError("a token key signs ES256 (ECDSA with SHA-256) only")
        raw = self.signer.sign(bytes(data))
        r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        return encode_dss_signature(r, s)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.signer.public_key()

    @property
    def curve(self) -> ec.EllipticCurve:
        return ec.SECP256R1()

    @property
    def key_size(self) -> int:
        return 256

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise TypeError("a signing key does no key agreement")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        raise TypeError("the private key does not leave its token")

    def private_bytes(
        self,
        encoding: _serialization.Encoding,
        format: _serialization.PrivateFormat,
        encryption_algorithm: _serialization.KeySerializationEncryption,
    ) -> bytes:
        raise TypeError("the private key does not leave its token")

    def __copy__(self) -> SignerKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> SignerKey:
        return self


# --- the pkcs11: reference --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pkcs11Uri:
    token: str
    object: str | None = None
    id: bytes | None = None
    pin_source: str | None = None  # a file path

    def __str__(self) -> str:
        def enc(text: str, safe: str = "-._~") -> str:
            return urllib.parse.quote(text, safe=safe)

        parts = [f"token={enc(self.token)}"]
        if self.object is not None:
            parts.append(f"object={enc(self.object)}")
        if self.id is not None:
            parts.append("id=" + "".join(f"%{b:02x}" for b in self.id))
        query = f"?pin-source=file:{enc(self.pin_source, '-._~/')}" if self.pin_source else ""
        return "pkcs11:" + ";".join(parts) + query


def parse_uri(ref: str) -> Pkcs11Uri:
    """A ``pkcs11:`` key reference; KeyUnavailable ``bad_pkcs11_uri`` if it is not one we take."""

    def bad(why: str) -> KeyUnavailable:
        return KeyUnavailable("bad_pkcs11_uri", f"{why} in a pkcs11: key reference")

    if not ref.startswith("pkcs11:"):
        raise bad("no pkcs11: scheme")
    path, _, query = ref[len("pkcs11:") :].partition("?")
    attrs: dict[str, str] = {}
    for part, seps, allowed in ((path, ";", _PATH_ATTRS), (query, "&", _QUERY_ATTRS)):
        for item in filter(None, part.split(seps)):
            name, eq, value = item.partition("=")
            if name in _SECRET_OR_CODE:
                raise bad(f"{name} (set DUALRES_PKCS11_MODULE / the PIN outside the database)")
            if not eq or name not in allowed:
                raise bad(f"unsupported attribute {name!r}")
            if name in attrs:
                raise bad(f"{name} given twice")
            attrs[name] = value
    if "type" in attrs and attrs["type"] != "private":
        raise bad("type other than private")
    if not attrs.get("token"):
        raise bad("no token")
    if "object" not in attrs and "id" not in attrs:
        raise bad("neither object nor id")
    pin_source = None
    if "pin-source" in attrs:
        src = urllib.parse.unquote(attrs["pin-source"])
        if not src.startswith("file:") or len(src) == len("file:"):
            raise bad("pin-source other than a file: path")
        pin_source = src[len("file:") :]
    return Pkcs11Uri(
        token=urllib.parse.unquote(attrs["token"]),
        object=urllib.parse.unquote(attrs["object"]) if "object" in attrs else None,
        id=urllib.parse.unquote_to_bytes(attrs["id"]) if "id" in attrs else None,
        pin_source=pin_source,
    )


# --- the module ------------------------------------------------------------------------------

_lock = threading.Lock()
_loaded: dict[str, tuple[int, Any]] = {}  # module path -> (pid that initialised it, lib)


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise KeyUnavailable(
            "no_pkcs11", "python-pkcs11 is not installed (pip install 'dualres[hsm]')"
        ) from None
    return pkcs11


def library(module: str) -> Any:
    """The initialised PKCS#11 module, once per process.

    A forked child (a gunicorn worker of a preloading master) must initialise
    the module again: PKCS#11 sessions and locks do not survive fork().
    """
    pkcs11 = _pkcs11()
    with _lock:
        entry = _loaded.get(module)
        if entry is not None and entry[0] == os.getpid():
            return entry[1]
        if not Path(module).is_file():
            raise KeyUnavailable("no_pkcs11_module", f"PKCS#11 module {module} not found")
        try:
            lib = pkcs11.lib(module)
            if entry is not None:
                lib.reinitialize()
        except pkcs11.PKCS11Error as exc:
            raise KeyUnavailable("pkcs11_module", f"{module}: {type(exc).__name__}") from exc
        _loaded[module] = (os.getpid(), lib)
        return lib


def reinitialize(module: str) -> None:
    """Finalise and initialise the module again: after an HSM restart, or when
    ``SOFTHSM2_CONF`` has changed (tests).  Open signers reconnect on their next use."""
    lib = library(module)
    with _lock:
        lib.reinitialize()
        for (mod, _), tok in _tokens.items():
            if mod == module:
                tok.session = None


def read_pin(path: str | Path) -> str:
    try:
        # One line; the newline an editor or `echo` adds is not part of the PIN.
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise KeyUnavailable("no_pin", f"cannot read the PIN file {path}: {exc.strerror}") from exc


def _ec_point(der: bytes) -> ec.EllipticCurvePublicKey:
    # CKA_EC_POINT is a DER OCTET STRING around the X9.62 point; some tokens omit the wrapper.
    point = der[2:] if len(der) == 67 and der[:2] == b"\x04\x41" else der
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as exc:
        raise KeyUnavailable("not_p256", "the token key is not a P-256 key") from exc


class _Token:
    """The one logged-in session this process keeps per token.

    PKCS#11 login belongs to the application, not to a session: a second
    C_Login fails, and closing any logged-in session logs out all of them.
    So every key of a token signs through one session, which stays open for
    the life of the process, and operations on it are serialised (a session
    runs one operation at a time; the issuer's server is threaded).
    """

    def __init__(self, module: str, label: str) -> None:
        self.module = module
        self.label = label
        self.lock = threading.RLock()
        self.session: Any = None
        self.generation = 0  # a new number for every session opened
        self._pid = 0

    def open(self, pin: str) -> Any:
        """The session, opened and logged in if needed.  Call with ``lock`` held."""
        if self.session is not None and self._pid == os.getpid():
            return self.session
        pkcs11 = _pkcs11()
        lib = library(self.module)
        try:
            token = lib.get_token(token_label=self.label)
        except pkcs11.NoSuchToken:
            raise KeyUnavailable("no_token", f"no token labelled {self.label!r}") from None
        try:
            try:
                session = token.open(user_pin=pin, rw=True)
            except pkcs11.UserAlreadyLoggedIn:
                # Another session of this process logged in: this one shares that login.
                session = token.open(rw=True)
        except (pkcs11.PinIncorrect, pkcs11.PinLenRange, pkcs11.PinInvalid):
            raise KeyUnavailable("pin_incorrect", f"token {self.label!r}: wrong PIN") from None
        except pkcs11.PinLocked:
            raise KeyUnavailable("pin_locked", f"token {self.label!r}: PIN locked") from None
        except pkcs11.PKCS11Error as exc:
            raise KeyUnavailable(
                "pkcs11_session", f"token {self.label!r}: {type(exc).__name__}"
            ) from exc
        self.session, self._pid = session, os.getpid()
        self.generation += 1
        return session

    def lost(self, generation: int) -> None:
        """The session of ``generation`` failed: the next ``open`` makes a new one.

        Not closed: it is dead already, and closing a live one would log out
        every other key of the token.
        """
        if self.generation == generation:
            self.session = None


_tokens: dict[tuple[str, str], _Token] = {}


def token(module: str, label: str) -> _Token:
    with _lock:
        return _tokens.setdefault((module, label), _Token(module, label))


_LOST = (
    "SessionHandleInvalid",
    "SessionClosed",
    "DeviceRemoved",
    "TokenNotPresent",
    "UserNotLoggedIn",
    "ObjectHandleInvalid",
    "KeyHandleInvalid",
)


class Pkcs11Signer:
    """One private key in a token.

    A session that died (token restarted, module reinitialised) is replaced
    once per signature, and the key found again in the new one.
    """

    def __init__(self, uri: Pkcs11Uri, *, module: str, pin: str, require_sensitive: bool) -> None:
        self.uri = uri
        self._pin = pin
        self._require_sensitive = require_sensitive
        self._token = token(module, uri.token)
        self._key: Any = None
        self._generation = -1
        with self._token.lock:
            self._public = self._find()
        # A public object that belongs to another key would make every
        # credential unverifiable: prove the pair once.
        probe = b"dualres pkcs11 key check"
        try:
            SignerKey(self).public_key().verify(
                SignerKey(self).sign(probe, ec.ECDSA(hashes.SHA256())),
                probe,
                ec.ECDSA(hashes.SHA256()),
            )
        except InvalidSignature:
            raise KeyUnavailable(
                "key_mismatch", f"{uri}: the public key object does not match the private key"
            ) from None

    def _find(self) -> ec.EllipticCurvePublicKey:
        """Look the key pair up in the token's current session.  Call with the lock held."""
        pkcs11 = _pkcs11()
        from pkcs11 import Attribute, KeyType, ObjectClass

        session = self._token.open(self._pin)
        where = str(self.uri)
        attrs: dict[str, Any] = {"key_type": KeyType.EC}
        if self.uri.object is not None:
            attrs["label"] = self.uri.object
        if self.uri.id is not None:
            attrs["id"] = self.uri.id
        try:
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, **attrs)
            pub = session.get_key(object_class=ObjectClass.PUBLIC_KEY, **attrs)
        except pkcs11.NoSuchKey:
            raise KeyUnavailable(
                "no_key_object", f"{where}: no EC key pair with that label/id"
            ) from None
        except pkcs11.MultipleObjectsReturned:
            raise KeyUnavailable("ambiguous_key", f"{where}: several keys match; add id=") from None
        if self._require_sensitive and (not key[Attribute.SENSITIVE] or key[Attribute.EXTRACTABLE]):
            raise KeyUnavailable(
                "extractable_key",
                f"{where}: the private key can be exported from the token "
                "(needs CKA_SENSITIVE true, CKA_EXTRACTABLE false)",
            )
        public = _ec_point(bytes(pub[Attribute.EC_POINT]))
        self._key, self._generation = key, self._token.generation
        return public

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        pkcs11 = _pkcs11()
        lost = tuple(getattr(pkcs11, name) for name in _LOST)
        digest = hashlib.sha256(data).digest()
        tok = self._token
        with tok.lock:
            for attempt in (1, 2):
                try:
                    tok.open(self._pin)
                    if self._generation != tok.generation and self._find() != self._public:
                        raise KeyUnavailable("key_changed", f"{self.uri}: another key now")
                    raw = bytes(self._key.sign(digest, mechanism=pkcs11.Mechanism.ECDSA))
                    break
                except lost:
                    tok.lost(self._generation)
                    if attempt == 2:
                        raise KeyUnavailable(
                            "pkcs11_session", f"{self.uri}: lost the token"
                        ) from None
                except pkcs11.PKCS11Error as exc:
                    why = type(exc).__name__
                    raise KeyUnavailable("pkcs11_sign", f"{self.uri}: {why}") from exc
        if len(raw) != 64:
            raise KeyUnavailable("pkcs11_sign", f"{self.uri}: a {len(raw)}-byte ECDSA signature")
        return raw


def generate(uri: Pkcs11Uri, *, module: str, pin: str) -> ec.EllipticCurvePublicKey:
    """Make a P-256 key pair inside the token; the private half never leaves it.

    Refuses to make a second key under an existing label: two objects with one
    label would make the reference ambiguous.
    """
    pkcs11 = _pkcs11()
    from pkcs11 import Attribute, KeyType
    from pkcs11.util.ec import encode_named_curve_parameters

    if uri.object is None:
        raise KeyUnavailable("bad_pkcs11_uri", "a new key needs object= (its label)")
    tok = token(module, uri.token)
    with tok.lock:
        session = tok.open(pin)
        try:
            if list(session.get_objects({Attribute.LABEL: uri.object})):
                raise KeyUnavailable(
                    "key_exists", f"the token already holds an object {uri.object!r}"
                )
            params = session.create_domain_parameters(
                KeyType.EC,
                {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                local=True,
            )
            common = {
                Attribute.LABEL: uri.object,
                Attribute.ID: uri.id or os.urandom(8),
                Attribute.TOKEN: True,
            }
            pub, _ = params.generate_keypair(
                store=True,
                public_template={**common, Attribute.VERIFY: True},
                private_template={
                    **common,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                    Attribute.DERIVE: False,
                },
            )
            return _ec_point(bytes(pub[Attribute.EC_POINT]))
        except pkcs11.PKCS11Error as exc:
            tok.lost(tok.generation)
            raise KeyUnavailable("pkcs11_generate", f"{uri}: {type(exc).__name__}") from exc

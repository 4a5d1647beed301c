"""Presentations a wallet makes: the right disclosures, bound to the holder's key.

Counter mode (DESIGN §5): a QR is one-way, so the wallet signs a fresh
KB-JWT with its own random nonce and the fixed audience of the verifier
profile it presents to (counter or office), and shows a new code every ~30
seconds.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric import ec

from dualres.verifier.profiles import PROFILES
from dualres.verifier.wire import credential, jws, sdjwt, transport
from dualres.verifier.wire.b64 import b64e

# What each verifier profile asks to see, read from the profiles themselves so
# a wallet never discloses less than a counter requires; in the credential's
# group order, which is also the order the presentation carries them.
PROFILE_DISCLOSURES: dict[str, tuple[str, ...]] = {
    name: tuple(g for g in credential.DISCLOSABLE if g in p.required_disclosures)
    for name, p in PROFILES.items()
}
# The KB-JWT audience each profile checks (a profile's own, never a default:
# an office QR at a counter must fail on its audience).
PROFILE_AUDIENCES: dict[str, str] = {name: p.audience for name, p in PROFILES.items()}
NONCE_BYTES = 16

# Every DR1 text deflates with a new level-9 compressor: about 400 KB of zlib state,
# in blocks of 128 KB.  glibc hands out blocks that large as fresh mmap'd pages, so
# each QR text paid about 36 page faults (some 50 µs, 40 % of the whole) until a
# freed block of that size happened to raise glibc's mmap threshold.  One calloc'd
# megabyte, never touched and freed at once, raises it here: the compressor's state
# then comes from the heap, reused from one QR text to the next.  Elsewhere a no-op.
bytes(1 << 20)


def new_holder_key() -> ec.EllipticCurvePrivateKey:
    return jws.generate_key()


def new_nonce() -> str:
    return b64e(secrets.token_bytes(NONCE_BYTES))


def present(
    issued: str,
    holder_key: ec.EllipticCurvePrivateKey,
    *,
    now: int,
    profile: str = "counter",
    disclose: Iterable[str] | None = None,
    audience: str | None = None,
    nonce: str | None = None,
) -> str:
    """A compact SD-JWT+KB disclosing what ``profile`` (or ``disclose``) names,
    for ``profile``'s audience unless ``audience`` says otherwise."""
    names = PROFILE_DISCLOSURES[profile] if disclose is None else tuple(disclose)
    aud = PROFILE_AUDIENCES[profile] if audience is None else audience
    sd = sdjwt.select(issued, names)
    return sdjwt.present(sd, holder_key, aud=aud, nonce=nonce or new_nonce(), iat=now)


def present_qr_text(
    issued: str,
    holder_key: ec.EllipticCurvePrivateKey,
    *,
    now: int,
    profile: str = "counter",
    disclose: Iterable[str] | None = None,
) -> str:
    """The same presentation in the compact QR transport (``DR1:…``)."""
    return transport.encode(
        present(issued, holder_key, now=now, profile=profile, disclose=disclose)
    )

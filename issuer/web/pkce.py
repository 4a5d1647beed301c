"""PKCE S256 (RFC 7636) for both of this app's authorization servers: the OpenID4VCI
authorization code flow (authorize.py) and the demo's OpenID provider (idp.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Final

# RFC 7636 §4.1/§4.2's alphabet and lengths.  Checked where a challenge comes in, because
# the comparison at the token endpoint (hmac.compare_digest) raises on a non-ASCII string.
_VALUE: Final = re.compile(r"[A-Za-z0-9._~-]{43,128}")


def well_formed(value: str) -> bool:
    """A code_challenge or code_verifier of RFC 7636's form."""
    return _VALUE.fullmatch(value) is not None


def s256_ok(verifier: str, challenge: str) -> bool:
    if not well_formed(verifier):
        return False
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return hmac.compare_digest(expected, challenge)

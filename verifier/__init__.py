"""Offline verification of dual-residence (二地域居住) credentials.

    >>> bundle = Bundle.load("bundle.json")
    >>> result = verify(scanned_text, bundle, "counter", now=datetime.now(UTC))
    >>> result.ok, result.reason, result.issuer.name

``verify`` never raises on what a scanner reads; it returns a result with a
stable ``reason`` (see ``Reason``).  Call ``result.raise_for_reason()`` to get
an exception instead.
"""

from ._verify import Challenge, verify
from .bundle import Bundle, BundleError
from .profiles import PROFILES, Profile, get_profile
from .reasons import Reason
from .replay import MemoryReplayStore, ReplayStore, SqliteReplayStore
from .result import IssuerInfo, VerificationError, VerificationResult

__all__ = [
    "PROFILES",
    "Bundle",
    "BundleError",
    "Challenge",
    "IssuerInfo",
    "MemoryReplayStore",
    "Profile",
    "Reason",
    "ReplayStore",
    "SqliteReplayStore",
    "VerificationError",
    "VerificationResult",
    "get_profile",
    "verify",
]

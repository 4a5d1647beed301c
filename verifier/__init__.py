"""Offline verification of dual-residence (二地域居住) credentials.

    >>> bundle = Bundle.load("bundle.json")
    >>> result = verify(scanned_text, bundle, "counter", now=datetime.now(UTC))
    >>> result.ok, result.reason, result.issuer.name

``verify`` never raises on what a scanner reads; it returns a result with a
stable ``reason`` (see ``Reason``).  Call ``result.raise_for_reason()`` to get
an exception instead.
"""

from dualres.verifier._verify import Challenge, verify
from dualres.verifier.bundle import Bundle, BundleError
from dualres.verifier.profiles import PROFILES, Profile, get_profile
from dualres.verifier.reasons import Reason
from dualres.verifier.replay import MemoryReplayStore, ReplayStore, SqliteReplayStore
from dualres.verifier.result import IssuerInfo, VerificationError, VerificationResult

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

"""Errors raised inside the wire format.

Every failure has its own class and a stable ``code``; the verifier turns the
code into the ``reason`` of its result, so the codes are part of the public
interface (see ``verifier.reasons.Reason``)::

    WireError
    ├── MalformedError              code "malformed"
    │   └── InvalidDisclosureError  code "bad_disclosure"
    ├── TooLargeError               code "too_large"
    ├── UnsupportedVersionError     code "unsupported_version"
    ├── UnsupportedAlgorithmError   code "unsupported_alg"
    ├── WrongTypeError              code "bad_typ"
    ├── BadSignatureError           code "bad_signature"
    ├── UnknownKeyError             code "unknown_key"
    ├── ReservedClaimError          code "reserved_claim_disclosed"
    └── SdHashMismatchError         code "wrong_sd_hash"

The layer raises; the verifier above it catches and reports.  Callers who use
the wire format directly (the issuer, the wallet) get exceptions, which is
what they want when their own input is wrong.
"""

from __future__ import annotations


class WireError(ValueError):
    code = "malformed"

    def __init__(self, description: str = "") -> None:
        super().__init__(description or self.code)
        self.description = description or self.code


class MalformedError(WireError):
    code = "malformed"


class InvalidDisclosureError(MalformedError):
    code = "bad_disclosure"


class TooLargeError(WireError):
    code = "too_large"


class UnsupportedVersionError(WireError):
    code = "unsupported_version"


class UnsupportedAlgorithmError(WireError):
    code = "unsupported_alg"


class WrongTypeError(WireError):
    code = "bad_typ"


class BadSignatureError(WireError):
    code = "bad_signature"


class UnknownKeyError(WireError):
    code = "unknown_key"


class UnknownTypeError(WireError):
    """The credential's type (or the integrity of its type metadata) is not ours."""

    code = "wrong_vct"


class ReservedClaimError(WireError):
    code = "reserved_claim_disclosed"


class SdHashMismatchError(WireError):
    code = "wrong_sd_hash"


ALL_ERRORS: tuple[type[WireError], ...] = (
    WireError,
    MalformedError,
    InvalidDisclosureError,
    TooLargeError,
    UnsupportedVersionError,
    UnsupportedAlgorithmError,
    WrongTypeError,
    BadSignatureError,
    UnknownKeyError,
    ReservedClaimError,
    SdHashMismatchError,
)

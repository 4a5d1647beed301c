"""A strict DER reader for exactly one shape of certificate: the signing-key
leaf the issuer makes (issuer/domain/certs.py ``issue_leaf``), below the issuing
CA a trust list names once.

Why by hand: a nationwide trust list holds 3,482 such leaves, and reading each
one's extensions and validity through ``cryptography`` (Python objects for five
extensions, two datetimes) was about 35 ms of every full bundle load, as much as
all the rest of the list's parsing.

Why it is safe: this reader can only say "this is the profile, here are its
parts" or "not the profile" (``None``).  It never refuses anything: the caller
sends every certificate it does not recognise, and every one whose signature
does not verify, to the ``cryptography`` path, which decides and words the
error exactly as before.  What it recognises is a strict subset of what that
path accepts: definite minimal lengths, no trailing bytes, version 3, a positive
minimal serial, ecdsa-with-SHA256 (parameters absent) in both places, the issuer
and the SubjectPublicKeyInfo byte for byte the ones the caller expects, a
subject of single-valued RDNs with UTF8String or PrintableString values, and
exactly five extensions in the issuer's order with their exact encodings:
basicConstraints (critical, not a CA), keyUsage (critical, digitalSignature
only), subjectAltName (one URI), subjectKeyIdentifier and
authorityKeyIdentifier (a 20-byte key identifier each).  So a CA flag, another
key usage, an unknown (critical) extension or a repeated one is never read
here: the old path judges it (and refuses a critical one it does not process,
RFC 5280 §4.2: x509chain._CRITICAL_OK).  tests/test_der_leaf.py compares both paths on
thousands of mutated, re-signed certificates.
"""

from __future__ import annotations

import re

# AlgorithmIdentifier ecdsa-with-SHA256 (RFC 5758 §3.2: parameters absent).
_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
_VERSION_3 = bytes.fromhex("a003020102")
# Extension (critical) basicConstraints: SEQUENCE {} (cA FALSE, the DER default).
_BASIC_LEAF = bytes.fromhex("300c0603551d130101ff04023000")
# Extension (critical) keyUsage: BIT STRING digitalSignature (bit 0) alone.
_USAGE_SIGN = bytes.fromhex("300e0603551d0f0101ff040403020780")
_FIXED = _BASIC_LEAF + _USAGE_SIGN
_SAN_OID = bytes.fromhex("0603551d11")
# subjectKeyIdentifier and authorityKeyIdentifier (keyIdentifier only), not
# critical, 20 bytes each, and nothing after them.
_KEY_IDS = re.compile(
    re.escape(bytes.fromhex("301d0603551d0e04160414"))
    + b".{20}"
    + re.escape(bytes.fromhex("301f0603551d23041830168014"))
    + b".{20}",
    re.DOTALL,
)
# PrintableString's characters, and a URI's (printable ASCII, no space): deleted
# from a value by bytes.translate, which must leave nothing.
_PRINTABLE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?"
_URI = bytes(range(0x21, 0x7F))
# The attribute types a Name of the profile uses (2.5.4.x): C, ST, L, O, OU, CN,
# serialNumber.  Any other is the old path's to judge.
_ATTRIBUTES = frozenset(bytes.fromhex(f"060355040{t}") for t in "687ab35")


class _Outside(Exception):
    """The bytes are not the profile; the caller asks ``cryptography``."""


def _len(der: bytes, pos: int, end: int) -> tuple[int, int]:
    """The value's start and end of the element whose tag is at ``pos``.  Only the
    short form and one or two length bytes, each minimal: a certificate of this
    profile is far below 64 KB (x5c entries are capped at 4 KB)."""
    if pos + 2 > end:
        raise _Outside
    n = der[pos + 1]
    if n < 0x80:
        start = pos + 2
    elif n == 0x81:
        if pos + 3 > end:
            raise _Outside
        n = der[pos + 2]
        if n < 0x80:
            raise _Outside
        start = pos + 3
    elif n == 0x82:
        if pos + 4 > end:
            raise _Outside
        n = der[pos + 2] << 8 | der[pos + 3]
        if n < 0x100:
            raise _Outside
        start = pos + 4
    else:
        raise _Outside
    if start + n > end:
        raise _Outside
    return start, start + n


def _tlv(der: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    if pos >= end or der[pos] != tag:
        raise _Outside
    return _len(der, pos, end)


def _time(der: bytes, pos: int) -> int:
    """The validity time at ``pos`` as epoch seconds.  UTCTime (years 1950-2049,
    RFC 5280 4.1.2.5.1) or, from 2050 on only, GeneralizedTime; both in whole
    seconds with ``Z``."""
    tag = der[pos]
    if tag == 0x17 and der[pos + 1] == 13:
        text = der[pos + 2 : pos + 15]
        year = int(text[:2]) if text[:12].isdigit() else -1
        if year < 0:
            raise _Outside
        year += 2000 if year < 50 else 1900
        rest = text[2:]
    elif tag == 0x18 and der[pos + 1] == 15:
        text = der[pos + 2 : pos + 17]
        year = int(text[:4]) if text[:14].isdigit() else -1
        if year < 2050:
            raise _Outside
        rest = text[4:]
    else:
        raise _Outside
    if rest[10:] != b"Z":
        raise _Outside
    # One int() and arithmetic: a third of the cost of six int() and timegm.
    v = int(rest[:10])  # MMDDhhmmss
    month, day, hour = v // 100_000_000, v // 1_000_000 % 100, v // 10_000 % 100
    minute, second = v // 100 % 100, v % 100
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= month <= 12 or not 1 <= day <= _MONTH_DAYS[month] + (month == 2 and leap):
        raise _Outside
    if hour > 23 or minute > 59 or second > 59:
        raise _Outside
    y = year - 1
    days = 365 * (year - 1970) + y // 4 - y // 100 + y // 400 - _LEAP_DAYS_1970
    days += _DAYS_BEFORE[month] + (month > 2 and leap) + day - 1
    return ((days * 24 + hour) * 60 + minute) * 60 + second


_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DAYS_BEFORE = (0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)
_LEAP_DAYS_1970 = 1969 // 4 - 1969 // 100 + 1969 // 400


def leaf(der: bytes, issuer: bytes, spki: bytes) -> tuple[bytes, bytes, int, int] | None:
    """The TBS, the signature value, notBefore and notAfter (epoch seconds) of a
    certificate of the leaf profile issued by ``issuer`` (a Name's DER) for the key
    ``spki`` (a SubjectPublicKeyInfo's DER); ``None`` for any other bytes.

    One function, not one per element: a nationwide list reads 3,482 of these,
    and a call per element was half of the time.  Elements the profile keeps
    small (the serial, each RDN, subjectAltName, the signature) must use the
    short length form; the others go through ``_tlv``."""
    try:
        end = len(der)
        body, outer_end = _tlv(der, 0, end, 0x30)
        pos, tbs_end = _tlv(der, body, end, 0x30)
        if outer_end != end or not der.startswith(_VERSION_3, pos, tbs_end):
            raise _Outside
        # serialNumber: positive, minimal, 1 to 20 bytes.
        pos += len(_VERSION_3)
        n = der[pos + 1]
        first = der[pos + 2]
        if der[pos] != 0x02 or not 1 <= n <= 20 or first & 0x80:
            raise _Outside
        if first == 0 and (n == 1 or not der[pos + 3] & 0x80):
            raise _Outside
        pos += 2 + n
        if not der.startswith(_ECDSA_SHA256, pos, tbs_end):
            raise _Outside
        pos += len(_ECDSA_SHA256)
        if not der.startswith(issuer, pos, tbs_end):
            raise _Outside
        # validity: SEQUENCE { notBefore, notAfter }, nothing else.
        validity, validity_end = _tlv(der, pos + len(issuer), tbs_end, 0x30)
        not_before = _time(der, validity)
        after = validity + 2 + der[validity + 1]
        not_after = _time(der, after)
        if after + 2 + der[after + 1] != validity_end:
            raise _Outside
        # subject: single-valued RDNs, SET { SEQUENCE { type, value } }, each
        # exactly full, a known attribute type, a UTF8String or PrintableString.
        start, stop = _tlv(der, validity_end, tbs_end, 0x30)
        while start < stop:
            n = der[start + 1]
            set_end = start + 2 + n
            if der[start] != 0x31 or n >= 0x80 or set_end > stop:
                raise _Outside
            if der[start + 2] != 0x30 or der[start + 3] != n - 2:
                raise _Outside
            if der[start + 4 : start + 9] not in _ATTRIBUTES:
                raise _Outside
            tag, size = der[start + 9], der[start + 10]
            if size == 0 or start + 11 + size != set_end:
                raise _Outside  # a long-form length overruns set_end too
            text = der[start + 11 : set_end]
            if tag == 0x0C:
                text.decode("utf-8")  # UnicodeDecodeError is a ValueError
            elif tag != 0x13 or text.translate(None, _PRINTABLE):
                raise _Outside
            start = set_end
        if start != stop or not der.startswith(spki, stop, tbs_end):
            raise _Outside
        # extensions: [3] { SEQUENCE { the five, in the issuer's order } }.
        outer, outer_stop = _tlv(der, stop + len(spki), tbs_end, 0xA3)
        pos, stop = _tlv(der, outer, outer_stop, 0x30)
        if outer_stop != tbs_end or stop != tbs_end or not der.startswith(_FIXED, pos, stop):
            raise _Outside
        # subjectAltName, not critical: SEQUENCE { OID, OCTET STRING { SEQUENCE {
        # [6] URI } } }, each exactly full, the URI printable ASCII.
        pos += len(_FIXED)
        n = der[pos + 1]
        ext_end = pos + 2 + n
        if der[pos] != 0x30 or not 12 <= n < 0x80 or ext_end > stop:
            raise _Outside
        if der[pos + 2 : pos + 7] != _SAN_OID or der[pos + 7] != 0x04 or der[pos + 8] != n - 7:
            raise _Outside
        if der[pos + 9] != 0x30 or der[pos + 10] != n - 9 or der[pos + 11] != 0x86:
            raise _Outside
        if der[pos + 12] != n - 11 or der[pos + 13 : ext_end].translate(None, _URI):
            raise _Outside
        if _KEY_IDS.fullmatch(der, ext_end, stop) is None:
            raise _Outside
        # signatureAlgorithm, then BIT STRING { 0 unused bits, the signature }.
        pos = tbs_end + len(_ECDSA_SHA256)
        if not der.startswith(_ECDSA_SHA256, tbs_end, end) or der[pos] != 0x03:
            raise _Outside
        if not 2 <= der[pos + 1] < 0x80 or pos + 2 + der[pos + 1] != end or der[pos + 2]:
            raise _Outside
        return der[body:tbs_end], der[pos + 3 : end], not_before, not_after
    except (_Outside, IndexError, ValueError):
        return None

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
here: the old path judges it.  tests/test_der_leaf.py compares both paths on
thousands of mutated, re-signed certificates.
"""

from __future__ import annotations

from calendar import timegm

# AlgorithmIdentifier ecdsa-with-SHA256 (RFC 5758 §3.2: parameters absent).
_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
_VERSION_3 = bytes.fromhex("a003020102")
# Extension (critical) basicConstraints: SEQUENCE {} (cA FALSE, the DER default).
_BASIC_LEAF = bytes.fromhex("300c0603551d130101ff04023000")
# Extension (critical) keyUsage: BIT STRING digitalSignature (bit 0) alone.
_USAGE_SIGN = bytes.fromhex("300e0603551d0f0101ff040403020780")
_SAN_OID = bytes.fromhex("0603551d11")
_SKI_HEAD = bytes.fromhex("301d0603551d0e04160414")  # then 20 bytes
_AKI_HEAD = bytes.fromhex("301f0603551d23041830168014")  # then 20 bytes
_PRINTABLE = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?"
)


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


def _exact(der: bytes, pos: int, end: int, want: bytes) -> int:
    stop = pos + len(want)
    if stop > end or der[pos:stop] != want:
        raise _Outside
    return stop


def _time(der: bytes, pos: int, end: int) -> tuple[int, int]:
    """A validity time as epoch seconds, and where it ends.  UTCTime (years
    1950-2049, RFC 5280 4.1.2.5.1) or, from 2050 on only, GeneralizedTime; both in
    seconds with ``Z`` and nothing else."""
    tag = der[pos] if pos < end else 0
    if tag == 0x17:
        start, stop = _tlv(der, pos, end, 0x17)
        text = der[start:stop]
        if len(text) != 13 or not text[:12].isdigit():
            raise _Outside
        year = int(text[:2])
        year += 2000 if year < 50 else 1900
        rest = text[2:12]
    elif tag == 0x18:
        start, stop = _tlv(der, pos, end, 0x18)
        text = der[start:stop]
        if len(text) != 15 or not text[:14].isdigit():
            raise _Outside
        year = int(text[:4])
        if year < 2050:
            raise _Outside
        rest = text[4:14]
    else:
        raise _Outside
    if text[-1:] != b"Z":
        raise _Outside
    month, day, hour, minute, second = (int(rest[i : i + 2]) for i in range(0, 10, 2))
    if not (1 <= month <= 12 and 1 <= day <= _days(year, month)):
        raise _Outside
    if hour > 23 or minute > 59 or second > 59:
        raise _Outside
    return timegm((year, month, day, hour, minute, second)), stop


def _days(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _oid(der: bytes, pos: int, end: int) -> int:
    start, stop = _tlv(der, pos, end, 0x06)
    if start == stop or der[stop - 1] & 0x80:
        raise _Outside
    # Each subidentifier minimal: none starts with 0x80.
    prev_ended = True
    for b in der[start:stop]:
        if prev_ended and b == 0x80:
            raise _Outside
        prev_ended = not b & 0x80
    return stop


def _name(der: bytes, pos: int, end: int) -> int:
    """A Name of single-valued RDNs, each an OID and a UTF8String or PrintableString."""
    start, stop = _tlv(der, pos, end, 0x30)
    while start < stop:
        set_start, set_end = _tlv(der, start, stop, 0x31)
        atv_start, atv_end = _tlv(der, set_start, set_end, 0x30)
        if atv_end != set_end:
            raise _Outside
        value = _oid(der, atv_start, atv_end)
        tag = der[value] if value < atv_end else 0
        v_start, v_end = _tlv(der, value, atv_end, tag)
        if v_end != atv_end or v_start == v_end:
            raise _Outside
        text = der[v_start:v_end]
        if tag == 0x0C:
            try:
                text.decode("utf-8")
            except UnicodeDecodeError:
                raise _Outside from None
        elif tag != 0x13 or not _PRINTABLE.issuperset(text):
            raise _Outside
        start = set_end
    return stop


def _extensions(der: bytes, pos: int, end: int) -> int:
    outer, outer_end = _tlv(der, pos, end, 0xA3)
    pos, stop = _tlv(der, outer, outer_end, 0x30)
    if stop != outer_end:
        raise _Outside
    pos = _exact(der, pos, stop, _BASIC_LEAF)
    pos = _exact(der, pos, stop, _USAGE_SIGN)
    # subjectAltName, not critical: SEQUENCE { [6] URI } of printable ASCII.
    ext, ext_end = _tlv(der, pos, stop, 0x30)
    value = _exact(der, ext, ext_end, _SAN_OID)
    octets, octets_end = _tlv(der, value, ext_end, 0x04)
    names, names_end = _tlv(der, octets, octets_end, 0x30)
    uri, uri_end = _tlv(der, names, names_end, 0x86)
    if not (uri < uri_end == names_end == octets_end == ext_end):
        raise _Outside
    if not all(0x21 <= b <= 0x7E for b in der[uri:uri_end]):
        raise _Outside
    pos = _exact(der, ext_end, stop, _SKI_HEAD) + 20
    pos = _exact(der, pos, stop, _AKI_HEAD) + 20
    if pos != stop:
        raise _Outside
    return stop


def _serial(der: bytes, pos: int, end: int) -> int:
    start, stop = _tlv(der, pos, end, 0x02)
    n = stop - start
    if not 1 <= n <= 20 or der[start] & 0x80:
        raise _Outside  # empty, too long or negative
    if der[start] == 0 and (n == 1 or not der[start + 1] & 0x80):
        raise _Outside  # zero, or not minimal
    return stop


def leaf(der: bytes, issuer: bytes, spki: bytes) -> tuple[bytes, bytes, int, int] | None:
    """The TBS, the signature value, notBefore and notAfter (epoch seconds) of a
    certificate of the leaf profile issued by ``issuer`` (a Name's DER) for the key
    ``spki`` (a SubjectPublicKeyInfo's DER); ``None`` for any other bytes."""
    try:
        end = len(der)
        body, outer_end = _tlv(der, 0, end, 0x30)
        if outer_end != end:
            raise _Outside
        pos, tbs_end = _tlv(der, body, end, 0x30)
        pos = _exact(der, pos, tbs_end, _VERSION_3)
        pos = _serial(der, pos, tbs_end)
        pos = _exact(der, pos, tbs_end, _ECDSA_SHA256)
        pos = _exact(der, pos, tbs_end, issuer)
        validity, validity_end = _tlv(der, pos, tbs_end, 0x30)
        not_before, pos = _time(der, validity, validity_end)
        not_after, pos = _time(der, pos, validity_end)
        if pos != validity_end:
            raise _Outside
        pos = _name(der, pos, tbs_end)
        pos = _exact(der, pos, tbs_end, spki)
        if _extensions(der, pos, tbs_end) != tbs_end:
            raise _Outside
        pos = _exact(der, tbs_end, end, _ECDSA_SHA256)
        bits, bits_end = _tlv(der, pos, end, 0x03)
        if bits_end != end or bits_end - bits < 2 or der[bits] != 0:
            raise _Outside
        return der[body:tbs_end], der[bits + 1 : bits_end], not_before, not_after
    except (_Outside, IndexError, ValueError):
        return None

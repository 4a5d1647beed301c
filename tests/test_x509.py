"""X.509 for issuer keys (HAIP 1.0): each municipal key certified by the trust
anchor, x5c in credentials, status list tokens and the trust list, and the
verifier checking the chain against the pinned anchor (issue 15)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dualres.issuer.config import Settings
from dualres.issuer.domain.certs import (
    anchor_certificate,
    anchor_name,
    issue_ca,
    issue_leaf,
    issuing_ca_name,
)
from dualres.issuer.domain.models import Municipality as MunicipalityRow
from dualres.issuer.domain.models import SigningKey
from dualres.verifier import Bundle, BundleError, MemoryReplayStore, Reason, verify
from dualres.verifier.wire import jws, statuslist, trustlist, x509chain
from dualres.verifier.wire.errors import BadSignatureError, MalformedError, UnknownKeyError
from dualres.wallet import holder
from dualres.wallet.qr import qr_version
from tests.support import NOW, World, resigned
from tests.test_oid4vci import (
    ANCHOR_PUB,
    BASE,
    CONFIG,
    ISS,
    credential_req,
    nonce,
    now_s,
    proof,
    redeem,
    reg_id,  # noqa: F401  (fixture)
    staff,  # noqa: F401  (fixture)
)

SETTINGS = Settings(data_dir=__import__("pathlib").Path("."), database_url="sqlite://")
SETTINGS_ISSUER = Settings(
    data_dir=__import__("pathlib").Path("."), database_url="sqlite://", base_url=BASE
)


def leaf_for(world: World, code: str = "203211", **over: Any) -> str:
    """A certificate for a test municipality's key, made by the issuer's own code."""
    m = world.lgs[code]
    row = MunicipalityRow(lg_code=code, name=m.name, prefecture=m.prefecture)
    start = datetime.fromtimestamp(NOW, UTC) - timedelta(days=30)
    key = SigningKey(
        kid=m.kid,
        public_jwk=jws.public_jwk(over.get("key", m.key)),
        not_before=over.get("not_before", start),
        created_at=over.get("not_before", start),
    )
    return issue_leaf(SETTINGS, row, key, over.get("anchor", world.anchor), m.iss)


def ca_chain(world: World, code: str = "203211", **over: Any) -> list[str]:
    """Leaf + issuing CA under the world's anchor, made by the issuer's own code."""
    ca = over.get("ca", jws.generate_key())
    start = datetime.fromtimestamp(NOW, UTC) - timedelta(days=30)
    ca_cert = issue_ca(SETTINGS, over.get("anchor", world.anchor), ca.public_key(), start)
    leaf = leaf_for(world, code, anchor=over.get("signer", ca))
    if "ca_name" not in over:
        m = world.lgs[code]
        row = MunicipalityRow(lg_code=code, name=m.name, prefecture=m.prefecture)
        key = SigningKey(
            kid=m.kid, public_jwk=jws.public_jwk(m.key), not_before=start, created_at=start
        )
        leaf = issue_leaf(
            SETTINGS, row, key, over.get("signer", ca), m.iss, issuing_ca_name(SETTINGS)
        )
    return [leaf, ca_cert]


def bundle_with(world: World, chain: list[str]) -> Bundle:
    entries = []
    for m in world.lgs.values():
        e = m.entry()
        if m is world.karuizawa:
            e["keys"][0]["x5c"] = chain
        entries.append(e)
    return world.bundle(trust_list=world.trust_list(entries=entries))


# --- through the issuer ---------------------------------------------------------------------


def test_issuer_certifies_keys_and_sends_x5c(client, clock, staff, reg_id) -> None:  # noqa: F811
    anchor = jws.load_public_pem(ANCHOR_PUB.read_bytes())
    tok = redeem(client, staff, reg_id)
    hk = jws.generate_key()
    body = {
        "credential_configuration_id": CONFIG,
        "proofs": {"jwt": [proof(hk, clock, nonce(client))]},
    }
    compact = credential_req(client, tok, body).json["credentials"][0]["credential"]
    tl_text = client.get("/trust-list").text
    tl = trustlist.parse(tl_text, [anchor])  # every chain checked against the anchor
    key = tl.issuers[ISS].keys["203211-1"]
    assert len(key.x5c) == 2  # the leaf and the issuing CA; the anchor is left out
    cert, ca = (x509.load_der_x509_certificate(base64.b64decode(c)) for c in key.x5c)
    assert cert.issuer == ca.subject and ca.issuer == anchor_name(SETTINGS_ISSUER)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    # One issuing CA for the deployment: every municipality's chain ends with it.
    assert {tuple(k.x5c)[1] for i in tl.issuers.values() for k in i.keys.values()} == {key.x5c[1]}
    # ... and the list names it once, at the top, not under each of its keys
    # (3,482 keys nationwide would repeat ~600 bytes each).
    raw = jws.parse(tl_text).payload
    assert raw["issuing_cas"] == [key.x5c[1]]
    for entry in raw["issuers"]:
        for k in entry["keys"]:
            assert len(k["x5c"]) == 1 and k["x5c_ca"] == 0
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [ISS]
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == "203211"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "軽井沢町"
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # The credential and the status list token carry the same chain.
    assert jws.parse(compact.split("~")[0]).header["x5c"] == list(key.x5c)
    status_text = client.get("/lg/203211/status/1").text
    token, _ = statuslist.parse_token(status_text)
    assert token.header["x5c"] == list(key.x5c)
    bundle = Bundle.from_tokens(
        trust_list=tl_text,
        status_lists={f"{ISS}/status/1": status_text},
        anchors=[anchor],
        created_at=0,
    )
    # The counter QR refers to the chain instead of carrying it: still version 18 or lower.
    qr = holder.present_qr_text(compact, hk, now=now_s(clock))
    assert qr_version(qr, "M") <= 18, (len(qr), qr_version(qr, "M"))
    print(f"counter QR from the issuer: {len(qr)} characters, version {qr_version(qr, 'M')} at M")
    result = verify(qr, bundle, "counter", now=clock(), replay=MemoryReplayStore())
    assert result.ok, result


# --- the verifier's chain check ----------------------------------------------------------------


def test_a_good_chain_gives_its_validity_window(world: World) -> None:
    leaf = leaf_for(world)
    start, end = x509chain.check_chain(
        [leaf], world.karuizawa.key.public_key(), world.anchor.public_key()
    )
    assert start < NOW < end
    bundle = bundle_with(world, [leaf])
    text = world.present(world.issue())
    assert verify(text, bundle, "counter", now=NOW, replay=MemoryReplayStore()).ok


def test_a_chain_through_the_issuing_ca(world: World) -> None:
    chain = ca_chain(world)
    start, end = x509chain.check_chain(
        chain, world.karuizawa.key.public_key(), world.anchor.public_key()
    )
    assert start < NOW < end
    bundle = bundle_with(world, chain)
    key = bundle.trust_list.issuers[world.karuizawa.iss].keys[world.karuizawa.kid]
    assert key.x5c == tuple(chain)
    issued = world.present(world.issue())
    assert verify(issued, bundle, "counter", now=NOW, replay=MemoryReplayStore()).ok


@pytest.mark.parametrize(
    ("make", "error"),
    [
        # The issuing CA under another anchor; the leaf under another CA than the one sent.
        (lambda w: ca_chain(w, anchor=jws.generate_key()), BadSignatureError),
        (lambda w: ca_chain(w, signer=jws.generate_key()), BadSignatureError),
        # The leaf named as issued by the anchor, not by the CA that follows it.
        (lambda w: ca_chain(w, ca_name=False), MalformedError),
        (lambda w: [leaf_for(w, key=jws.generate_key())], UnknownKeyError),  # certifies another key
        (lambda w: [leaf_for(w, anchor=jws.generate_key())], BadSignatureError),  # another CA
        (lambda w: ["not base64!"], MalformedError),
        (lambda w: [base64.b64encode(b"\x30\x03\x02\x01\x00").decode()], MalformedError),
        (lambda w: [leaf_for(w)] * 5, MalformedError),  # too long
        (lambda w: [leaf_for(w), leaf_for(w)], MalformedError),  # a leaf is no CA
        (
            lambda w: [
                base64.b64encode(anchor_certificate(SETTINGS, w.anchor, datetime.now(UTC))).decode()
            ],
            UnknownKeyError,  # the anchor's own certificate as a leaf
        ),
    ],
)
def test_bad_chains_refuse_the_trust_list(world: World, make: Any, error: type) -> None:
    chain = make(world)
    with pytest.raises(error):
        x509chain.check_chain(chain, world.karuizawa.key.public_key(), world.anchor.public_key())
    with pytest.raises(BundleError):
        bundle_with(world, chain)


def test_an_expired_certificate_is_refused_at_the_scan(world: World) -> None:
    old = datetime.fromtimestamp(NOW, UTC) - timedelta(days=6 * 366)
    bundle = bundle_with(world, [leaf_for(world, not_before=old)])
    text = world.present(world.issue())
    r = verify(text, bundle, "counter", now=NOW, replay=MemoryReplayStore())
    assert r.reason is Reason.KEY_NOT_VALID


def test_a_status_list_with_another_chain_is_refused(world: World) -> None:
    leaf = leaf_for(world)
    tl = world.trust_list(
        entries=[
            {**m.entry(), "keys": [{**m.entry()["keys"][0], "x5c": [leaf]}]}
            if m is world.karuizawa
            else m.entry()
            for m in world.lgs.values()
        ]
    )
    lg = world.karuizawa

    def load_with(x5c: list[str]) -> Bundle:
        token = statuslist.sign_token(
            statuslist.StatusList.new(131_072, 2),
            uri=lg.status_uri,
            iat=NOW - 60,
            exp=NOW + 3600,
            ttl=300,
            key=lg.key,
            kid=lg.kid,
            x5c=x5c,
        )
        return Bundle.from_tokens(
            trust_list=tl,
            status_lists={lg.status_uri: token},
            anchors=[world.anchor.public_key()],
            created_at=NOW,
        )

    other = leaf_for(world)  # same key, another certificate: not the listed chain
    with pytest.raises(BundleError) as exc:
        load_with([other])
    assert exc.value.code == "unknown_key"
    load_with([leaf])


# --- critical extensions (RFC 5280 §4.2) ----------------------------------------------------

# IANA's example enterprise number (RFC 5612): an extension no verifier knows.
UNKNOWN = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.32473.1"), b"\x05\x00")


def plus(cert: str, signer: Any, value: Any, critical: bool) -> str:
    """``cert`` with ``value`` (in place of its own of that type), re-signed by ``signer``."""
    return resigned(cert, signer, (value, critical))


def _key_ids(cert: str) -> tuple[x509.SubjectKeyIdentifier, x509.AuthorityKeyIdentifier]:
    c = x509.load_der_x509_certificate(base64.b64decode(cert))
    return (
        c.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value,
        c.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value,
    )


# (extension, critical, on the leaf or the issuing CA, accepted?).  Accepted
# critical: what the verifier processes (basicConstraints, keyUsage: the issuer's
# own, checked by every other test here) or restricts nothing we accept (SKI,
# AKI, SAN: x509chain._CRITICAL_OK says why).  Refused: everything else.
CRITICAL_CASES = [
    pytest.param(lambda c: UNKNOWN, True, "leaf", False, id="unknown-critical-leaf"),
    pytest.param(lambda c: UNKNOWN, False, "leaf", True, id="unknown-non-critical-leaf"),
    pytest.param(lambda c: UNKNOWN, True, "ca", False, id="unknown-critical-ca"),
    pytest.param(lambda c: UNKNOWN, False, "ca", True, id="unknown-non-critical-ca"),
    pytest.param(
        lambda c: x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]),
        True,
        "leaf",
        False,
        id="eku-critical-leaf",
    ),
    pytest.param(
        lambda c: x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]),
        False,
        "leaf",
        True,
        id="eku-non-critical-leaf",
    ),
    pytest.param(
        lambda c: x509.NameConstraints([x509.UniformResourceIdentifier(".example.jp")], None),
        True,
        "ca",
        False,
        id="name-constraints-critical-ca",
    ),
    pytest.param(
        lambda c: x509.PolicyConstraints(require_explicit_policy=0, inhibit_policy_mapping=None),
        True,
        "ca",
        False,
        id="policy-constraints-critical-ca",
    ),
    pytest.param(
        lambda c: x509.CertificatePolicies(
            [x509.PolicyInformation(x509.ObjectIdentifier("2.5.29.32.0"), None)]
        ),
        True,
        "leaf",
        False,
        id="certificate-policies-critical-leaf",
    ),
    pytest.param(
        lambda c: x509.SubjectAlternativeName([x509.UniformResourceIdentifier(ISS)]),
        True,
        "leaf",
        True,
        id="san-critical-leaf",
    ),
    pytest.param(lambda c: _key_ids(c)[0], True, "leaf", True, id="ski-critical-leaf"),
    pytest.param(lambda c: _key_ids(c)[1], True, "ca", True, id="aki-critical-ca"),
]


@pytest.mark.parametrize(("make", "critical", "where", "accepted"), CRITICAL_CASES)
def test_a_critical_extension_the_verifier_does_not_process_is_refused(
    world: World, make: Any, critical: bool, where: str, accepted: bool
) -> None:
    ca = jws.generate_key()
    leaf, ca_cert = ca_chain(world, ca=ca)
    if where == "leaf":
        leaf = plus(leaf, ca, make(leaf), critical)
    else:
        ca_cert = plus(ca_cert, world.anchor, make(ca_cert), critical)
    kz = world.karuizawa
    key, anchor = kz.key.public_key(), world.anchor.public_key()
    point = jws.jwk_point(jws.public_jwk(kz.key))
    if accepted:
        x509chain.check_chain([leaf, ca_cert], key, anchor)
        listed = x509chain.check_ca(ca_cert, anchor)
        x509chain.check_chain([leaf], key, anchor, listed, point)
        return
    # The whole chain; the leaf below a listed CA (the hand-read profile first,
    # which must leave the leaf to the full check); the listed CA itself.
    with pytest.raises(MalformedError, match="critical extension"):
        x509chain.check_chain([leaf, ca_cert], key, anchor)
    if where == "leaf":
        assert x509chain._profile_leaf(leaf, x509chain.check_ca(ca_cert, anchor), point) is None
        with pytest.raises(MalformedError, match="critical extension"):
            x509chain.check_chain([leaf], key, anchor, x509chain.check_ca(ca_cert, anchor), point)
    else:
        with pytest.raises(MalformedError, match="critical extension"):
            x509chain.check_ca(ca_cert, anchor)
    with pytest.raises(BundleError):
        bundle_with(world, [leaf, ca_cert])


def test_the_issuers_own_certificates_mark_only_processed_extensions_critical(
    world: World,
) -> None:
    for cert in ca_chain(world):
        c = x509.load_der_x509_certificate(base64.b64decode(cert))
        critical = {e.oid.dotted_string for e in c.extensions if e.critical}
        assert critical == {"2.5.29.19", "2.5.29.15"}  # basicConstraints, keyUsage
        assert critical <= x509chain._CRITICAL_OK

"""The one verification call.  Every rule lives here, in the order a counter needs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dualres.verifier.bundle import Bundle
from dualres.verifier.profiles import Profile, get_profile
from dualres.verifier.reasons import Reason
from dualres.verifier.replay import ReplayStore
from dualres.verifier.result import IssuerInfo, VerificationResult
from dualres.verifier.wire import credential, jws, sdjwt, statuslist, transport
from dualres.verifier.wire._record import record
from dualres.verifier.wire.errors import (
    BadSignatureError,
    MalformedError,
    SdHashMismatchError,
    WireError,
    WrongTypeError,
)

MAX_PAYLOAD = 8192  # characters; a version-40 QR holds at most 4,296 alphanumerics
MIN_NONCE, MAX_NONCE = 16, 128
# ASCII whitespace only (what bytes.strip() removes): str.strip() would also take
# U+0085, U+00A0, U+3000 and more, a set no other language spells the same way.
PAYLOAD_WHITESPACE = " \t\n\v\f\r"


@record
class Challenge:
    """Challenge mode: the verifier showed its own audience and nonce first."""

    audience: str
    nonce: str


class _Reject(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        self.reason = reason
        self.detail = detail


def _epoch(now: datetime | int | float) -> int:
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise TypeError("now must be timezone-aware")
        return math.floor(now.timestamp())
    if isinstance(now, bool) or not isinstance(now, int | float):
        raise TypeError("now must be a datetime or epoch seconds")
    return math.floor(now)


def _int(payload: Mapping[str, Any], name: str, *, required: bool = True) -> int | None:
    v = payload.get(name)
    if v is None and not required:
        return None
    if type(v) is not int:
        raise _Reject(Reason.INVALID_CLAIMS, f"{name} must be an integer")
    return v


def verify(
    payload: str | bytes,
    bundle: Bundle,
    profile: Profile | str,
    *,
    now: datetime | int | float,
    replay: ReplayStore | None = None,
    challenge: Challenge | None = None,
) -> VerificationResult:
    """Verify a scanned presentation offline and say why it is accepted or not.

    ``payload`` is what the scanner read: the compact QR transport (``DR1:…``)
    or a plain compact SD-JWT.  Hostile input never raises; it gives a result
    whose ``reason`` is one of ``Reason``.  Wrong argument types do raise.
    ``replay`` defaults to one in-process memory shared by every bundle (so a
    re-sync does not forget what was seen); it is lost when the process ends, so
    pass a ``SqliteReplayStore`` to survive restarts.
    """
    if not isinstance(payload, str | bytes):
        raise TypeError("payload must be str or bytes")
    if not isinstance(bundle, Bundle):
        raise TypeError("bundle must be a verifier.Bundle")
    prof = get_profile(profile)
    t = _epoch(now)
    ctx = _Context(prof, t)
    try:
        return ctx.run(payload, bundle, replay if replay is not None else bundle.replay, challenge)
    except _Reject as r:
        return ctx.result(r.reason, r.detail)
    except WireError as e:
        return ctx.result(Reason(e.code), e.description)
    except Exception as e:  # a scanner must get an answer, never a traceback
        return ctx.result(Reason.MALFORMED, f"unexpected {type(e).__name__}")


class _Context:
    """Collects what is known so far, so a rejection still says what it saw."""

    __slots__ = (
        "holder_bound",
        "issuer",
        "now",
        "profile",
        "status_age",
        "tier",
        "trust_list_age",
        "valid_from",
        "valid_until",
        "warnings",
    )

    def __init__(self, profile: Profile, now: int) -> None:
        self.profile = profile
        self.now = now
        self.issuer: IssuerInfo | None = None
        self.tier: str | None = None
        self.valid_from: int | None = None
        self.valid_until: int | None = None
        self.holder_bound = False
        self.trust_list_age: int | None = None
        self.status_age: int | None = None
        self.warnings: list[str] = []

    def result(
        self, reason: Reason, detail: str, claims: Mapping[str, Any] | None = None
    ) -> VerificationResult:
        return VerificationResult(
            ok=reason is Reason.OK,
            reason=reason,
            detail=detail,
            profile=self.profile.name,
            issuer=self.issuer,
            tier=self.tier,
            valid_from=self.valid_from,
            valid_until=self.valid_until,
            claims=claims if claims is not None and reason is Reason.OK else {},
            holder_bound=self.holder_bound,
            trust_list_age=self.trust_list_age,
            status_age=self.status_age,
            warnings=tuple(self.warnings),
        )

    def _fresh(self, exp: int | None, grace: int, what: str) -> None:
        if exp is None or self.now < exp:
            return
        if self.now < exp + grace:
            self.warnings.append(f"stale_{what}")
            return
        raise _Reject(Reason.STALE_TRUST_DATA, f"the {what.replace('_', ' ')} expired")

    def run(
        self,
        payload: str | bytes,
        bundle: Bundle,
        replay: ReplayStore,
        challenge: Challenge | None,
    ) -> VerificationResult:
        prof, now = self.profile, self.now
        skew = prof.clock_skew
        if len(payload) > MAX_PAYLOAD:
            raise _Reject(Reason.TOO_LARGE, "payload longer than any QR code holds")
        if isinstance(payload, bytes):
            try:
                payload = payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _Reject(Reason.MALFORMED, "payload is not UTF-8") from exc
        text = payload.strip(PAYLOAD_WHITESPACE)
        known: Mapping[str, bytes | dict[str, Any]] | None = None
        if transport.is_transport(text):
            # The bundle puts back what the transport left out (x5c, vct#integrity).
            compact, known = transport.decode_parts(text, bundle)
        else:
            compact = text

        # Trust data first: nothing is decided on an expired trust list.
        tl = bundle.trust_list
        self.trust_list_age = now - tl.iat
        self._fresh(tl.exp, prof.trust_list_grace, "trust_list")

        sd = sdjwt.parse_compact(compact)
        token = jws.parse(sd.issuer_jwt, known)
        token.expect_typ(sdjwt.SD_JWT_VC_TYP)
        if token.header.get("alg") != jws.ES256:
            raise _Reject(Reason.UNSUPPORTED_ALG, f"algorithm {token.header.get('alg')!r}")
        body = token.payload
        iss = body.get("iss")
        issuer = tl.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise _Reject(Reason.UNKNOWN_ISSUER, "issuer is not in the trust list")
        self.issuer = IssuerInfo(
            issuer.iss, issuer.lg_code, issuer.name, issuer.prefecture, issuer.name_en
        )
        # The key comes from the trust list by kid, and from nowhere else.
        kid = token.header.get("kid")
        key = issuer.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise _Reject(Reason.UNKNOWN_KEY, "kid is not a key of this issuer")
        # x5c, when present, must be the chain the trust list certifies for this key
        # (the list's chains are checked against the anchor when the bundle loads).
        if not key.allows_x5c(token.header.get("x5c")):
            raise _Reject(Reason.UNKNOWN_KEY, "x5c is not the certificate chain of this key")
        token.verify(key.key)
        before, after = key.cert_not_before, key.cert_not_after
        if before is not None and after is not None and not before - skew <= now < after:
            raise _Reject(Reason.KEY_NOT_VALID, "the key's certificate is not valid now")

        # The https vct of this deployment, or the URN of credentials issued before it.
        if not credential.is_our_vct(body.get("vct"), tl.iss):
            raise _Reject(Reason.WRONG_VCT, "vct is not the dual-residence type")
        iat = _int(body, "iat")
        exp = _int(body, "exp")
        nbf = _int(body, "nbf", required=False)
        assert iat is not None and exp is not None
        if not key.valid_at(iat):
            raise _Reject(Reason.KEY_NOT_VALID, "key was not valid when the credential was issued")
        tier = body.get("tier")
        if tier not in credential.TIERS:
            raise _Reject(Reason.INVALID_CLAIMS, "tier is missing or unknown")
        self.tier = tier
        self.valid_from = nbf if nbf is not None else iat
        self.valid_until = exp
        if self.valid_from > now + skew or iat > now + skew:
            raise _Reject(Reason.NOT_YET_VALID, "credential is not valid yet")
        if now >= exp + skew:
            raise _Reject(Reason.EXPIRED, "credential has expired")

        claims = sdjwt.process_disclosures(body, sd.disclosures, reserved=credential.RESERVED)

        cnf = body.get("cnf")
        nonce = None
        kb_iat = 0
        if "cnf" not in body and sd.kb_jwt is None:
            self._paper()
        else:
            try:
                holder_key = jws.key_from_jwk(cnf.get("jwk") if isinstance(cnf, dict) else None)
            except MalformedError as exc:
                raise _Reject(Reason.INVALID_CLAIMS, f"cnf: {exc.description}") from exc
            if sd.kb_jwt is None:
                if prof.holder_binding_required:
                    raise _Reject(Reason.HOLDER_BINDING_MISSING, "no key-binding JWT")
            else:
                nonce, kb_iat = self._holder_binding(sd, holder_key, challenge, known)

        status_idx, status_uri = _status_ref(body)
        entry = bundle.status.get(status_uri)
        if entry is None or entry.issuer != issuer.iss:
            raise _Reject(Reason.STATUS_UNAVAILABLE, "status list not in the bundle")
        slt = entry.token
        self.status_age = now - slt.iat
        try:
            status = slt.status_list.get(status_idx)
        except IndexError as exc:
            raise _Reject(Reason.STATUS_UNAVAILABLE, "status index outside the list") from exc
        if status == statuslist.REVOKED:
            raise _Reject(Reason.REVOKED, "revoked by the issuer")
        self._fresh(slt.exp, prof.status_list_grace, "status_list")
        if status == statuslist.SUSPENDED:
            raise _Reject(Reason.SUSPENDED, "suspended by the issuer")
        if status != statuslist.VALID:
            raise _Reject(Reason.STATUS_UNAVAILABLE, f"unknown status value {status}")

        if tier not in prof.accepted_tiers:
            raise _Reject(Reason.TIER_NOT_ACCEPTED, f"tier {tier!r} not accepted")
        # Whom this verifier serves: a step of its own, after every check of
        # validity, so "valid, but not for us" is never mistaken for a forgery.
        if not prof.serves(issuer.lg_code):
            raise _Reject(Reason.OUTSIDE_POLICY, f"{issuer.lg_code} is outside this policy")
        missing = prof.required_disclosures - claims.keys()
        if missing:
            raise _Reject(Reason.MISSING_DISCLOSURE, f"not disclosed: {sorted(missing)}")

        # Last, so a scan refused for another reason can be retried after a sync.
        if nonce is not None:
            window_end = kb_iat + prof.presentation_max_age + skew
            if not replay.remember(nonce, now=now, until=window_end):
                raise _Reject(Reason.REPLAYED, "this presentation was already used")

        disclosed = {k: v for k, v in claims.items() if k not in credential.VISIBLE}
        return self.result(Reason.OK, "accepted", disclosed)

    def _paper(self) -> None:
        """A paper 登録証: signed with no holder key (``cnf``), shown with no KB-JWT.

        A phone credential stripped of its KB-JWT still has ``cnf`` and so is
        still refused; only the issuer can make a credential without one.
        """
        if not self.profile.paper_accepted:
            raise _Reject(Reason.HOLDER_BINDING_MISSING, "paper credential: not at this profile")
        self.warnings.append("paper_compare_photo_id")

    def _holder_binding(
        self,
        sd: sdjwt.SdJwt,
        holder_key: Any,
        challenge: Challenge | None,
        known: Mapping[str, bytes | dict[str, Any]] | None,
    ) -> tuple[str, int]:
        prof, now = self.profile, self.now
        try:
            kb = sdjwt.verify_kb_jwt(sd, holder_key, known)
        except SdHashMismatchError:
            raise
        except (BadSignatureError, WrongTypeError, MalformedError) as exc:
            raise _Reject(Reason.HOLDER_BINDING_INVALID, f"KB-JWT: {exc.description}") from exc
        except WireError as exc:
            raise _Reject(Reason.HOLDER_BINDING_INVALID, f"KB-JWT: {exc.description}") from exc
        self.holder_bound = True
        aud = challenge.audience if challenge else prof.audience
        if kb.get("aud") != aud:
            raise _Reject(Reason.WRONG_AUDIENCE, "KB-JWT is for another audience")
        nonce = kb.get("nonce")
        if not isinstance(nonce, str) or not MIN_NONCE <= len(nonce) <= MAX_NONCE:
            raise _Reject(Reason.WRONG_NONCE, "KB-JWT nonce missing or of a bad length")
        if challenge is not None and nonce != challenge.nonce:
            raise _Reject(Reason.WRONG_NONCE, "KB-JWT nonce is not the challenge")
        kb_iat = kb.get("iat")
        if type(kb_iat) is not int:
            raise _Reject(Reason.HOLDER_BINDING_INVALID, "KB-JWT iat missing")
        if (
            kb_iat > now + prof.clock_skew
            or now - kb_iat > prof.presentation_max_age + prof.clock_skew
        ):
            raise _Reject(Reason.STALE_PRESENTATION, "KB-JWT is outside its time window")
        return nonce, kb_iat


def _status_ref(body: Mapping[str, Any]) -> tuple[int, str]:
    status = body.get("status")
    ref = status.get("status_list") if isinstance(status, dict) else None
    if not isinstance(ref, dict):
        raise _Reject(Reason.INVALID_CLAIMS, "status reference missing")
    idx, uri = ref.get("idx"), ref.get("uri")
    if type(idx) is not int or idx < 0 or not isinstance(uri, str):
        raise _Reject(Reason.INVALID_CLAIMS, "status reference malformed")
    return idx, uri

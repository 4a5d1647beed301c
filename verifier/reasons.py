"""The stable reason codes of a verification result, with words for people.

Codes are public interface: scripts and the browser verifier match on them,
so a code is never renamed or reused.  ``OK`` is the only accepting one.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    OK = "ok"
    # The payload itself
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    UNSUPPORTED_VERSION = "unsupported_version"
    # The issuer's signature
    UNSUPPORTED_ALG = "unsupported_alg"
    BAD_TYP = "bad_typ"
    UNKNOWN_ISSUER = "unknown_issuer"
    UNKNOWN_KEY = "unknown_key"
    KEY_NOT_VALID = "key_not_valid"
    BAD_SIGNATURE = "bad_signature"
    # The credential's claims
    WRONG_VCT = "wrong_vct"
    INVALID_CLAIMS = "invalid_claims"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    BAD_DISCLOSURE = "bad_disclosure"
    RESERVED_CLAIM_DISCLOSED = "reserved_claim_disclosed"
    # The holder's key binding
    HOLDER_BINDING_MISSING = "holder_binding_missing"
    HOLDER_BINDING_INVALID = "holder_binding_invalid"
    WRONG_SD_HASH = "wrong_sd_hash"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_NONCE = "wrong_nonce"
    STALE_PRESENTATION = "stale_presentation"
    REPLAYED = "replayed"
    # Status and trust data
    STATUS_UNAVAILABLE = "status_unavailable"
    REVOKED = "revoked"
    SUSPENDED = "suspended"
    STALE_TRUST_DATA = "stale_trust_data"
    # The profile's policy
    TIER_NOT_ACCEPTED = "tier_not_accepted"
    MISSING_DISCLOSURE = "missing_disclosure"
    # Whom the verifier serves (its policy): valid, but registered elsewhere
    OUTSIDE_POLICY = "outside_policy"


# (日本語, English) for each reason, as shown at a counter.
MESSAGES: dict[Reason, tuple[str, str]] = {
    Reason.OK: ("有効です", "Valid"),
    Reason.MALFORMED: ("読み取れない形式です", "The code could not be read"),
    Reason.TOO_LARGE: ("データが大きすぎます", "The code is too large"),
    Reason.UNSUPPORTED_VERSION: ("対応していない版の形式です", "Unsupported format version"),
    Reason.UNSUPPORTED_ALG: ("許可されていない署名方式です", "Signature algorithm not allowed"),
    Reason.BAD_TYP: ("証明書の種類が違います", "Not a credential of the expected kind"),
    Reason.UNKNOWN_ISSUER: ("登録されていない発行元です", "Issuer not in the trust list"),
    Reason.UNKNOWN_KEY: ("発行元の鍵が確認できません", "Issuer key not in the trust list"),
    Reason.KEY_NOT_VALID: ("発行元の鍵の有効期間外です", "Issuer key not valid at issuance time"),
    Reason.BAD_SIGNATURE: (
        "署名が正しくありません（改ざんの疑い）",
        "Signature invalid (altered?)",
    ),
    Reason.WRONG_VCT: ("二地域居住の証明書ではありません", "Not a dual-residence credential"),
    Reason.INVALID_CLAIMS: ("証明書の内容に不備があります", "Credential content is invalid"),
    Reason.NOT_YET_VALID: ("まだ有効期間前です", "Not yet valid"),
    Reason.EXPIRED: ("有効期限が切れています", "Expired"),
    Reason.BAD_DISCLOSURE: ("開示された項目が正しくありません", "A disclosed item is invalid"),
    Reason.RESERVED_CLAIM_DISCLOSED: (
        "開示できない項目が含まれています",
        "A reserved claim was selectively disclosed",
    ),
    Reason.HOLDER_BINDING_MISSING: (
        "本人の端末による提示ではありません",
        "No proof of the holder's device",
    ),
    Reason.HOLDER_BINDING_INVALID: (
        "本人の端末の証明が正しくありません",
        "Holder device proof is invalid",
    ),
    Reason.WRONG_SD_HASH: ("提示内容が一致しません", "Presentation does not match its proof"),
    Reason.WRONG_AUDIENCE: ("この窓口向けの提示ではありません", "Presented for another verifier"),
    Reason.WRONG_NONCE: ("確認用の番号が一致しません", "Challenge does not match"),
    Reason.STALE_PRESENTATION: (
        "表示が古いです。画面を更新してもらってください",
        "Code too old: ask to refresh the screen",
    ),
    Reason.REPLAYED: (
        "同じ表示が既に使われています（画面の写しの疑い）",
        "Code already used (screenshot?)",
    ),
    Reason.STATUS_UNAVAILABLE: (
        "取消情報がありません。確認用データを更新してください",
        "No status data: sync the verifier",
    ),
    Reason.REVOKED: ("取り消されています", "Revoked"),
    Reason.SUSPENDED: ("一時停止中です", "Suspended"),
    Reason.STALE_TRUST_DATA: (
        "確認用データが古すぎます。更新してください",
        "Trust data too old: sync the verifier",
    ),
    Reason.TIER_NOT_ACCEPTED: ("この区分の登録は対象外です", "Registration tier not accepted here"),
    Reason.MISSING_DISCLOSURE: (
        "必要な項目が開示されていません",
        "Required information was not disclosed",
    ),
    Reason.OUTSIDE_POLICY: (
        "有効な登録ですが、この店舗・施設の対象の市区町村ではありません",
        "Valid, but registered with a municipality this verifier does not serve",
    ),
}


def message(reason: Reason, lang: str = "ja") -> str:
    ja, en = MESSAGES[reason]
    return en if lang == "en" else ja

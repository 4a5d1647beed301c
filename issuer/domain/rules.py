"""The registration rules of DESIGN §1, each with a stable code and its words in ja and en.

One table (:data:`RULES`), so the words stay consistent everywhere and docs/issuer-api.md can
be checked against it.  A well-formed request the rules refuse raises :class:`RuleViolation`
with the code (:func:`rule`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache
from typing import Final

from dualres.issuer.domain.errors import RuleViolation
from dualres.schemas import lgcodes, load_json
from dualres.verifier.wareki import japan_day

TIERS: Final = ("basic", "premium")
MAX_PREMIUM: Final = 3
MAX_FROM_PAST: Final = timedelta(days=1)
MAX_FROM_AHEAD: Final = timedelta(days=90)
EARLIEST_BIRTH: Final = date(1900, 1, 1)
MAX_NAME: Final = 64
MAX_ADDRESS: Final = 256
MAX_REASON: Final = 500


# The rules' stable codes: code -> (field, English, 日本語).  One table, so the
# words stay consistent and docs/issuer-api.md can be checked against it.
RULES: Final[dict[str, tuple[str, str, str]]] = {
    "invalid_tier": ("tier", "tier must be 'basic' or 'premium'",
                     "区分は basic（ベーシック）か premium（プレミアム）です"),
    "identity_check_required": ("identity",
                                "premium registration requires the My Number card identity check",
                                "プレミアム登録にはマイナンバーカードによる本人確認が必要です"),
    "premium_limit_reached": ("tier",
                              "a person may hold at most {n} premium registrations",
                              "プレミアム登録は1人{n}市区町村までです"),
    "own_municipality": ("identity",
                         "premium registration is not possible in the municipality of one's own "
                         "住所 (basic is)",
                         "住民票のある市区町村にはプレミアム登録できません（ベーシック登録はできます）"),
    "possible_duplicate": ("identity",
                           "someone with the same basic four facts is already registered here "
                           "under another identity; staff must review before registering",
                           "同じ基本4情報の方が別の本人確認で登録済みです。職員による確認が必要です"),
    "already_registered": ("identity",
                           "this person already has a registration with this municipality",
                           "この方はすでにこの市区町村に登録されています"),
    "valid_from_out_of_range": ("valid_from",
                                "valid_from may be at most 1 day in the past and 90 days ahead",
                                "有効期間の開始日は前日から90日後までの範囲で指定してください"),
    "validity_not_positive": ("valid_until", "valid_until must be after valid_from",
                              "有効期間の終了日は開始日より後にしてください"),
    "validity_too_long": ("valid_until", "the validity may be at most {days} days",
                          "有効期間は最長{days}日です"),
    "renewal_not_later": ("valid_until", "the new valid_until must be later than the current one",
                          "更新後の終了日は現在の終了日より後にしてください"),
    "renewal_too_long": ("valid_until", "valid_until may be at most {days} days from today",
                         "有効期間は本日から最長{days}日です"),
    "activities_required": ("activities", "give at least one activity",
                            "活動内容を1つ以上選んでください"),
    "unknown_activity": ("activities", "unknown activity code (see schemas/activities.json)",
                         "活動内容のコードが正しくありません"),
    "registered_since_in_future": ("registered_since",
                                   "registered_since must not be in the future",
                                   "居住開始日に未来の日付は指定できません"),
    "registered_since_before_birth": ("registered_since",
                                      "registered_since is before the birth date",
                                      "居住開始日が生年月日より前です"),
    "second_home_address_required": ("second_home.address", "the second-home address is required",
                                     "居所の住所を入力してください"),
    "second_home_address_too_long": ("second_home.address",
                                     "the second-home address may be at most {n} characters",
                                     "居所の住所は{n}文字以内です"),
    "invalid_postal_code": ("second_home.postal_code", "the postal code must be written NNN-NNNN",
                            "郵便番号は NNN-NNNN の形で入力してください"),
    "my_number_in_text": ("", "{name} appears to contain an individual number (My Number); "
                          "remove it",
                          "個人番号（マイナンバー）と思われる数字が含まれています。削除してください"),
    "invalid_kana": ("", "{name} must be written in katakana",
                     "フリガナはカタカナで入力してください"),
    "unknown_lg_code": ("identity.declared.address_lg_code",
                        "address_lg_code is not a municipality code (全国地方公共団体コード)",
                        "住所の市区町村コードが正しくありません"),
    "invalid_birthdate": ("identity", "the birth date is in the future or before 1900",
                          "生年月日が正しくありません"),
    # Online applications (issue 12, applications.py).
    "activities_too_few": ("activities",
                           "premium needs at least {n} activities in the year before the "
                           "application",
                           "プレミアム登録には申請前1年間に{n}件以上の活動が必要です"),
    "activity_date_out_of_range": ("activities",
                                   "each activity's date must be within the year before the "
                                   "application",
                                   "活動日は申請前1年以内の日付にしてください"),
    "activity_description_invalid": ("activities",
                                     "each activity needs a description of 1 to 200 characters",
                                     "活動の説明は1〜200文字で入力してください"),
    "too_many_activities": ("activities", "at most 20 activities per application",
                            "活動は1件の申請につき20件までです"),
    "evidence_required": ("evidence", "premium needs evidence of the activities",
                          "プレミアム登録には活動の証明書類が必要です"),
    "renewal_not_yet": ("registration",
                        "renewal opens 60 days before the registration expires",
                        "更新の申請は有効期限の60日前からできます"),
    "nothing_to_renew": ("registration",
                         "there is no active registration of yours to renew here",
                         "この市区町村に更新できる登録がありません"),
    "unknown_postal_code": ("child_postal",
                            "no single municipality has this postal code: give all 7 digits",
                            "この郵便番号の市区町村が見つかりません。7桁で入力してください"),
    "not_a_minor": ("child.birthdate", "a guardian applies only for a child under 18",
                    "保護者による申請は18歳未満のお子さまに限ります"),
    "invalid_relationship": ("relationship", "the relationship must be parent or guardian",
                             "続柄は親または後見人を選んでください"),
    "application_open": ("municipality",
                         "an application to this municipality is already under review",
                         "この市区町村への申請は審査中です"),
}  # fmt: skip


def rule(code: str, *, field: str | None = None, **values: object) -> RuleViolation:
    where, en, ja = RULES[code]
    return RuleViolation(
        code, en.format(**values), field=field or where, description_ja=ja.format(**values)
    )


def today(now: datetime) -> date:
    """The calendar date in Japan: validity dates are Japanese days."""
    return japan_day(now)


@cache
def activity_codes() -> frozenset[str]:
    return frozenset(a["code"] for a in load_json("activities.json"))


def home_municipality(lg_code: str) -> str:
    """The 市区町村 of an address code: a designated city's ward belongs to its city,
    whose code shares the first four digits (011011 札幌市中央区 → 011002 札幌市)."""
    info = lgcodes.lookup(lg_code)
    if info is not None and info.kind == "designated_city_ward":
        head = lg_code[:4] + "0"
        city = head + str(lgcodes.check_digit(head))
        parent = lgcodes.lookup(city)
        if parent is not None and parent.kind == "city":
            return city
    return lg_code

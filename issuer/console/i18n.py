"""The console's words: Japanese by default, English on request."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Final

from verifier._wareki import wareki

LANGS: Final = ("ja", "en")
JST: Final = timedelta(hours=9)

# key -> (日本語, English)
WORDS: Final[dict[str, tuple[str, str]]] = {
    "title": ("ふるさと住民登録 職員コンソール", "Dual-residence staff console"),
    "skip": ("本文へ移動", "Skip to content"),
    "sign_in": ("サインイン", "Sign in"),
    "sign_out": ("サインアウト", "Sign out"),
    "username": ("ユーザー名", "Username"),
    "password": ("パスワード", "Password"),
    "bad_login": ("ユーザー名またはパスワードが違います", "Wrong username or password"),
    "locked": ("サインインの失敗が続いたため、15分間ロックされています",
               "Too many failed sign-ins: locked for 15 minutes"),
    "expired": ("一定時間操作がなかったため、サインアウトしました",
                "You were signed out after 30 minutes without activity"),
    "signed_in_as": ("サインイン中", "Signed in as"),
    "clerk": ("窓口担当", "Clerk"),
    "supervisor": ("責任者", "Supervisor"),
    "registrations": ("登録の検索", "Find registrations"),
    "new_registration": ("新規登録", "New registration"),
    "audit": ("監査ログ", "Audit log"),
    "language": ("English", "日本語"),
    "search": ("検索", "Search"),
    "name_q": ("氏名（漢字・カナ）", "Name (kanji or kana)"),
    "state": ("状態", "Status"),
    "tier": ("区分", "Tier"),
    "any": ("すべて", "Any"),
    "created_from": ("登録日（から）", "Registered from"),
    "created_to": ("登録日（まで）", "Registered to"),
    "results": ("件", "results"),
    "no_results": ("該当する登録はありません", "No registrations found"),
    "name": ("氏名", "Name"),
    "kana": ("フリガナ", "Furigana"),
    "birthdate": ("生年月日", "Date of birth"),
    "address": ("住所", "Address"),
    "sex": ("性別", "Sex"),
    "valid": ("有効期間", "Validity"),
    "valid_from": ("有効期間の開始日", "Valid from"),
    "valid_until": ("有効期間の終了日", "Valid until"),
    "registered_since": ("居住開始日", "Living there since"),
    "activities": ("活動内容", "Activities"),
    "second_home": ("居所", "Second home"),
    "second_home_address": ("居所の住所", "Second-home address"),
    "postal_code": ("郵便番号", "Postal code"),
    "basic": ("ベーシック", "Basic"),
    "premium": ("プレミアム", "Premium"),
    "active": ("有効", "Active"),
    "suspended": ("一時停止", "Suspended"),
    "revoked": ("取消", "Revoked"),
    "expired_state": ("期限切れ", "Expired"),
    "card_step": ("1. マイナンバーカードの確認", "1. My Number card check"),
    "card_number": ("個人番号（カードリーダーから）", "Card number (from the card reader)"),
    "pin": ("暗証番号（4桁）", "PIN (4 digits)"),
    "read_card": ("カードを確認", "Check the card"),
    "confirm_step": ("2. 基本4情報の確認", "2. Confirm the basic four facts"),
    "details_step": ("3. 登録内容", "3. Registration details"),
    "register": ("登録する", "Register"),
    "registered": ("登録しました", "Registered"),
    "card_check_expired": ("カードの確認から時間が経ちました。もう一度カードを読み取ってください",
                           "The card check has expired: read the card again"),
    "fix_errors": ("入力内容を確認してください", "Please correct the marked fields"),
    "identity_checked": ("本人確認", "Identity check"),
    "yes": ("済（マイナンバーカード）", "Done (My Number card)"),
    "no": ("なし（自己申告）", "None (self-declared)"),
    "credentials": ("発行済みの証明書", "Issued credentials"),
    "no_credentials": ("まだ発行されていません", "None issued yet"),
    "issued_at": ("発行日時", "Issued"),
    "expires_at": ("有効期限", "Expires"),
    "cred_valid": ("有効", "Valid"),
    "reason": ("理由", "Reason"),
    "suspend": ("一時停止する", "Suspend"),
    "reinstate": ("再開する", "Reinstate"),
    "revoke": ("取り消す", "Revoke"),
    "revoke_note": ("取消は責任者のみ行えます。取り消した登録は元に戻せません。",
                    "Only supervisors can revoke; a revocation is final."),
    "renew": ("更新する", "Renew"),
    "renew_note": ("空欄の場合は本日から最長の期間で更新します",
                   "Leave empty for the longest allowed validity from today"),
    "done": ("処理しました", "Done"),
    "actions": ("操作", "Actions"),
    "state_reason": ("状態の理由", "Reason for the status"),
    "action": ("操作の種類", "Action"),
    "target": ("対象", "Target"),
    "since": ("日付（から）", "From date"),
    "until": ("日付（まで）", "To date"),
    "at": ("日時", "When"),
    "actor": ("実行者", "Actor"),
    "detail": ("内容", "Detail"),
    "filter": ("絞り込む", "Filter"),
    "verify_chain": ("改ざん検査", "Check the hash chain"),
    "chain_ok": ("監査ログの連鎖は正常です（{n}件）", "The audit chain is intact ({n} entries)"),
    "chain_bad": ("監査ログの連鎖が壊れています: 連番 {seq}（{problem}）",
                  "The audit chain is broken at entry {seq} ({problem})"),
    "error": ("エラー", "Error"),
    "not_found": ("見つかりません", "Not found"),
    "forbidden": ("この操作の権限がありません", "You are not allowed to do this"),
    "csrf": ("フォームの有効期限が切れたか、不正な送信です。画面を読み込み直してください",
             "The form expired or was not sent from this console; reload the page"),
    "bad_request": ("入力が正しくありません", "The request is not valid"),
    "server_error": ("システムエラーが発生しました。何も変更されていません",
                     "Internal error; nothing was changed"),
    "back": ("戻る", "Back"),
    "import": ("一括登録（CSV）", "Bulk import (CSV)"),
    "import_file": ("CSV ファイル（UTF-8 または Shift_JIS）", "CSV file (UTF-8 or Shift_JIS)"),
    "import_note": ("自己申告によるベーシック登録のみ一括登録できます"
                    "（プレミアムはカードによる本人確認が必要です）。"
                    "1行目は見出し行です。1行でも誤りがあれば何も登録しません。",
                    "Only self-declared basic registrations can be imported (premium needs "
                    "the card). Line 1 is the header. "
                    "If any line is wrong, nothing is registered."),
    "import_columns": ("列", "Columns"),
    "import_send": ("読み込んで登録する", "Import"),
    "import_no_file": ("ファイルを選んでください", "Choose a file"),
    "import_encoding": ("CSV ファイルとして読み取れません（UTF-8 か Shift_JIS で保存してください）",
                        "Not a readable CSV file (save it as UTF-8 or Shift_JIS)"),
    "import_header": ("1行目の見出しが足りません。列: ",
                      "The header line lacks columns. Columns: "),
    "import_too_many": ("一度に登録できるのは{n}行までです", "At most {n} lines at a time"),
    "import_empty": ("登録する行がありません", "The file has no lines to register"),
    "import_failed": ("誤りのある行があるため、何も登録していません",
                      "Some lines are wrong: nothing was registered"),
    "import_done": ("{n}件登録しました", "{n} registrations imported"),
    "line": ("行", "Line"),
    "column": ("列", "Column"),
    "date_format": ("日付は YYYY-MM-DD の形で入力してください", "Write a date as YYYY-MM-DD"),
    "optional": ("（任意）", "(optional)"),
    "required": ("（必須）", "(required)"),
    "male": ("男", "Male"),
    "female": ("女", "Female"),
    "page": ("ページ", "Page"),
    "next": ("次へ", "Next"),
    "prev": ("前へ", "Previous"),
}  # fmt: skip


def word(key: str, lang: str) -> str:
    ja, en = WORDS.get(key, (key, key))
    return en if lang == "en" else ja


def date_text(d: date | None, lang: str) -> str:
    """和暦 (西暦): ``令和8年11月18日（2026-11-18）``; English ``Reiwa 8 (2026-11-18)``."""
    if d is None:
        return "-"
    if lang == "en":
        return wareki(d, "en")
    return f"{wareki(d)}（{d.isoformat()}）"


def datetime_text(dt: datetime | None, lang: str) -> str:
    """A moment in Japan time, with its date as :func:`date_text`."""
    if dt is None:
        return "-"
    jst = (dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)) + JST
    return f"{date_text(jst.date(), lang)} {jst:%H:%M} JST"

"""The console's words: Japanese by default, English on request."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Final

from dualres.issuer.domain.db import utc
from dualres.issuer.web.dates import date_text
from dualres.verifier.wareki import JST, era, wareki

LANGS: Final = ("ja", "en")

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
    "busy_address": ("この端末からのサインインが多すぎます。しばらく待ってからお試しください",
                     "Too many sign-in attempts from this address: wait a moment and try again"),
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
    "q_in_url": ("氏名での検索は検索フォームから行ってください（URL には入れません）",
                 "Search by name with the search form (a name is never put in a URL)"),
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
    "basic": ("ベーシック登録", "Basic"),
    "premium": ("プレミアム登録", "Premium"),
    "active": ("有効", "Active"),
    "suspended": ("一時停止", "Suspended"),
    "revoked": ("取消", "Revoked"),
    "expired_state": ("期限切れ", "Expired"),
    "card_step": ("1. マイナンバーカードの確認", "1. My Number card check"),
    "card_intro": ("住民の方に、住民向けの読み取り端末でカードを確認していただきます。"
                   "暗証番号は住民の方だけが入力し、職員の画面には表示されません",
                   "The resident checks their card on the resident-facing reader; only they "
                   "type the PIN, and it never appears on a staff screen"),
    "card_waiting": ("住民の方のカード確認を待っています（5分以内）",
                     "Waiting for the resident's card check (within 5 minutes)"),
    "card_over": ("カード確認は終了しました。もう一度始めてください",
                  "The card check is over: start a new one"),
    "reader_link": ("住民向け読み取り端末で開くページ", "Page to open on the resident's reader"),
    "card_refresh": ("状態を更新", "Refresh the status"),
    "read_card": ("カード確認を開始", "Start a card check"),
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
    "activity_codes": ("activities 列に書ける活動の種類（複数は ; で区切る）",
                       "Activity codes for the activities column (several: separate with ;)"),
    "activity_code": ("書く値", "Value"),
    "activity_name": ("活動", "Activity"),
    "audit_to_registration": ("登録内容", "Registration"),
    "audit_same_target": ("この対象の記録", "Entries for this"),
    "credential_kind": ("種類", "Kind"),
    "kind_phone": ("スマートフォン", "Phone"),
    "kind_paper": ("紙の登録証", "Paper card"),
    "open_offers": ("受け取り待ちの発行", "Offers waiting to be collected"),
    "open_offer_link": ("{time}に表示した発行（残り{min}分）を開く",
                        "Open the offer shown at {time} ({min} min left)"),
    "revoke_confirm": ("取り消すと元に戻せないこと、登録証（スマートフォン・紙）が"
                       "すべて使えなくなることを確認しました",
                       "I understand that revocation cannot be undone and ends every card "
                       "(phone and paper)"),
    "revoke_confirm_needed": ("取り消す前に、確認の欄にチェックを入れてください",
                              "Tick the confirmation box before revoking"),
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
                    "まず全行を確認して誤りを行ごとに示し、誤りがなければ全行を一度に登録します"
                    "（1行でも登録できなければ何も登録しません）。",
                    "Only self-declared basic registrations can be imported (premium needs "
                    "the card). Every line is checked first and errors are listed by line; "
                    "then all lines are imported at once (if any fails, none is)."),
    "import_check": ("内容を確認する", "Check the file"),
    "import_send": ("{n}件を登録する", "Import {n} registrations"),
    "import_template": ("CSV のひな形", "The CSV template"),
    "import_template_download": ("ひな形（見出し行のみ、UTF-8）をダウンロード",
                                 "Download the template (header line only, UTF-8)"),
    "import_template_note": ("UTF-8 または Shift_JIS、1行目は見出し、1回{n}行まで",
                             "UTF-8 or Shift_JIS, header on line 1, at most {n} lines"),
    "column_meaning": ("内容", "Meaning"),
    "column_example": ("例", "Example"),
    "import_checking": ("{n}行を確認しています（まだ登録しません）",
                        "Checking {n} lines (nothing is registered yet)"),
    "import_running": ("{n}行を登録しています（すべて登録するか、何も登録しません）",
                       "Importing {n} lines (all of them, or none)"),
    "import_report": ("誤りのある行", "Lines with errors"),
    "import_again": ("ファイルを直してもう一度確認する", "Fix the file and check it again"),
    "import_ok": ("全{n}行に誤りはありません。まだ登録していません。",
                  "All {n} lines are correct. Nothing is registered yet."),
    "import_check_first": ("先にファイルの内容を確認してください",
                           "Check the file first"),
    "cancel": ("やめる", "Cancel"),
    "export": ("CSV に書き出す", "Export to CSV"),
    "export_encoding": ("文字コード", "Encoding"),
    "export_utf8": ("UTF-8（BOM付き・Excel 対応）", "UTF-8 (with BOM, for Excel)"),
    "export_sjis_name": ("Shift_JIS", "Shift_JIS"),
    "export_note": ("上の条件に合う登録を書き出します（個人番号は含みません）。"
                    "書き出しは監査ログに残ります。",
                    "Exports the registrations the search selects (never any My Number). "
                    "Every export is audited."),
    "export_filters": ("検索条件を直してから書き出してください",
                       "Correct the search conditions before exporting"),
    "export_sjis": ("Shift_JIS で表せない文字があります（{lines}行目）。UTF-8 で書き出してください",
                    "Some characters have no Shift_JIS form (lines {lines}): export as UTF-8"),
    "offer_title": ("スマートフォンに発行", "Issue to a phone"),
    "offer_issue": ("スマートフォンに発行する", "Issue to a phone"),
    "paper_issue": ("紙の登録証を印刷する（PDF）", "Print a paper card (PDF)"),
    "paper_issue_note": (
        "スマートフォンのない方へ。カードの大きさのPDFです。学校・保育・医療機関・避難所で"
        "写真付きの本人確認書類と一緒に使えます（店舗では使えません）。取消・一時停止は紙にも及びます。",
        "For residents without a smartphone: a card-sized PDF, accepted with a photo ID at"
        " schools, childcare, clinics and shelters (not at shops). Suspension and revocation"
        " apply to it too.",
    ),
    "offer_issue_note": ("QRコードと確認番号を表示します（10分間有効）",
                         "Shows a QR code and a code, valid for 10 minutes"),
    "offer_back": ("登録内容に戻る", "Back to the registration"),
    "offer_step_scan": ("1. QRコードを読み取ってください", "1. Scan a QR code"),
    "offer_tab_app": ("スマートフォンのウォレットアプリで読み取る",
                      "Scan with a wallet app on the phone"),
    "offer_tab_browser": ("ブラウザで受け取る（アプリ不要）",
                          "Receive in the browser (no app needed)"),
    "offer_app_note": ("ウォレットアプリの読み取り画面で、このQRコードを読み取ってください。",
                       "Scan this code from inside the wallet app."),
    "offer_browser_note": ("スマートフォンのカメラでこのQRコードを読み取り、"
                           "開いたページで受け取ってください。",
                           "Scan this code with the phone's camera and receive the credential "
                           "on the page that opens."),
    "offer_qr_alt": ("ウォレットアプリで証明書を受け取るためのQRコード",
                     "QR code to receive the credential in a wallet app"),
    "offer_wallet_qr_alt": ("ブラウザで証明書を受け取るためのQRコード",
                            "QR code to receive the credential in the browser"),
    "offer_step_code": ("2. 受け取る画面で確認番号を入力してください",
                        "2. Type this code where the phone asks for it"),
    "offer_code_label": ("確認番号", "Code"),
    "offer_code_note": ("確認番号（6桁）は口頭でお伝えください。"
                        "この画面を離れると再表示できません。",
                        "Tell the resident this 6-digit code; it cannot be shown again."),
    "offer_code_gone": ("確認番号は発行時に一度だけ表示されます。必要なら発行し直してください。",
                        "The code is shown once, when the offer is made; "
                        "make a new offer if needed."),
    "offer_expires": ("有効期限まで", "Expires in"),
    "offer_left": ("残り", "left"),
    "offer_refresh": ("状態を確認する", "Check the status"),
    "offer_new": ("もう一度発行する", "Make a new offer"),
    "offer_waiting": ("受け取り待ち", "Waiting for the phone"),
    "offer_redeemed": ("受け取り中", "Receiving"),
    "offer_collected": ("受け取り済み", "Collected"),
    "offer_expired": ("期限切れ。もう一度発行してください", "Expired: make a new offer"),
    "offer_locked": ("確認番号の誤りが続いたため無効になりました。もう一度発行してください",
                     "Too many wrong codes: make a new offer"),
    "import_no_file": ("ファイルを選んでください", "Choose a file"),
    "import_encoding": ("CSV ファイルとして読み取れません（UTF-8 か Shift_JIS で保存してください）",
                        "Not a readable CSV file (save it as UTF-8 or Shift_JIS)"),
    "import_header": ("1行目の見出しが足りません。列: ",
                      "The header line lacks columns. Columns: "),
    "import_too_many": ("一度に登録できるのは{n}行までです", "At most {n} lines at a time"),
    "import_empty": ("登録する行がありません", "The file has no lines to register"),
    "import_failed": ("{total}行のうち{n}行に誤りがあります。何も登録していません",
                      "{n} of {total} lines are wrong: nothing was registered"),
    "import_failed_run": ("確認の後に{n}行が登録できなくなりました。何も登録していません",
                          "{n} lines could no longer be registered: nothing was registered"),
    "import_done": ("{n}件登録しました", "{n} registrations imported"),
    "line": ("行", "Line"),
    "column": ("列", "Column"),
    "date_format": ("日付は YYYY-MM-DD の形で入力してください", "Write a date as YYYY-MM-DD"),
    "date_hint": ("カレンダーから選ぶか、西暦で入力（例: 2027-03-31）。和暦は右に表示されます",
                  "Pick from the calendar or type it (e.g. 2027-03-31); the Japanese era date"
                  " shows beside it"),
    "postal_hint": ("例: 389-0111", "e.g. 389-0111"),
    "optional": ("※任意", "Optional"),
    "required": ("※必須", "Required"),
    "male": ("男", "Male"),
    "female": ("女", "Female"),
    "page": ("ページ", "Page"),
    "next": ("次へ", "Next"),
    "prev": ("前へ", "Previous"),
}  # fmt: skip


def word(key: str, lang: str) -> str:
    ja, en = WORDS.get(key, (key, key))
    return en if lang == "en" else ja


def datetime_text(dt: datetime | None, lang: str) -> str:
    """A moment in Japan time, with its date as :func:`date_text`."""
    if dt is None:
        return "-"
    jst = utc(dt).astimezone(JST)
    return f"{date_text(jst.date(), lang)} {jst:%H:%M} JST"


def wareki_hint(value: object, lang: str) -> str:
    """The era date of an ISO ``YYYY-MM-DD`` text, or ``""`` (wareki.js does the same)."""
    if isinstance(value, date):
        d = value
    else:
        try:
            d = date.fromisoformat(str(value or ""))
        except ValueError:
            return ""
    if lang == "en":
        found = era(d)
        return f"{found[1]} {found[2]}" if found else ""
    return wareki(d)


# The audit log in words: staff read what happened, not the stored code.
ACTION_WORDS: Final[dict[str, tuple[str, str]]] = {
    "registration.create": ("登録", "Registered"),
    "registration.suspend": ("一時停止", "Suspended"),
    "registration.reinstate": ("再開", "Reinstated"),
    "registration.revoke": ("取消", "Revoked"),
    "registration.expire": ("期間満了", "Expired"),
    "registration.renew": ("有効期間の延長", "Renewed"),
    "registration.export": ("CSVの書き出し", "CSV export"),
    "credential.issue": ("登録証の発行（スマートフォン）", "Card issued to a phone"),
    "credential.issue_paper": ("紙の登録証の発行", "Paper card printed"),
    "oid4vci.offer": ("発行用QRコードの表示", "Offer shown"),
    "oid4vci.redeem": ("確認番号による受け取り", "Offer collected with its confirmation number"),
    "identity.check_failed": ("マイナンバーカードの確認の失敗", "My Number card check failed"),
    "db.purge": ("保存期間を過ぎたデータの削除", "Expired data purged"),
    "municipality.add": ("市区町村の追加", "Municipality added"),
    "key.add": ("署名鍵の追加", "Signing key added"),
    "key.remove": ("署名鍵の削除", "Signing key removed"),
    "api_token.create": ("APIトークンの作成", "API token created"),
    "staff.create": ("職員アカウントの作成", "Staff account created"),
}
# Detail members shown in words; the rest (key ids, row numbers) are internal.
DETAIL_WORDS: Final[dict[str, tuple[str, str]]] = {
    "from": ("変更前", "from"),
    "to": ("変更後", "to"),
    "reason": ("理由", "reason"),
    "name": ("名称", "name"),
    "rows": ("件数", "rows"),
    "count": ("件数", "count"),
    "role": ("役割", "role"),
}


def action_text(code: str, lang: str) -> str:
    words = ACTION_WORDS.get(code)
    return code if words is None else words[1 if lang == "en" else 0]


def detail_text(detail: object, lang: str) -> str:
    """An audit entry's detail as "理由: 転出、変更前: 有効" (words for states and dates)."""
    if not isinstance(detail, dict):
        return ""
    parts = []
    for key, value in detail.items():
        if key not in DETAIL_WORDS or value is None:
            continue
        label = DETAIL_WORDS[key][1 if lang == "en" else 0]
        shown = value
        if isinstance(value, str) and value in WORDS:
            shown = WORDS[value][1 if lang == "en" else 0]
        elif isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            shown = date_text(date.fromisoformat(value), lang)
        parts.append(f"{label}: {shown}")
    return (", " if lang == "en" else "、").join(parts)

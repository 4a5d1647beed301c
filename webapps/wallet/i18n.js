// Japanese first; English on request, remembered on this device.
const LANG_KEY = 'dualres-wallet-lang';

const ja = {
  app_title: 'ふるさと住民登録証',
  lang_switch: 'English',
  lang_switch_label: 'Switch to English',
  loading: '読み込み中…',
  add_title: '登録証を受け取る',
  add_help: '市区町村の窓口で表示されたQRコードを読み取るか、受け取り用のリンクを貼り付けてください。確認番号は窓口で別にお伝えします。',
  offer_label: '受け取り用のリンク',
  offer_hint: 'openid-credential-offer:// または https:// で始まる文字列',
  scan: 'カメラで読み取る',
  scan_stop: '読み取りをやめる',
  tx_label: '確認番号（6桁の数字）',
  tx_hint: '窓口で伝えられた数字を入力してください',
  accept: '受け取る',
  accepting: '受け取っています…',
  card_kind: 'ふるさと住民登録証',
  issuer: '登録先',
  tier: '区分',
  validity: '有効期間',
  status: '状態',
  tier_basic: 'ベーシック',
  tier_premium: 'プレミアム',
  status_valid: '有効',
  status_revoked: '取消',
  status_suspended: '一時停止中',
  status_unknown: '不明',
  status_expired: '有効期限切れ',
  status_never: '未確認（インターネットに接続して確認してください）',
  status_time: '{time} 時点',
  valid_range: '{from}〜{to}まで',
  show_counter: '店舗などで提示',
  show_counter_help: '氏名などは一切伝わりません。登録先と有効性だけを示します。',
  show_office: '学校・保育・医療機関・避難所で提示',
  show_office_help: '伝える項目を選んで提示します。',
  refresh_status: '状態を確認',
  details: '登録内容（この端末の中だけで表示）',
  remove: 'この登録証を削除',
  remove_confirm: 'この端末から登録証と鍵を削除します。元に戻せません。よろしいですか？',
  removed: '削除しました。',
  office_title: '伝える項目を選ぶ',
  office_help: '選んだ項目だけがQRコードに含まれます。学校・保育・医療機関・避難所では「氏名・生年月日」と「住所の市区町村」が必要です。',
  office_legend: '伝える項目',
  office_required: '（学校・保育・医療機関・避難所で必要）',
  office_show: 'QRコードを表示',
  back: '戻る',
  qr_counter_title: '店舗など用',
  qr_office_title: '学校・保育・医療機関・避難所用（選んだ項目を含む）',
  qr_alt: '提示用のQRコード',
  qr_nothing: '伝える項目：なし（登録先と有効性のみ）',
  qr_disclosed: '伝える項目：{items}',
  qr_countdown: 'あと {n} 秒で新しいコードに変わります',
  qr_help: '画面を明るくして、読み取り機にかざしてください。',
  close: '閉じる',
  group_person: '氏名・フリガナ・生年月日',
  group_primary_residence: '住所の市区町村',
  group_second_home: '居所の住所',
  group_activities: '活動',
  group_registered_since: '居住開始日',
  group_sub: '仮名識別子',
  claim_name: '氏名',
  claim_kana: 'フリガナ',
  claim_birthdate: '生年月日',
  ok_received: '登録証を受け取りました。',
  ok_refilled: '使い切りの証明書を補充しました。',
  batch_left: '使い切りの提示用証明書：残り {n} 回。QRコードごとに別の証明書を使うので、お店は来店を結び付けられません。インターネットに接続しているときに自動で補充します。',
  err_empty: '使い切りの証明書が残っていません。インターネットに接続すると補充されます。前回と同じ証明書を見せると、お店は前回の来店と結び付けられます。',
  reuse_last: '前回と同じ証明書で表示する（来店を結び付けられます）',
  ok_status: '状態を確認しました。',
  err_offline: 'インターネットに接続できません。前回の確認結果を表示しています。',
  err_offer: '受け取り用のリンクを読み取れません。',
  qr_warn_revoked: 'この登録証は取り消されています。提示しても「無効」と表示されます。',
  qr_warn_suspended: 'この登録証は一時停止中です。提示しても「無効」と表示されます。',
  qr_warn_expired: 'この登録証は有効期限が切れています。提示しても「無効」と表示されます。',
  err_offer_expired: 'この受け取り用QRコードは期限切れです（10分間有効）。窓口で発行し直してもらってください。',
  err_offer_used: 'この受け取り用QRコードは使用済みです。窓口で発行し直してもらってください。',
  err_offer_locked: '確認番号の誤りが続いたため無効になりました。窓口で発行し直してもらってください。',
  err_tx_code: '確認番号が違うか、有効期限が切れています。窓口にお問い合わせください。',
  err_tx_needed: '確認番号を入力してください。',
  err_issue: '受け取れませんでした（{detail}）。窓口にお問い合わせください。',
  err_network: 'インターネットに接続できません。接続してからもう一度お試しください。',
  err_status: '状態を確認できませんでした（{detail}）。',
  err_camera: 'カメラを使えません。リンクを貼り付けてください。',
  err_unsupported: 'このブラウザでは使えません（安全な接続と IndexedDB・Web Crypto が必要です）。',
};

const en = {
  app_title: 'Dual-residence card',
  lang_switch: '日本語',
  lang_switch_label: '日本語に切り替える',
  loading: 'Loading…',
  add_title: 'Receive your card',
  add_help: 'Scan the QR code shown at the municipal counter, or paste the link you received. The counter tells you the confirmation code separately.',
  offer_label: 'Link to receive the card',
  offer_hint: 'Starts with openid-credential-offer:// or https://',
  scan: 'Scan with the camera',
  scan_stop: 'Stop scanning',
  tx_label: 'Confirmation code (digits)',
  tx_hint: 'The digits you were told at the counter',
  accept: 'Receive',
  accepting: 'Receiving…',
  card_kind: 'Dual-residence registration',
  issuer: 'Registered with',
  tier: 'Tier',
  validity: 'Valid',
  status: 'Status',
  tier_basic: 'Basic',
  tier_premium: 'Premium',
  status_valid: 'Valid',
  status_revoked: 'Revoked',
  status_suspended: 'Suspended',
  status_unknown: 'Unknown',
  status_expired: 'Expired',
  status_never: 'Not checked yet (connect to the internet to check)',
  status_time: 'as of {time}',
  valid_range: '{from} to {to}',
  show_counter: 'Show at a shop',
  show_counter_help: 'Discloses nothing about you: only where you are registered and that it is valid.',
  show_office: 'Show at a school, clinic or shelter',
  show_office_help: 'Choose what to disclose first.',
  refresh_status: 'Check status',
  details: 'Registered details (shown on this device only)',
  remove: 'Delete this card',
  remove_confirm: 'Delete the card and its key from this device? This cannot be undone.',
  removed: 'Deleted.',
  office_title: 'Choose what to disclose',
  office_help: 'Only what you select goes into the QR code. School, childcare and clinic offices need your name and date of birth and the municipality of your legal address.',
  office_legend: 'Disclose',
  office_required: '(required by the office)',
  office_show: 'Show the QR code',
  back: 'Back',
  qr_counter_title: 'For a shop',
  qr_office_title: 'For a school, clinic or shelter (with what you chose)',
  qr_alt: 'QR code to present',
  qr_nothing: 'Disclosed: nothing (registration and validity only)',
  qr_disclosed: 'Disclosed: {items}',
  qr_countdown: 'A new code in {n} s',
  qr_help: 'Turn the screen brightness up and hold it to the scanner.',
  close: 'Close',
  group_person: 'Name, kana, date of birth',
  group_primary_residence: 'Municipality of legal address',
  group_second_home: 'Second-home address',
  group_activities: 'Activities',
  group_registered_since: 'Registered since',
  group_sub: 'Subject identifier',
  claim_name: 'Name',
  claim_kana: 'Name (kana)',
  claim_birthdate: 'Date of birth',
  ok_received: 'Card received.',
  ok_refilled: 'One-time credentials refilled.',
  batch_left: 'One-time credentials: {n} left. Each QR code uses a different one, so shops cannot link your visits. Refilled automatically when online.',
  err_empty: 'No one-time credentials left. Connect to the internet to refill. Showing the last one again lets shops link this visit to the previous one.',
  reuse_last: 'Show the last one again (visits can be linked)',
  ok_status: 'Status checked.',
  err_offline: 'No internet connection: showing the last check.',
  err_offer: 'This is not a link to receive a card.',
  qr_warn_revoked: 'This card has been revoked: a verifier will show it as invalid.',
  qr_warn_suspended: 'This card is suspended: a verifier will show it as invalid.',
  qr_warn_expired: 'This card has expired: a verifier will show it as invalid.',
  err_offer_expired: 'This QR code has expired (it lasts 10 minutes). Please ask at the counter for a new one.',
  err_offer_used: 'This QR code was already used. Please ask at the counter for a new one.',
  err_offer_locked: 'Too many wrong confirmation numbers: this QR code no longer works. Please ask at the counter for a new one.',
  err_tx_code: 'Wrong or expired confirmation code. Please ask at the counter.',
  err_tx_needed: 'Enter the confirmation code.',
  err_issue: 'Could not receive the card ({detail}). Please ask at the counter.',
  err_network: 'No internet connection. Connect and try again.',
  err_status: 'Could not check the status ({detail}).',
  err_camera: 'The camera is not available: paste the link instead.',
  err_unsupported: 'This browser cannot run the wallet (it needs a secure connection, IndexedDB and Web Crypto).',
};

const DICTS = { ja, en };

export function getLang() {
  try {
    return localStorage.getItem(LANG_KEY) === 'en' ? 'en' : 'ja';
  } catch {
    return 'ja';
  }
}

export function setLang(lang) {
  try {
    localStorage.setItem(LANG_KEY, lang);
  } catch {
    // private mode: the switch still works for this visit
  }
}

export function t(key, vars = {}, lang = getLang()) {
  const text = DICTS[lang][key] ?? DICTS.ja[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ''));
}

export function applyStatic(root, lang) {
  document.documentElement.lang = lang;
  document.title = t('app_title', {}, lang);
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n, {}, lang);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) {
    el.placeholder = t(el.dataset.i18nPlaceholder, {}, lang);
  }
  for (const el of root.querySelectorAll('[data-i18n-aria]')) {
    el.setAttribute('aria-label', t(el.dataset.i18nAria, {}, lang));
  }
}

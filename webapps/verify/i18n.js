// The app's own words (Japanese first).  Reason, tier and warning words come
// from data/reasons.json, generated from verifier/reasons.py and verifier/cli.py,
// so the app and the CLI say exactly the same thing.
import { formatDate, jstParts, warekiJa } from '../lib/wareki.js';

export const WORDS = {
  ja: {
    app_title: 'ふるさと住民登録 確認アプリ',
    loading: '読み込み中…',
    setup_title: 'はじめての設定',
    setup_help: '自治体の案内にある設定用QRコードを読み取り、この端末での確認の種類を選んでください。設定は一度だけです。',
    anchor_label: 'トラストアンカーの公開鍵（PEM または JWK）',
    anchor_hint: '別の経路（紙・メール・USBなど）で受け取ったものを使います。下に表示される照合用の番号が自治体の案内と一致することを確かめてください。',
    anchor_file: 'ファイルから読み込む',
    anchor_thumb: '照合用の番号',
    source_label: '信頼リストの場所（URL）',
    profile_label: '2. 使い方（確認の種類）',
    setup_save: '保存してデータを受け取る',
    camera: 'カメラで読み取る',
    camera_stop: 'カメラを止める',
    image: '画像から読み取る',
    wedge_label: 'QRリーダー（キーボード入力）',
    wedge_hint: 'USB・Bluetooth のQRリーダーはここに入力されます（最後に Enter）。',
    sync: '今すぐ更新',
    bundle_file: 'ファイルから更新',
    settings: '設定',
    next: '次の人を確認する',
    valid: '有効',
    invalid: '無効',
    municipality: '自治体',
    tier: '区分',
    valid_until: '有効期限',
    valid_from: '有効開始',
    name: '氏名',
    kana: 'フリガナ',
    birthdate: '生年月日',
    residence: '住所（市区町村）',
    data_fresh: '確認用データ: {age}に更新（{time}）',
    data_stale: '確認用データの期限が切れています。インターネットにつないで更新してください。この状態では確認できません。',
    data_grace: '確認用データの期限が切れています（避難所の猶予期間中）。つながり次第、更新してください。',
    data_none: '確認用データがありません。更新してください。',
    ago_s: '{n}秒前', ago_m: '{n}分前', ago_h: '{n}時間前', ago_d: '{n}日前',
    synced: '確認用データを更新しました（市区町村 {n}）',
    sync_failed: '更新できませんでした: {msg}',
    offline: 'オフラインです。保存済みのデータで確認します。',
    no_qr: 'QRコードが見つかりません',
    camera_failed: 'カメラを使えません: {msg}',
    anchor_bad: '公開鍵を読み取れません（PEM の "BEGIN PUBLIC KEY" または JWK）',
    profile_counter_help: '店舗など。本人確認の項目は受け取りません。',
    profile_office_help: '学校・保育・医療機関。氏名・生年月日・住所の開示が必要です。',
    profile_shelter_help: '災害時の避難所。データが古くても30日までは警告付きで確認します。',
    roster_title: '避難者名簿（この端末）',
    roster_privacy: '避難所の設定では、受付できた人をこの端末だけに記録します（受付日時・登録先市区町村・区分・氏名・フリガナ・生年月日・住所の市区町村）。自治体の避難者名簿に引き渡したら、必ず消去してください。',
    roster_count: '受付済み: {n}人',
    roster_export_utf8: 'CSVで書き出す（UTF-8）',
    roster_export_sjis: 'CSVで書き出す（Shift_JIS）',
    roster_clear: '名簿を消去する',
    roster_clear_confirm: '避難者名簿（{n}人）をこの端末から消去します。元に戻せません。書き出しは済みましたか？',
    roster_cleared: '避難者名簿を消去しました',
    roster_added: '避難者名簿に追加しました（{n}人目）',
    roster_sjis_bad: 'Shift_JIS で表せない文字があります（{lines}行目）。UTF-8 で書き出してください',
    setup_qr_title: '1. 設定用QRコードを読み取る',
    setup_qr_help: '自治体から届いた案内（または発行サーバーのトップページ）にある「確認アプリの設定用QRコード」を読み取ってください。',
    setup_qr_ok: '設定用QRコードを確認しました。照合用の番号: {kid}',
    setup_qr_bad: '設定用QRコードではありません。自治体の案内にあるQRコードを読み取ってください。',
    setup_qr_mismatch: '照合用の番号が一致しません。設定を中止しました。自治体に問い合わせてください。',
    setup_qr_fetch: '発行サーバーから鍵を受け取れませんでした: {msg}',
    setup_need: '先に設定用QRコードを読み取ってください。',
    expert_summary: '専門家向け: 公開鍵を貼り付けて設定する',
    policy_label: '対象とする登録（※任意）',
    policy_help: '指定した市区町村・都道府県の登録だけを「有効」とします。空欄なら、すべての市区町村の登録を確認します。',
    accept_lg_label: '市区町村コード（6桁、複数はカンマ区切り）',
    accept_lg_hint: '例: 203211（軽井沢町）。自治体の案内にある全国地方公共団体コードです。',
    accept_pref_label: '都道府県（複数選択可）',
    accept_pref_hint: '都道府県を選ぶと、その都道府県内のすべての市区町村の登録が対象になります。',
    accept_tier_label: '登録の区分',
    tier_any: 'どちらも',
    tier_premium_only: 'プレミアム登録のみ',
    tier_basic_only: 'ベーシック登録のみ',
    policy_bad: '対象の指定が正しくありません: {msg}',
    policy_badge: '対象を限定中',
    offline_left: 'あと{left}、インターネットなしで確認できます（{time}まで）。',
    offline_soon: 'まもなく確認できなくなります。あと{left}（{time}まで）。早めにインターネットにつないで更新してください。',
    left_h: '{n}時間', left_d: '{n}日', left_m: '{n}分',
    lang_switch: 'English',
    code: 'コード',
  },
  en: {
    app_title: 'Registration card verifier',
    loading: 'Loading…',
    setup_title: 'First-time setup',
    setup_help: 'Scan the set-up QR code in your municipality\'s notice and choose what this device checks. You do this once.',
    anchor_label: 'Trust-anchor public key (PEM or JWK)',
    anchor_hint: 'Use the key you received through another channel (paper, e-mail, USB). Check that the check number below matches the one your municipality published.',
    anchor_file: 'Load from a file',
    anchor_thumb: 'Check number',
    source_label: 'Trust list location (URL)',
    profile_label: '2. Use (kind of check)',
    setup_save: 'Save and sync',
    camera: 'Scan with the camera',
    camera_stop: 'Stop the camera',
    image: 'Read from an image',
    wedge_label: 'QR scanner (keyboard input)',
    wedge_hint: 'USB or Bluetooth QR scanners type here (ending with Enter).',
    sync: 'Sync now',
    bundle_file: 'Sync from a file',
    settings: 'Settings',
    next: 'Check the next person',
    valid: 'Valid',
    invalid: 'Invalid',
    municipality: 'Municipality',
    tier: 'Tier',
    valid_until: 'Valid until',
    valid_from: 'Valid from',
    name: 'Name',
    kana: 'Name (kana)',
    birthdate: 'Date of birth',
    residence: 'Residence (municipality)',
    data_fresh: 'Trust data: updated {age} ({time})',
    data_stale: 'The trust data has expired. Connect to the internet and sync: nothing can be checked until then.',
    data_grace: 'The trust data has expired (shelter grace period). Sync as soon as you can.',
    data_none: 'No trust data yet: sync first.',
    ago_s: '{n} s ago', ago_m: '{n} min ago', ago_h: '{n} h ago', ago_d: '{n} days ago',
    synced: 'Synced ({n} issuers, {m} status lists)',
    sync_failed: 'Sync failed: {msg}',
    offline: 'Offline: checking with the saved data.',
    no_qr: 'No QR code found',
    camera_failed: 'Cannot use the camera: {msg}',
    anchor_bad: 'Cannot read the public key (PEM "BEGIN PUBLIC KEY" or JWK)',
    profile_counter_help: 'Shops: no personal data is received.',
    profile_office_help: 'Schools, childcare, clinics: name, birth date and residence must be disclosed.',
    profile_shelter_help: 'Disaster shelters: trust data up to 30 days old is accepted with a warning.',
    roster_title: 'Evacuee roster (this device)',
    roster_privacy: 'In the shelter setting, each person checked in is recorded on this device only (time, municipality, tier, name, kana, date of birth, municipality of residence). Clear it once it is handed to the municipality.',
    roster_count: 'Checked in: {n}',
    roster_export_utf8: 'Export CSV (UTF-8)',
    roster_export_sjis: 'Export CSV (Shift_JIS)',
    roster_clear: 'Clear the roster',
    roster_clear_confirm: 'Clear the evacuee roster ({n} people) from this device? This cannot be undone. Have you exported it?',
    roster_cleared: 'The evacuee roster was cleared',
    roster_added: 'Added to the evacuee roster (no. {n})',
    roster_sjis_bad: 'Some characters have no Shift_JIS form (lines {lines}): export as UTF-8',
    setup_qr_title: '1. Scan the set-up QR code',
    setup_qr_help: 'Scan the "set-up QR code for the verifier app" in your municipality\'s notice (or on the issuer\'s home page).',
    setup_qr_ok: 'Set-up code checked. Check number: {kid}',
    setup_qr_bad: 'Not a set-up QR code: scan the one in your municipality\'s notice.',
    setup_qr_mismatch: 'The check number does not match: set-up stopped. Ask your municipality.',
    setup_qr_fetch: 'Could not get the key from the issuer: {msg}',
    setup_need: 'Scan the set-up QR code first.',
    expert_summary: 'For experts: paste the public key',
    policy_label: 'Registrations served (optional)',
    policy_help: 'Only registrations of these municipalities or prefectures count as valid here. Leave empty to serve every municipality.',
    accept_lg_label: 'Municipality codes (6 digits, comma-separated)',
    accept_lg_hint: 'For example 203211 (Karuizawa): the local government code in your municipality\'s notice.',
    accept_pref_label: 'Prefectures (choose any)',
    accept_pref_hint: 'A prefecture covers every municipality in it.',
    accept_tier_label: 'Registration tier',
    tier_any: 'Both',
    tier_premium_only: 'Premium registration only',
    tier_basic_only: 'Basic registration only',
    policy_bad: 'The registrations served are not valid: {msg}',
    policy_badge: 'limited',
    offline_left: 'Can check without internet for {left} more (until {time}).',
    offline_soon: 'Checking stops soon: {left} left (until {time}). Connect to the internet and sync soon.',
    left_h: '{n} h', left_d: '{n} days', left_m: '{n} min',
    lang_switch: '日本語',
    code: 'code',
  },
};

export function t(lang, key, vars = {}) {
  const s = (WORDS[lang] && WORDS[lang][key]) ?? WORDS.ja[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ''));
}

// 和暦 (../lib/wareki.js, shared with the wallet): 令和9年11月18日 in Japanese,
// "Reiwa 9 (2027-11-18)" in English.
export const wareki = (iso, lang) => (lang === 'en' ? formatDate(iso, 'en') : warekiJa(iso));

// Japan has had no daylight saving since 1951: JST is a fixed +9 h.
export const jst = jstParts;

// As the CLI prints it: 令和9年11月18日（2027-11-18）, or Reiwa 9 (2027-11-18).
export const dateText = formatDate;

export function momentText(epoch, lang) {
  const { iso, hm } = jst(epoch);
  return lang === 'en' ? `${iso} ${hm} JST` : `${wareki(iso, 'ja')} ${hm}`;
}

export function ago(seconds, lang) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return t(lang, 'ago_s', { n: s });
  if (s < 3600) return t(lang, 'ago_m', { n: Math.floor(s / 60) });
  if (s < 86400) return t(lang, 'ago_h', { n: Math.floor(s / 3600) });
  return t(lang, 'ago_d', { n: Math.floor(s / 86400) });
}

// How long something still lasts, in the largest unit that reads naturally.
export function left(seconds, lang) {
  const s = Math.max(0, Math.floor(seconds));
  if (s >= 2 * 86400) return t(lang, 'left_d', { n: Math.floor(s / 86400) });
  if (s >= 3600) return t(lang, 'left_h', { n: Math.floor(s / 3600) });
  return t(lang, 'left_m', { n: Math.floor(s / 60) });
}

// The shelter's evacuee roster (避難者名簿): each accepted check-in under the
// shelter profile, kept on this device only, exported as CSV for the
// municipality and cleared by the operator.  Nothing here leaves the device
// except through the operator's own export.

import { jst } from './i18n.js';

// Columns as a municipality's 避難者名簿 form asks them, Japanese only: the
// file goes to a Japanese office, and one header row keeps Excel happy.
export const COLUMNS = ['受付日時', '登録先市区町村', '市区町村コード', '区分', '氏名', 'フリガナ', '生年月日', '住所（市区町村）'];
const TIER_WORDS = { basic: 'ベーシック登録', premium: 'プレミアム登録' };

// What one accepted result puts in the roster (only what was disclosed).
export function entryOf(result, at) {
  const p = (result.claims && result.claims.person) || {};
  const res = (result.claims && result.claims.primary_residence) || {};
  const str = (v) => (typeof v === 'string' ? v : '');
  return {
    at,
    municipality: result.issuer ? `${result.issuer.name}（${result.issuer.prefecture}）` : '',
    lg_code: result.issuer ? result.issuer.lg_code : '',
    tier: result.tier || '',
    name: [str(p.family_name), str(p.given_name)].filter(Boolean).join(' '),
    kana: [str(p.family_name_kana), str(p.given_name_kana)].filter(Boolean).join(' '),
    birthdate: str(p.birthdate),
    residence: str(res.name),
  };
}

// A cell a spreadsheet will not run as a formula (OWASP "CSV injection").
function cell(v) {
  let s = String(v ?? '');
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return `"${s.replace(/"/g, '""')}"`;
}

export function csvText(entries) {
  const lines = [COLUMNS.map(cell).join(',')];
  for (const e of entries) {
    const t = jst(e.at);
    lines.push([`${t.iso} ${t.hm}`, e.municipality, e.lg_code, TIER_WORDS[e.tier] || e.tier, e.name, e.kana, e.birthdate, e.residence].map(cell).join(','));
  }
  return lines.join('\r\n') + '\r\n';
}

let cp932 = null;

async function cp932Table() {
  if (cp932) return cp932;
  const r = await fetch(new URL('./data/cp932.json', import.meta.url));
  const data = await r.json();
  const map = new Map();
  data.leads.forEach((lead, i) => {
    const row = data.rows[i];
    for (let j = 0; j < row.length; j++) {
      const ch = row[j];
      if (ch !== '\u0000') map.set(ch, (lead << 8) | (data.trail_start + j));
    }
  });
  for (const [ch, code] of Object.entries(data.extra || {})) map.set(ch, code);
  cp932 = map;
  return map;
}

// UTF-8 with a BOM (Excel then reads it as UTF-8), or cp932 (Excel's
// Shift_JIS).  Returns {bytes} or {badLines} naming the lines (1 = header)
// with a character Shift_JIS cannot hold, as the console's export does.
export async function encode(text, encoding) {
  if (encoding !== 'shift_jis') {
    const body = new TextEncoder().encode(text);
    const out = new Uint8Array(body.length + 3);
    out.set([0xef, 0xbb, 0xbf]);
    out.set(body, 3);
    return { bytes: out };
  }
  const table = await cp932Table();
  const out = [];
  const bad = new Set();
  let line = 1;
  for (const ch of text) {
    const c = ch.codePointAt(0);
    if (ch === '\n') line++;
    if (c < 0x80) out.push(c);
    else if (c >= 0xff61 && c <= 0xff9f) out.push(c - 0xff61 + 0xa1); // half-width katakana
    else if (table.has(ch)) {
      const code = table.get(ch);
      out.push(code >> 8, code & 0xff);
    } else bad.add(line);
  }
  if (bad.size) return { badLines: [...bad] };
  return { bytes: Uint8Array.from(out) };
}

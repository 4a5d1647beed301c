// 和暦 as a municipal counter writes it, for both apps; the era table is
// verifier/_wareki.py's (./shared.js), newest first, each era from its
// official first day, so 1989-01-07 is 昭和64年.
import { ERAS } from './shared.js';

const pad = (n) => String(n).padStart(2, '0');

// ISO dates compare correctly as strings, which avoids time-zone traps of Date.
export function isoDate(y, m, d) {
  return `${String(y).padStart(4, '0')}-${pad(m)}-${pad(d)}`;
}

export function era(iso) {
  for (const [start, ja, en] of ERAS) {
    if (iso >= start) return { ja, en, year: Number(iso.slice(0, 4)) - Number(start.slice(0, 4)) + 1 };
  }
  return null;
}

// 令和9年11月17日 (before 明治: 1867年1月1日).
export function warekiJa(iso) {
  const found = era(iso);
  const [y, m, d] = iso.split('-').map(Number);
  if (!found) return `${y}年${m}月${d}日`;
  return `${found.ja}${found.year === 1 ? '元' : found.year}年${m}月${d}日`;
}

// 令和9年11月17日（2027-11-17）, or "Reiwa 9 (2027-11-17)" in English.
export function formatDate(iso, lang) {
  const found = era(iso);
  if (lang === 'en') return found ? `${found.en} ${found.year} (${iso})` : iso;
  return found ? `${warekiJa(iso)}（${iso}）` : warekiJa(iso);
}

// Japan has had no daylight saving since 1951: JST is a fixed +9 h.
export function jstParts(epochSeconds) {
  const t = new Date((epochSeconds + 9 * 3600) * 1000);
  return {
    iso: isoDate(t.getUTCFullYear(), t.getUTCMonth() + 1, t.getUTCDate()),
    hm: `${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())}`,
  };
}

export function formatMoment(epochSeconds, lang) {
  const { iso, hm } = jstParts(epochSeconds);
  return lang === 'en' ? `${iso} ${hm} JST` : `${formatDate(iso, 'ja')} ${hm}`;
}

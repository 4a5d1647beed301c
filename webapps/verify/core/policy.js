// Whom this verifier serves: verifier/profiles.py with_policy(), for the app's
// settings and the shared vectors (tests/vectors/policy.json).  A policy only
// narrows a profile: tiers outside the profile are refused, never added.

import { LG_CODE_WEIGHTS, PREFECTURE_CODES } from '../../lib/shared.js';

export { PREFECTURE_CODES };

// 全国地方公共団体コード: five digits and a modulus-11 check digit (schemas/lgcodes.py).
export function isLgCode(code) {
  if (typeof code !== 'string' || !/^[0-9]{6}$/.test(code)) return false;
  const s = LG_CODE_WEIGHTS.reduce((sum, w, i) => sum + w * Number(code[i]), 0);
  return (11 - (s % 11)) % 10 === Number(code[5]);
}

export function withPolicy(profile, { lg_codes = [], prefectures = [], tiers = [] } = {}) {
  const bad = [
    ...lg_codes.filter((c) => !isLgCode(c)),
    ...prefectures.filter((c) => !PREFECTURE_CODES.includes(c)),
    ...tiers.filter((t) => !profile.accepted_tiers.includes(t)),
  ];
  if (bad.length) throw new RangeError(bad.join(', '));
  const union = (a, b) => [...new Set([...(a || []), ...b])].sort();
  return {
    ...profile,
    accepted_lg_codes: union(profile.accepted_lg_codes, lg_codes),
    accepted_prefectures: union(profile.accepted_prefectures, prefectures),
    accepted_tiers: tiers.length ? [...tiers] : profile.accepted_tiers,
  };
}

// Registering with a municipality also registers with its prefecture.
export function serves(profile, lgCode) {
  const lgs = profile.accepted_lg_codes || [];
  const prefs = profile.accepted_prefectures || [];
  if (!lgs.length && !prefs.length) return true;
  return lgs.includes(lgCode) || prefs.includes(String(lgCode).slice(0, 2));
}

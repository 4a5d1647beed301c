// The national trust list, mirroring verifier/wire/trustlist.py: verified
// against a pinned anchor named by its RFC 7638 thumbprint.

import { WireError, malformed } from '../../lib/errors.js';
import { checkJwk, importPoint, parse as parseJws, thumbprint } from './jws.js';
import { get, isInt, isObj } from './json.js';
import { checkCa, checkChain } from './x509.js';
import { TRUST_LIST_TYP } from '../../lib/shared.js';

export { TRUST_LIST_TYP };

function optInt(obj, name) {
  const v = get(obj, name);
  if (v != null && !isInt(v)) throw malformed(`${name} must be an integer`);
  return v ?? null;
}

function str(obj, name) {
  const v = get(obj, name);
  if (typeof v !== 'string' || !v) throw malformed(`${name} must be a non-empty string`);
  return v;
}

const MAX_ISSUING_CAS = 16;

// The deployment's issuing CAs, listed once at the top of the list rather than
// under each of a nationwide list's thousands of keys (trustlist.py).
async function issuingCas(raw, anchor) {
  if (raw == null) return [];
  if (!Array.isArray(raw) || raw.length > MAX_ISSUING_CAS) throw malformed(`issuing_cas must be an array of at most ${MAX_ISSUING_CAS}`);
  const out = [];
  for (const text of raw) out.push(await checkCa(text, anchor.key));
  return out;
}

async function issuer(entry, anchor, cas) {
  if (!isObj(entry)) throw malformed('issuer entry must be an object');
  const keys = new Map();
  const rawKeys = get(entry, 'keys');
  if (!Array.isArray(rawKeys) || rawKeys.length === 0) throw malformed('issuer entry needs keys');
  for (const k of rawKeys) {
    if (!isObj(k)) throw malformed('key entry must be an object');
    const kid = str(k, 'kid');
    if (keys.has(kid)) throw malformed(`duplicate kid ${kid}`);
    const { x, y } = checkJwk(get(k, 'jwk'));
    const notBefore = optInt(k, 'not_before');
    const notAfter = optInt(k, 'not_after');
    if (notBefore !== null && notAfter !== null && notAfter < notBefore) throw malformed(`key ${kid} ends before it starts`);
    const x5c = get(k, 'x5c') ?? [];
    if (!Array.isArray(x5c) || !x5c.every((c) => typeof c === 'string' && c)) {
      throw malformed('x5c must be an array of base64 certificates');
    }
    const caIndex = get(k, 'x5c_ca');
    let ca = null;
    if (caIndex != null) {
      if (!isInt(caIndex) || caIndex < 0 || caIndex >= cas.length || x5c.length === 0) throw malformed(`key ${kid}: x5c_ca names no issuing CA`);
      ca = cas[caIndex];
    }
    const key = await importPoint(x, y);
    // Checked against the anchor that signed the list, as trustlist.py does: a
    // bad chain refuses the whole list.
    const window = x5c.length ? await checkChain(x5c, x, y, anchor.key, ca) : { notBefore: null, notAfter: null };
    // What credentials carry: the chain up to the listed CA, then the CA.
    const chain = ca ? [...x5c, ca.text] : x5c;
    keys.set(kid, { kid, key, notBefore, notAfter, x5c: chain, certNotBefore: window.notBefore, certNotAfter: window.notAfter });
  }
  const lists = get(entry, 'status_lists') ?? [];
  if (!Array.isArray(lists) || !lists.every((u) => typeof u === 'string')) {
    throw malformed('status_lists must be an array of URIs');
  }
  const nameEn = get(entry, 'name_en');
  return {
    iss: str(entry, 'iss'),
    lgCode: str(entry, 'lg_code'),
    name: str(entry, 'name'),
    prefecture: str(entry, 'prefecture'),
    keys,
    statusLists: lists,
    nameEn: typeof nameEn === 'string' ? nameEn : null,
  };
}

// Whether a key may sign something dated t (a credential's or status list's iat):
// not a retired key, nor the announced next one before its start (trustlist.py).
export function keyValidAt(key, t) {
  return (key.notBefore === null || t >= key.notBefore) && (key.notAfter === null || t <= key.notAfter);
}

// Whether a token's x5c header (undefined when absent) may stand beside this key:
// absent, or exactly the chain the trust list certifies for it (trustlist.py).
export function keyAllowsX5c(key, x5c) {
  return x5c === undefined || (key.x5c.length > 0 && JSON.stringify(x5c) === JSON.stringify(key.x5c));
}

// anchors: [{x, y, key}] (coordinates as bytes, key as a CryptoKey).
export async function parse(text, anchors) {
  const token = parseJws(text);
  token.expectTyp(TRUST_LIST_TYP);
  const kid = get(token.header, 'kid');
  let anchor = null;
  for (const a of anchors) {
    if ((await thumbprint(a.x, a.y)) === kid) anchor = a;
  }
  if (anchor === null) throw new WireError('wrong_anchor', 'trust list is not signed by a pinned trust anchor');
  await token.verify(anchor.key);
  const p = token.payload;
  const iat = optInt(p, 'iat');
  const exp = optInt(p, 'exp');
  if (iat === null || exp === null) throw malformed('trust list needs iat and exp');
  const entries = get(p, 'issuers');
  if (!Array.isArray(entries)) throw malformed('issuers must be an array');
  const cas = await issuingCas(get(p, 'issuing_cas'), anchor);
  const issuers = new Map();
  for (const entry of entries) {
    const one = await issuer(entry, anchor, cas);
    if (issuers.has(one.iss)) throw malformed(`issuer ${one.iss} listed twice`);
    issuers.set(one.iss, one);
  }
  const rawTypes = get(p, 'types') ?? {};
  if (!isObj(rawTypes)) throw malformed('types must be an object');
  const types = new Map();
  for (const [vct, values] of Object.entries(rawTypes)) {
    if (!Array.isArray(values) || !values.every((v) => typeof v === 'string' && v)) {
      throw malformed('types maps a vct to an array of integrity strings');
    }
    types.set(vct, values);
  }
  return { iss: str(p, 'iss'), iat, exp, issuers, types };
}

// SD-JWT (RFC 9901) presentations and their KB-JWT, mirroring
// verifier/wire/sdjwt.py rule by rule and in the same order, so a hostile
// presentation gets the same reason code from both verifiers.

import { WireError, malformed } from '../../lib/errors.js';
import { b64d, b64e, parse as parseJws, sha256 } from './jws.js';
import { JFloat, get, has, isObj, keysOf, loads } from './json.js';
import * as shared from '../../lib/shared.js';

export const { SD_JWT_VC_TYP, KB_JWT_TYP, SD_ALG, MAX_DISCLOSURES } = shared;
export const RESERVED_CLAIMS = new Set(shared.RESERVED_CLAIMS);
const NEVER_NAMES = new Set(['_sd', '...']);
const ascii = new TextEncoder();

const badDisclosure = (d) => new WireError('bad_disclosure', d);

export class SdJwt {
  constructor(issuerJwt, disclosures, kbJwt) {
    this.issuerJwt = issuerJwt;
    this.disclosures = disclosures;
    this.kbJwt = kbJwt;
  }

  get sdJwt() {
    return [this.issuerJwt, ...this.disclosures].join('~') + '~';
  }
}

export function parseCompact(text) {
  const parts = text.split('~');
  if (parts.length < 2) throw malformed("an SD-JWT has at least one '~'");
  if (parts.length - 2 > MAX_DISCLOSURES) throw new WireError('too_large', 'too many disclosures');
  const issuerJwt = parts[0];
  const disclosures = parts.slice(1, -1);
  const last = parts[parts.length - 1];
  if (!issuerJwt || disclosures.some((d) => !d)) throw malformed('empty SD-JWT component');
  return new SdJwt(issuerJwt, disclosures, last || null);
}

export async function sdHash(sdJwt) {
  return b64e(await sha256(ascii.encode(sdJwt)));
}

export async function verifyKbJwt(sd, holderKey) {
  if (sd.kbJwt === null) throw malformed('no key-binding JWT');
  const kb = parseJws(sd.kbJwt);
  kb.expectTyp(KB_JWT_TYP);
  await kb.verify(holderKey);
  if (get(kb.payload, 'sd_hash') !== (await sdHash(sd.sdJwt))) {
    throw new WireError('wrong_sd_hash', 'sd_hash does not match the presented SD-JWT');
  }
  return kb.payload;
}

function decodeDisclosure(text) {
  let content;
  try {
    content = loads(b64d(text));
  } catch (e) {
    // Only "malformed" becomes bad_disclosure: too_large stays too_large, as in Python.
    if (e instanceof WireError && e.code === 'malformed') {
      throw badDisclosure(`disclosure is not base64url JSON: ${e.description}`);
    }
    throw e;
  }
  if (!Array.isArray(content) || (content.length !== 2 && content.length !== 3)) {
    throw badDisclosure('a disclosure is an array of two or three elements');
  }
  if (typeof content[0] !== 'string') throw badDisclosure('disclosure salt must be a string');
  if (content.length === 3 && (typeof content[1] !== 'string' || NEVER_NAMES.has(content[1]))) {
    throw badDisclosure('invalid disclosure claim name');
  }
  return content;
}

export async function processDisclosures(payload, disclosures, reserved = RESERVED_CLAIMS) {
  const alg = has(payload, '_sd_alg') ? payload._sd_alg : SD_ALG;
  if (alg !== SD_ALG) throw malformed(`unsupported _sd_alg`);
  const byDigest = new Map();
  for (const d of disclosures) {
    const content = decodeDisclosure(d);
    const key = b64e(await sha256(ascii.encode(d)));
    if (byDigest.has(key)) throw badDisclosure('the same disclosure is presented twice');
    byDigest.set(key, content);
  }
  const walk = new Walk(byDigest, reserved);
  const out = walk.object(payload, true);
  if (walk.used.size !== byDigest.size || [...byDigest.keys()].some((k) => !walk.used.has(k))) {
    throw badDisclosure('a disclosure is not referenced by the token');
  }
  for (const name of reserved) {
    if (walk.disclosedTop.has(name)) throw new WireError('reserved_claim_disclosed', `'${name}' must not be selectively disclosable`);
  }
  out.delete('_sd_alg');
  return out;
}

// Output objects are Maps: key order is insertion order, whatever the names.
class Walk {
  constructor(byDigest, reserved) {
    this.byDigest = byDigest;
    this.reserved = reserved;
    this.seen = new Set();
    this.used = new Set();
    this.disclosedTop = new Set();
  }

  claimDigest(value) {
    if (typeof value !== 'string') throw malformed('a digest must be a string');
    if (this.seen.has(value)) throw badDisclosure('a digest appears more than once');
    this.seen.add(value);
    return value;
  }

  value(v) {
    if (isObj(v)) return this.object(v, false);
    if (Array.isArray(v)) return this.array(v);
    return v;
  }

  object(obj, top) {
    const out = new Map();
    for (const k of keysOf(obj)) {
      if (k !== '_sd') out.set(k, this.value(obj[k]));
    }
    const sd = has(obj, '_sd') ? obj._sd : [];
    if (!Array.isArray(sd)) throw malformed('_sd must be an array');
    for (const item of sd) {
      const key = this.claimDigest(item);
      const content = this.byDigest.get(key);
      if (content === undefined) continue; // undisclosed claim or decoy
      if (content.length !== 3) throw badDisclosure('array-element disclosure used for an object claim');
      const [, name, val] = content;
      if (top && this.reserved.has(name)) {
        throw new WireError('reserved_claim_disclosed', `'${name}' must not be selectively disclosable`);
      }
      if (out.has(name)) throw badDisclosure(`claim '${name}' is both visible and disclosed`);
      this.used.add(key);
      if (top) this.disclosedTop.add(name);
      out.set(name, this.value(val));
    }
    return out;
  }

  array(arr) {
    const out = [];
    for (const item of arr) {
      if (isObj(item) && has(item, '...')) {
        if (keysOf(item).length !== 1) throw malformed("an array digest object has only the '...' member");
        const key = this.claimDigest(item['...']);
        const content = this.byDigest.get(key);
        if (content === undefined) continue;
        if (content.length !== 2) throw badDisclosure('object disclosure used for an array element');
        this.used.add(key);
        out.push(this.value(content[1]));
      } else {
        out.push(this.value(item));
      }
    }
    return out;
  }
}

// A claim may be named "__proto__": define it, never assign it.
const put = (o, k, v) => Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });

// Maps (from the walk) and parsed objects to plain JSON values.
export function toPlain(v) {
  if (v instanceof Map) {
    const o = {};
    for (const [k, x] of v) put(o, k, toPlain(x));
    return o;
  }
  if (Array.isArray(v)) return v.map(toPlain);
  if (v instanceof JFloat) return v.value;
  if (v !== null && typeof v === 'object') {
    const o = {};
    for (const k of keysOf(v)) put(o, k, toPlain(v[k]));
    return o;
  }
  return v;
}

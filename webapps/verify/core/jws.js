// Compact JWS with ES256 on WebCrypto, mirroring verifier/wire/jws.py: one
// algorithm, and the key always supplied by the caller (never by a header).

import { b64uDecode, b64uEncode } from '../../lib/b64.js';
import { WireError, malformed } from '../../lib/errors.js';
import { get, loadsObject, has } from './json.js';
import { ES256 } from '../../lib/shared.js';

export { ES256 };
const ECDSA = { name: 'ECDSA', namedCurve: 'P-256' };
const VERIFY = { name: 'ECDSA', hash: 'SHA-256' };
const ascii = new TextEncoder();

export function b64d(text) {
  try {
    return b64uDecode(text);
  } catch {
    throw malformed('invalid base64url');
  }
}

export const b64e = b64uEncode;

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

export class CompactJWS {
  constructor(header, payload, signingInput, signature) {
    this.header = header;
    this.payload = payload;
    this.signingInput = signingInput;
    this.signature = signature;
  }

  expectTyp(typ) {
    if (get(this.header, 'typ') !== typ) throw new WireError('bad_typ', `typ must be '${typ}'`);
  }

  async verify(key) {
    const alg = get(this.header, 'alg');
    if (alg !== ES256) throw new WireError('unsupported_alg', `algorithm ${String(alg)} is not allowed`);
    // WebCrypto takes the same raw r||s as JWS; any other length is not ES256.
    if (this.signature.length !== 64) throw new WireError('bad_signature', 'ES256 signature must be 64 bytes');
    const ok = await crypto.subtle.verify(VERIFY, key, this.signature, ascii.encode(this.signingInput));
    if (!ok) throw new WireError('bad_signature', 'signature does not verify');
  }
}

export function parse(compact) {
  const parts = compact.split('.');
  if (parts.length !== 3) throw malformed('a compact JWS has three parts');
  const [h64, p64, s64] = parts;
  const header = loadsObject(b64d(h64));
  if (has(header, 'crit')) throw malformed('unsupported critical header');
  const payload = loadsObject(b64d(p64));
  return new CompactJWS(header, payload, `${h64}.${p64}`, b64d(s64));
}

// A P-256 public key from a JWK, refusing what jws.key_from_jwk refuses.  The
// key is imported from its raw point, so members WebCrypto's JWK import would
// judge ("alg", "use", "key_ops") cannot make the two verifiers disagree.
export async function keyFromJwk(jwk) {
  const { x, y } = checkJwk(jwk);
  return importPoint(x, y);
}

export function checkJwk(jwk) {
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk) || get(jwk, 'kty') !== 'EC' || get(jwk, 'crv') !== 'P-256') {
    throw malformed('expected an EC P-256 JWK');
  }
  if (has(jwk, 'd')) throw malformed('a public JWK must not carry a private key');
  const x = get(jwk, 'x');
  const y = get(jwk, 'y');
  if (typeof x !== 'string' || typeof y !== 'string') throw malformed('JWK coordinates missing');
  const xb = b64d(x);
  const yb = b64d(y);
  if (xb.length !== 32 || yb.length !== 32) throw malformed('JWK coordinates must be 32 bytes');
  return { x: xb, y: yb };
}

// `what` words the error for the caller (x509.js imports certificate keys here too).
export async function importPoint(x, y, what = 'JWK point is not on P-256') {
  const raw = new Uint8Array(65);
  raw[0] = 4;
  raw.set(x, 1);
  raw.set(y, 33);
  try {
    return await crypto.subtle.importKey('raw', raw, ECDSA, true, ['verify']);
  } catch {
    throw malformed(what);
  }
}

// RFC 7638 thumbprint of an EC key, from its coordinates re-encoded canonically.
export async function thumbprint(x, y) {
  const canonical = `{"crv":"P-256","kty":"EC","x":"${b64e(x)}","y":"${b64e(y)}"}`;
  return b64e(await sha256(ascii.encode(canonical)));
}

// The anchor as the shop gives it: a PEM public key (what `dualres-verify sync
// --anchor` reads) or a JWK.  Returns its coordinates.
export async function anchorFromText(text) {
  const t = text.trim();
  if (t.startsWith('{')) {
    return checkJwk(JSON.parse(t));
  }
  const m = /-----BEGIN PUBLIC KEY-----([\s\S]+?)-----END PUBLIC KEY-----/.exec(t);
  if (!m) throw malformed('not a PEM public key or a JWK');
  const der = Uint8Array.from(atob(m[1].replace(/\s+/g, '')), (c) => c.charCodeAt(0));
  let key;
  try {
    key = await crypto.subtle.importKey('spki', der, ECDSA, true, ['verify']);
  } catch {
    throw malformed('not a P-256 public key');
  }
  const raw = new Uint8Array(await crypto.subtle.exportKey('raw', key));
  return { x: raw.slice(1, 33), y: raw.slice(33, 65) };
}

// The PEM Python's jws.public_pem writes, so a bundle made here reads the same.
export async function publicPem(key) {
  const der = new Uint8Array(await crypto.subtle.exportKey('spki', key));
  let bin = '';
  for (const b of der) bin += String.fromCharCode(b);
  const b64 = btoa(bin).replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN PUBLIC KEY-----\n${b64}\n-----END PUBLIC KEY-----\n`;
}

// The holder's side of SD-JWT VC: read the issued credential, choose
// disclosures, sign a KB-JWT with the non-extractable key (wallet/holder.py).
import { b64uDecode, b64uEncode } from '../lib/b64.js';
import { COUNTER_AUDIENCE, DISCLOSABLE, ES256, KB_JWT_TYP, PROFILE_AUDIENCES, PROFILE_DISCLOSURES, SD_JWT_VC_TYP } from '../lib/shared.js';

// PROFILE_DISCLOSURES: which groups each verifier profile requires (wallet/holder.py,
// from schemas/profiles); GROUPS: every group, in the order the office screen lists them.
export { COUNTER_AUDIENCE, DISCLOSABLE as GROUPS, PROFILE_AUDIENCES, PROFILE_DISCLOSURES };
const NONCE_BYTES = 16;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export function newKeyPair() {
  // extractable=false: the private key can never leave WebCrypto.
  return crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
}

export async function publicJwk(publicKey) {
  const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', publicKey);
  return { kty, crv, x, y };
}

const b64json = (obj) => b64uEncode(utf8.encode(JSON.stringify(obj)));

// WebCrypto's ECDSA signature is already r||s, exactly what JWS ES256 wants.
export async function signJwt(header, payload, privateKey) {
  const input = `${b64json({ alg: ES256, ...header })}.${b64json(payload)}`;
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, utf8.encode(input));
  return `${input}.${b64uEncode(new Uint8Array(sig))}`;
}

export function decodeJwtPart(part) {
  return JSON.parse(fromUtf8.decode(b64uDecode(part)));
}

export function randomToken(bytes = NONCE_BYTES) {
  return b64uEncode(crypto.getRandomValues(new Uint8Array(bytes)));
}

export async function sha256b64u(text) {
  return b64uEncode(new Uint8Array(await crypto.subtle.digest('SHA-256', utf8.encode(text))));
}

// Split an issued credential ("<jwt>~<d1>~...~<dn>~") into its parts and read
// each disclosure, keeping the encoded text (digests are over that text).
export function parseIssued(compact) {
  const parts = compact.split('~');
  if (parts.length < 2 || parts[parts.length - 1] !== '') throw new Error('not an issued SD-JWT');
  const jwt = parts[0];
  const segs = jwt.split('.');
  if (segs.length !== 3) throw new Error('not a compact JWS');
  const header = decodeJwtPart(segs[0]);
  const payload = decodeJwtPart(segs[1]);
  if (header.typ !== SD_JWT_VC_TYP || header.alg !== ES256) throw new Error('not a dc+sd-jwt credential');
  const disclosures = parts.slice(1, -1).map((encoded) => {
    const content = decodeJwtPart(encoded);
    if (!Array.isArray(content) || content.length !== 3 || typeof content[1] !== 'string') {
      throw new Error('unexpected disclosure');
    }
    return { encoded, name: content[1], value: content[2] };
  });
  return { jwt, header, payload, disclosures };
}

// The compact SD-JWT+KB disclosing the named groups: the same bytes
// wallet/holder.py present() makes, so sd_hash covers "<jwt>~<chosen>~".
// The audience is the profile's own (an office QR is refused at a counter).
export async function present(compact, privateKey, { names = [], profile = 'counter', audience, nonce, now } = {}) {
  const parsed = parseIssued(compact);
  const wanted = new Set(names);
  const chosen = parsed.disclosures.filter((d) => wanted.has(d.name)).map((d) => d.encoded);
  const sdJwt = [parsed.jwt, ...chosen].join('~') + '~';
  const payload = {
    iat: now ?? Math.floor(Date.now() / 1000),
    aud: audience ?? PROFILE_AUDIENCES[profile],
    nonce: nonce ?? randomToken(),
    sd_hash: await sha256b64u(sdJwt),
  };
  return sdJwt + (await signJwt({ typ: KB_JWT_TYP }, payload, privateKey));
}

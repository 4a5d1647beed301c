// Base45 (RFC 9285): bytes as text in the QR alphanumeric alphabet, so a QR
// code holds it densely and a keyboard-wedge scanner types it unchanged.
import { malformed } from './errors.js';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:';
const DIGIT = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DIGIT[ALPHABET.charCodeAt(i)] = i;

export function encode(bytes) {
  const out = [];
  let i = 0;
  for (; i + 1 < bytes.length; i += 2) {
    let n = (bytes[i] << 8) | bytes[i + 1];
    const c = n % 45;
    n = (n - c) / 45;
    const d = n % 45;
    const e = (n - d) / 45;
    out.push(ALPHABET[c] + ALPHABET[d] + ALPHABET[e]);
  }
  if (i < bytes.length) {
    const c = bytes[i] % 45;
    out.push(ALPHABET[c] + ALPHABET[(bytes[i] - c) / 45]);
  }
  return out.join('');
}

export function decode(text) {
  if (text.length % 3 === 1) throw malformed('base45 length is invalid');
  const digit = (k) => {
    const c = text.charCodeAt(k);
    const v = c < 128 ? DIGIT[c] : -1;
    if (v < 0) throw malformed('character outside the base45 alphabet');
    return v;
  };
  const out = new Uint8Array(Math.floor(text.length / 3) * 2 + (text.length % 3 ? 1 : 0));
  let o = 0;
  let i = 0;
  for (; i + 2 < text.length; i += 3) {
    const n = digit(i) + 45 * digit(i + 1) + 2025 * digit(i + 2);
    if (n > 0xffff) throw malformed('base45 triple out of range');
    out[o++] = n >> 8;
    out[o++] = n & 255;
  }
  if (i < text.length) {
    const n = digit(i) + 45 * digit(i + 1);
    if (n > 0xff) throw malformed('base45 pair out of range');
    out[o++] = n;
  }
  return out;
}

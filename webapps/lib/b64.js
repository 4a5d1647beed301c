// Strict base64url without padding (RFC 7515 §2), as verifier/wire/_b64.py:
// padding, foreign characters and non-canonical trailing bits are refused,
// so every string is the only spelling of its bytes.  The DR1 transport
// depends on that to give back the exact text a KB-JWT's sd_hash covers.
import { malformed } from './errors.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const VALUE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) VALUE[ALPHABET.charCodeAt(i)] = i;
// Bits of the last character that carry no data, by length mod 4.
const SPARE = [0, -1, 0x0f, 0x03];

export function b64uEncode(bytes) {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63] + ALPHABET[n & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63];
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63];
  }
  return out;
}

export function b64uDecode(text) {
  if (typeof text !== 'string') throw malformed('base64url input is not text');
  const rest = text.length % 4;
  if (rest === 1) throw malformed('invalid base64url length');
  const values = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? VALUE[c] : -1;
    if (v < 0) throw malformed('invalid base64url');
    values[i] = v;
  }
  if (rest && values[text.length - 1] & SPARE[rest]) throw malformed('non-canonical base64url');
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let o = 0;
  let i = 0;
  for (; i + 3 < text.length; i += 4) {
    const n = (values[i] << 18) | (values[i + 1] << 12) | (values[i + 2] << 6) | values[i + 3];
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 255;
    out[o++] = n & 255;
  }
  if (rest === 2) {
    out[o++] = ((values[i] << 2) | (values[i + 1] >> 4)) & 255;
  } else if (rest === 3) {
    const n = (values[i] << 10) | (values[i + 1] << 4) | (values[i + 2] >> 2);
    out[o++] = n >> 8;
    out[o++] = n & 255;
  }
  return out;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export const textBytes = (s) => utf8.encode(s);

export function bytesText(bytes) {
  try {
    return fromUtf8.decode(bytes);
  } catch {
    throw malformed('not UTF-8');
  }
}

export const b64uEncodeText = (s) => b64uEncode(utf8.encode(s));
export const b64uDecodeText = (s) => bytesText(b64uDecode(s));

// The compact QR transport "DR2:" (and "DR1:", still decoded), in the browser:
// the same format, caps and errors as verifier/wire/transport.py (read its
// docstring for the layout and for what is left out and put back):
//
//     DR2: + Base45( varint(len(Z)) || Z || blobs )
//     Z = raw DEFLATE( skeleton ), preset dictionary of version 2
//
// decode() gives back the exact compact SD-JWT, byte for byte, because the
// KB-JWT's sd_hash is over that text.  Both directions are synchronous.
import { Inflate, deflateRaw } from './vendor/pako/pako.mjs';
import { b64uDecode, b64uEncode } from './b64.js';
import { decode as b45decode, encode as b45encode } from './base45.js';
import { WireError, malformed, tooLarge } from './errors.js';
import {
  TRANSPORT_DICTIONARY_V1,
  TRANSPORT_DICTIONARY_V2,
  TRANSPORT_MAX_DISCLOSURES as MAX_DISCLOSURES,
  TRANSPORT_MAX_FRAME as MAX_FRAME,
  TRANSPORT_MAX_TEXT as MAX_TEXT,
  TRANSPORT_PREFIX as PREFIX,
} from './shared.js';

export { MAX_DISCLOSURES, MAX_FRAME, MAX_TEXT, PREFIX };
const VERSION = /^DR([0-9]{1,3}):/;
const MARK = 0x01;

// Fixed forever for "DR1:" (verifier/wire/transport.py DICTIONARY_V1); all
// ASCII, so each character is one byte (tests/test_webapps_lib.py compares them).
export const DICTIONARY_V1 = Uint8Array.from(TRANSPORT_DICTIONARY_V1, (c) => c.charCodeAt(0));
export const DICTIONARY_V2 = Uint8Array.from(TRANSPORT_DICTIONARY_V2, (c) => c.charCodeAt(0));
const DICTIONARIES = new Map([
  ['DR1:', DICTIONARY_V1],
  ['DR2:', DICTIONARY_V2],
]);
const HAS_KB = 1;
const LIFTED = 2;
const NO_X5C = 4;
const NO_INTEGRITY = 8;
const VCT_MEMBER = /"vct":"([^"\\]*)"/;
const INTEGRITY_MEMBER = /^,"vct#integrity":"(sha256-[A-Za-z0-9+/]{43}=)"/;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

function parseObject(bytes) {
  let value;
  try {
    value = JSON.parse(fromUtf8.decode(bytes));
  } catch {
    throw malformed('issuer JWT is not JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw malformed('issuer JWT is not a JSON object');
  }
  return value;
}

function digestOf(integrity) {
  try {
    const bin = atob(integrity.replace(/^sha256-/, ''));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return new Uint8Array(0);
  }
}

const concat = (...parts) => {
  const b = new Builder();
  for (const p of parts) b.push(p);
  return b.bytes();
};

// `,"x5c":[...]}` when the header ends with exactly that, as the issuer writes it.
function x5cSuffix(header) {
  let parsed;
  try {
    parsed = parseObject(header);
  } catch {
    return null;
  }
  const chain = parsed.x5c;
  if (!Array.isArray(chain) || !chain.every((c) => typeof c === 'string')) return null;
  const suffix = utf8.encode(`,"x5c":${JSON.stringify(chain)}}`);
  if (header.length < suffix.length) return null;
  const tail = header.subarray(header.length - suffix.length);
  return tail.every((b, i) => b === suffix[i]) ? suffix.length : null;
}

// The payload with "vct":"" for "vct":"V","vct#integrity":"I", and the first
// two bytes of I's digest.
function stripType(payload) {
  const text = latin1(payload);
  const vct = VCT_MEMBER.exec(text);
  if (vct === null || vct[1] === '') return null;
  const end = vct.index + vct[0].length;
  const m = INTEGRITY_MEMBER.exec(text.slice(end));
  if (m === null) return null;
  const selector = digestOf(m[1]).subarray(0, 2);
  if (selector.length !== 2) return null;
  const rest = payload.subarray(end + m[0].length);
  return [concat(payload.subarray(0, vct.index), utf8.encode('"vct":""'), rest), selector];
}

// The JSON to put back for the first known (vct, integrity) pair the selector picks.
function knownType(restorer, selector) {
  for (const [name, values] of Object.entries(restorer.types() || {})) {
    for (const i of values) {
      const d = digestOf(i);
      if (d.length >= 2 && d[0] === selector[0] && d[1] === selector[1]) {
        return utf8.encode(`"vct":${JSON.stringify(name)},"vct#integrity":${JSON.stringify(i)}`);
      }
    }
  }
  return null;
}

function restore(header, payload, flags, selector, restorer) {
  if (!restorer) {
    throw new WireError('unknown_key', "this transport string needs the verifier's trust data to decode");
  }
  if (flags & NO_INTEGRITY) {
    const vct = VCT_MEMBER.exec(latin1(payload));
    if (vct === null || vct[1] !== '') throw malformed('the type was left out but the vct is not empty');
    const insert = knownType(restorer, selector);
    if (insert === null) {
      throw new WireError('wrong_vct', 'the type and its metadata\'s integrity are not in the trust list');
    }
    payload = concat(payload.subarray(0, vct.index), insert, payload.subarray(vct.index + vct[0].length));
  }
  if (flags & NO_X5C) {
    const h = parseObject(header);
    const p = parseObject(payload);
    if ('x5c' in h || header[header.length - 1] !== 0x7d) throw malformed('x5c was left out but the header has one');
    const chain = restorer.x5c(h, p);
    if (!chain || chain.length === 0) throw new WireError('unknown_key', "the issuer's certificate chain is not in the trust list");
    header = concat(header.subarray(0, header.length - 1), utf8.encode(`,"x5c":${JSON.stringify(chain)}}`));
  }
  return [header, payload];
}

function varint(n) {
  const out = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>>= 7;
    if (n) out.push(byte | 0x80);
    else {
      out.push(byte);
      return out;
    }
  }
}

class Reader {
  constructor(data) {
    this.data = data;
    this.pos = 0;
  }

  // Two bytes reach 16,383: more than any frame may hold.
  varint() {
    const { data, pos } = this;
    if (pos + 1 > data.length) throw malformed('frame is truncated');
    const first = data[pos];
    if (first < 0x80) {
      this.pos = pos + 1;
      return first;
    }
    if (pos + 2 > data.length) throw malformed('frame is truncated');
    const second = data[pos + 1];
    if (second >= 0x80) throw malformed('varint too long');
    this.pos = pos + 2;
    return (first & 0x7f) | (second << 7);
  }

  take(n) {
    const end = this.pos + n;
    if (end > this.data.length) throw malformed('frame is truncated');
    const out = this.data.subarray(this.pos, end);
    this.pos = end;
    return out;
  }
}

class Builder {
  constructor() {
    this.parts = [];
    this.length = 0;
  }

  push(bytes) {
    const b = bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes);
    this.parts.push(b);
    this.length += b.length;
  }

  bytes() {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

function splitJws(text) {
  const parts = text.split('.');
  if (parts.length !== 3) throw new Error('not a compact JWS');
  return parts.map(b64uDecode);
}

// Bytes as a string of code units 0-255, so a RegExp can scan them.
const latin1 = (bytes) => {
  let s = '';
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096));
  }
  return s;
};

function lift(segment, blobs) {
  const out = new Builder();
  const text = latin1(segment);
  const pattern = /"([A-Za-z0-9_-]{20,})"/g;
  let last = 0;
  for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
    let raw;
    try {
      raw = b64uDecode(m[1]);
    } catch {
      continue; // not canonical base64url: stays text
    }
    out.push(segment.subarray(last, m.index));
    out.push([MARK, ...varint(raw.length)]);
    blobs.push(raw);
    last = m.index + m[0].length;
  }
  out.push(segment.subarray(last));
  return out.bytes();
}

/** Encode a compact SD-JWT (with or without KB-JWT) for a QR code. */
export function encode(compact) {
  const parts = compact.split('~');
  if (parts.length < 2) throw new Error('not a compact SD-JWT');
  const issuerJwt = parts[0];
  const kb = parts[parts.length - 1];
  const disclosures = parts.slice(1, -1);
  if (disclosures.length > MAX_DISCLOSURES) throw new Error('too many disclosures');
  const jwsParts = splitJws(issuerJwt);
  let [ih, ip] = jwsParts;
  const isig = jwsParts[2];
  let omitted = 0;
  let selector = [];
  const suffix = x5cSuffix(ih);
  if (suffix !== null) {
    ih = concat(ih.subarray(0, ih.length - suffix), [0x7d]);
    omitted |= NO_X5C;
  }
  const stripped = stripType(ip);
  if (stripped !== null) {
    [ip, selector] = stripped;
    omitted |= NO_INTEGRITY;
  }
  const segments = [ih, ip];
  const sigs = [isig];
  if (kb) {
    const [kh, kp, ksig] = splitJws(kb);
    segments.push(kh, kp);
    sigs.push(ksig);
  }
  for (const d of disclosures) segments.push(b64uDecode(d));
  // A raw 0x01 cannot occur in JSON text, but these bytes need not be JSON.
  const doLift = !segments.some((s) => s.includes(MARK));
  const blobs = new Builder();
  const skeleton = new Builder();
  skeleton.push([(kb ? HAS_KB : 0) | (doLift ? LIFTED : 0) | omitted, ...varint(disclosures.length), ...selector]);
  for (const seg of segments) {
    const body = doLift ? lift(seg, blobs) : seg;
    skeleton.push(varint(body.length));
    skeleton.push(body);
  }
  for (const sig of sigs) {
    skeleton.push(varint(sig.length));
    blobs.push(sig);
  }
  if (skeleton.length > MAX_FRAME) throw new Error('presentation too large for the transport');
  const packed = deflateRaw(skeleton.bytes(), {
    level: 9,
    memLevel: 9,
    dictionary: DICTIONARY_V2,
  });
  const frame = new Builder();
  frame.push(varint(packed.length));
  frame.push(packed);
  frame.push(blobs.bytes());
  const text = PREFIX + b45encode(frame.bytes());
  if (text.length > MAX_TEXT) throw new Error('presentation too large for a QR code');
  return text;
}

export const isTransport = (text) => VERSION.test(text);

function inflate(packed, dictionary) {
  const inflater = new Inflate({ raw: true, dictionary, chunkSize: 1024 });
  const chunks = new Builder();
  let over = false;
  inflater.onData = (chunk) => {
    if (chunks.length + chunk.length > MAX_FRAME) {
      over = true;
      throw tooLarge('transport payload inflates beyond the limit');
    }
    chunks.push(chunk.slice());
  };
  try {
    inflater.push(packed, true);
  } catch (exc) {
    if (over) throw exc;
    throw malformed('transport payload is not DEFLATE data');
  }
  if (inflater.err !== 0) {
    // -5 (Z_BUF_ERROR) at the end of input: the stream stopped short.
    throw malformed(
      inflater.err === -5
        ? 'transport payload is truncated or has trailing data'
        : 'transport payload is not DEFLATE data',
    );
  }
  if (inflater.strm.avail_in > 0) {
    throw malformed('transport payload is truncated or has trailing data');
  }
  return chunks.bytes();
}

function unlift(body, blobs) {
  if (!body.includes(MARK)) return body;
  const out = new Builder();
  const r = new Reader(body);
  while (r.pos < body.length) {
    const j = body.indexOf(MARK, r.pos);
    if (j < 0) {
      out.push(body.subarray(r.pos));
      break;
    }
    out.push(body.subarray(r.pos, j));
    r.pos = j + 1;
    out.push([0x22]);
    out.push(new TextEncoder().encode(b64uEncode(blobs.take(r.varint()))));
    out.push([0x22]);
  }
  return out.bytes();
}

/**
 * Give back the exact compact SD-JWT a transport string carries.  `restorer`
 * ({x5c(header, payload), types()}, the verifier's trust list) puts
 * back what the encoder left out.  Throws WireError with code "malformed",
 * "too_large", "unsupported_version", "unknown_key" or "wrong_vct".
 */
export function decode(text, restorer = null) {
  if (typeof text !== 'string') throw malformed('not a dualres transport string');
  const m = VERSION.exec(text);
  if (m === null) throw malformed('not a dualres transport string');
  const dictionary = DICTIONARIES.get(m[0]);
  if (dictionary === undefined) {
    throw new WireError('unsupported_version', `transport version ${m[1]} is not supported`);
  }
  if (text.length > MAX_TEXT) throw tooLarge('transport string too long');
  const data = new Reader(b45decode(text.slice(m[0].length)));
  const packed = data.take(data.varint());
  const blobs = new Reader(data.data.subarray(data.pos));
  const skeleton = inflate(packed, dictionary);
  const r = new Reader(skeleton);
  const flags = r.take(1)[0];
  if (flags & ~(HAS_KB | LIFTED | NO_X5C | NO_INTEGRITY)) throw malformed('unknown transport flags');
  const hasKb = Boolean(flags & HAS_KB);
  const lifted = Boolean(flags & LIFTED);
  const n = r.varint();
  if (n > MAX_DISCLOSURES) throw tooLarge('too many disclosures');
  const selector = flags & NO_INTEGRITY ? r.take(2) : null;
  const raw = [];
  for (let i = 0; i < (hasKb ? 4 : 2) + n; i++) {
    const body = r.take(r.varint());
    raw.push(lifted ? unlift(body, blobs) : body);
  }
  const sigs = [];
  for (let i = 0; i < (hasKb ? 2 : 1); i++) sigs.push(b64uEncode(blobs.take(r.varint())));
  if (r.pos !== skeleton.length || blobs.pos !== blobs.data.length) {
    throw malformed('trailing bytes after the frame');
  }
  if (flags & (NO_X5C | NO_INTEGRITY)) [raw[0], raw[1]] = restore(raw[0], raw[1], flags, selector, restorer);
  const segs = raw.map((seg) => b64uEncode(seg));
  const issuer = `${segs[0]}.${segs[1]}.${sigs[0]}`;
  const kb = hasKb ? `${segs[2]}.${segs[3]}.${sigs[1]}` : '';
  const disclosures = segs.slice(hasKb ? 4 : 2);
  return [issuer, ...disclosures].join('~') + '~' + kb;
}

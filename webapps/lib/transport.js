// The compact QR transport "DR1:", in the browser: the same format, caps and
// errors as verifier/wire/transport.py (read its docstring for the layout):
//
//     DR1: + Base45( varint(len(Z)) || Z || blobs )
//     Z = raw DEFLATE( skeleton ), preset dictionary of version 1
//
// decode() gives back the exact compact SD-JWT, byte for byte, because the
// KB-JWT's sd_hash is over that text.  Both directions are synchronous.
import { Inflate, deflateRaw } from './vendor/pako/pako.mjs';
import { b64uDecode, b64uEncode } from './b64.js';
import { decode as b45decode, encode as b45encode } from './base45.js';
import { WireError, malformed, tooLarge } from './errors.js';
import {
  TRANSPORT_DICTIONARY_V1,
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
  const [ih, ip, isig] = splitJws(issuerJwt);
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
  skeleton.push([(kb ? 1 : 0) | (doLift ? 2 : 0), ...varint(disclosures.length)]);
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
    dictionary: DICTIONARY_V1,
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

function inflate(packed) {
  const inflater = new Inflate({ raw: true, dictionary: DICTIONARY_V1, chunkSize: 1024 });
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
 * Give back the exact compact SD-JWT a transport string carries.
 * Throws WireError with code "malformed", "too_large" or "unsupported_version".
 */
export function decode(text) {
  if (typeof text !== 'string') throw malformed('not a dualres transport string');
  const m = VERSION.exec(text);
  if (m === null) throw malformed('not a dualres transport string');
  if (m[0] !== PREFIX) {
    throw new WireError('unsupported_version', `transport version ${m[1]} is not supported`);
  }
  if (text.length > MAX_TEXT) throw tooLarge('transport string too long');
  const data = new Reader(b45decode(text.slice(PREFIX.length)));
  const packed = data.take(data.varint());
  const blobs = new Reader(data.data.subarray(data.pos));
  const skeleton = inflate(packed);
  const r = new Reader(skeleton);
  const flags = r.take(1)[0];
  if (flags & ~3) throw malformed('unknown transport flags');
  const hasKb = Boolean(flags & 1);
  const lifted = Boolean(flags & 2);
  const n = r.varint();
  if (n > MAX_DISCLOSURES) throw tooLarge('too many disclosures');
  const segs = [];
  for (let i = 0; i < (hasKb ? 4 : 2) + n; i++) {
    const body = r.take(r.varint());
    segs.push(b64uEncode(lifted ? unlift(body, blobs) : body));
  }
  const sigs = [];
  for (let i = 0; i < (hasKb ? 2 : 1); i++) sigs.push(b64uEncode(blobs.take(r.varint())));
  if (r.pos !== skeleton.length || blobs.pos !== blobs.data.length) {
    throw malformed('trailing bytes after the frame');
  }
  const issuer = `${segs[0]}.${segs[1]}.${sigs[0]}`;
  const kb = hasKb ? `${segs[2]}.${segs[3]}.${sigs[1]}` : '';
  const disclosures = segs.slice(hasKb ? 4 : 2);
  return [issuer, ...disclosures].join('~') + '~' + kb;
}

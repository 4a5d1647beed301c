// IETF Token Status List, mirroring verifier/wire/statuslist.py.

import { ZStream, zlibInflate, zlibInflateInit2, zlibInflateEnd } from '../../lib/vendor/pako/pako.mjs';
import { WireError, malformed } from './errors.js';
import { b64d, parse as parseJws } from './jws.js';
import { get, isInt, isObj } from './json.js';

export const STATUS_LIST_TYP = 'statuslist+jwt';
export const VALID = 0;
export const REVOKED = 1;
export const SUSPENDED = 2;
const ALLOWED_BITS = [1, 2, 4, 8];
export const MAX_LIST_BYTES = 8 * 1024 * 1024;

export class StatusList {
  constructor(bits, data) {
    this.bits = bits;
    this.data = data;
    this.mask = (1 << bits) - 1;
  }

  get length() {
    return Math.floor((this.data.length * 8) / this.bits);
  }

  get(index) {
    if (!(index >= 0 && index < this.length)) return null; // Python: IndexError
    const pos = index * this.bits;
    return (this.data[Math.floor(pos / 8)] >> (pos & 7)) & this.mask;
  }
}

// zlib (RFC 1950) with an output cap, judged as CPython's decompressobj with a
// max_length judges it: over the cap with input left is too_large, a stream
// that does not end is malformed, bytes after the end are ignored.
export function inflateCapped(bytes, maxBytes) {
  const strm = new ZStream();
  if (zlibInflateInit2(strm, 15) !== 0) throw malformed('zlib init failed');
  strm.input = bytes;
  strm.next_in = 0;
  strm.avail_in = bytes.length;
  strm.output = new Uint8Array(maxBytes);
  strm.next_out = 0;
  strm.avail_out = maxBytes;
  let status;
  try {
    status = zlibInflate(strm, 2);
  } catch {
    throw malformed('status list is not zlib data');
  }
  const produced = strm.next_out;
  const leftIn = strm.avail_in;
  zlibInflateEnd(strm);
  if (status !== 0 && status !== 1 && status !== -5) throw malformed('status list is not zlib data');
  if (status !== 1) {
    if (strm.avail_out === 0 && leftIn > 0) throw new WireError('too_large', 'status list inflates beyond the limit');
    throw malformed('status list is truncated');
  }
  return strm.output.subarray(0, produced);
}

export function statusListFromJson(obj, maxBytes = MAX_LIST_BYTES) {
  if (!isObj(obj)) throw malformed('status_list must be an object');
  const bits = get(obj, 'bits');
  const lst = get(obj, 'lst');
  if (!isInt(bits) || !ALLOWED_BITS.includes(bits) || typeof lst !== 'string') {
    throw malformed('status_list needs bits (1, 2, 4 or 8) and lst');
  }
  const data = inflateCapped(b64d(lst), maxBytes);
  if (data.length === 0) throw malformed('status list is empty');
  return new StatusList(bits, data);
}

export function parseToken(text) {
  const token = parseJws(text);
  token.expectTyp(STATUS_LIST_TYP);
  const p = token.payload;
  const sub = get(p, 'sub');
  const iat = get(p, 'iat');
  const exp = get(p, 'exp');
  const ttl = get(p, 'ttl');
  if (typeof sub !== 'string' || !isInt(iat)) throw malformed('status list token needs sub and iat');
  if ((exp != null && !isInt(exp)) || (ttl != null && !isInt(ttl))) throw malformed('exp and ttl are integers');
  const kid = get(token.header, 'kid');
  const list = statusListFromJson(get(p, 'status_list'));
  return [token, { sub, iat, exp: exp ?? null, ttl: ttl ?? null, kid: typeof kid === 'string' ? kid : null, statusList: list }];
}

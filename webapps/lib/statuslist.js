// A Token Status List's bits (IETF Token Status List; verifier/wire/statuslist.py):
// the wallet reads its own entry with it, the verifier app every scan's.
import { ZStream, zlibInflate, zlibInflateInit2, zlibInflateEnd } from './vendor/pako/pako.mjs';
import { WireError, malformed } from './errors.js';
import { MAX_LIST_BYTES } from './shared.js';

export { MAX_LIST_BYTES };

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

// "Status as of the last check": read the credential's entry in its issuer's
// Token Status List.  Only shown to the holder: the trust decision is the
// verifier's, against its own signed bundle, so no signature is checked here.
import { b64uDecode } from '../lib/b64.js';
import { MAX_LIST_BYTES, StatusList, inflateCapped } from '../lib/statuslist.js';
import { STATUS_BITS, STATUS_LIST_TYP, STATUS_REVOKED, STATUS_SUSPENDED, STATUS_VALID } from '../lib/shared.js';
import { decodeJwtPart } from './sdjwt.js';

const MAX_TOKEN = 4 * 1024 * 1024;
export const STATUS_NAMES = { [STATUS_VALID]: 'valid', [STATUS_REVOKED]: 'revoked', [STATUS_SUSPENDED]: 'suspended' };

export function statusAt(token, uri, idx) {
  const segs = token.trim().split('.');
  if (segs.length !== 3) throw new Error('status list is not a JWT');
  const header = decodeJwtPart(segs[0]);
  const payload = decodeJwtPart(segs[1]);
  if (header.typ !== STATUS_LIST_TYP) throw new Error('not a statuslist+jwt');
  if (payload.sub !== uri) throw new Error('status list of another URI');
  const { bits, lst } = payload.status_list || {};
  if (!STATUS_BITS.includes(bits) || typeof lst !== 'string') throw new Error('bad status_list');
  const value = new StatusList(bits, inflateCapped(b64uDecode(lst), MAX_LIST_BYTES)).get(idx);
  if (value === null || !Number.isInteger(idx)) throw new Error('index outside the list');
  return value;
}

// Returns {value, name, checked_at, list_exp} or throws when offline / broken.
export async function checkStatus(payload) {
  const ref = payload.status && payload.status.status_list;
  if (!ref || typeof ref.uri !== 'string' || !Number.isInteger(ref.idx)) throw new Error('no status reference');
  const resp = await fetch(ref.uri, { cache: 'no-store', credentials: 'omit' });
  if (!resp.ok) throw new Error(`status list: HTTP ${resp.status}`);
  const text = await resp.text();
  if (text.length > MAX_TOKEN) throw new Error('status list too large');
  const value = statusAt(text, ref.uri, ref.idx);
  return { value, name: STATUS_NAMES[value] || 'unknown', checked_at: Math.floor(Date.now() / 1000) };
}

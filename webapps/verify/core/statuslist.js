// IETF Token Status List, mirroring verifier/wire/statuslist.py.

import { malformed } from '../../lib/errors.js';
import { MAX_LIST_BYTES, StatusList, inflateCapped } from '../../lib/statuslist.js';
import { b64d, parse as parseJws } from './jws.js';
import { get, isInt, isObj } from './json.js';
import {
  STATUS_BITS as ALLOWED_BITS,
  STATUS_LIST_TYP,
  STATUS_REVOKED as REVOKED,
  STATUS_SUSPENDED as SUSPENDED,
  STATUS_VALID as VALID,
} from '../../lib/shared.js';

export { REVOKED, STATUS_LIST_TYP, SUSPENDED, VALID };
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

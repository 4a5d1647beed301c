// The one verification call, in the browser.  A check-by-check mirror of
// verifier/_verify.py, in the same order: the shared vectors
// (tests/vectors/*.json) hold both verifiers to the same reason code.

import { decode as transportDecode } from '../../lib/transport.js';
import { WireError, malformed } from '../../lib/errors.js';
import { ES256, keyFromJwk, parse as parseJws } from './jws.js';
import { get, isInt, isObj, decodeUtf8 } from './json.js';
import { SD_JWT_VC_TYP, parseCompact, processDisclosures, verifyKbJwt, toPlain } from './sdjwt.js';
import { REVOKED, SUSPENDED, VALID } from './statuslist.js';
import { keyAllowsX5c, keyValidAt } from './trustlist.js';
import * as shared from '../../lib/shared.js';
import { serves } from './policy.js';

export const { MAX_PAYLOAD, MIN_NONCE, MAX_NONCE, VCT, VCT_PATH, COUNTER_AUDIENCE, TIERS } = shared;

// What the QR transport left out, from the trust list (lib/transport.js).
const restorer = (tl) => ({
  x5c(header, payload) {
    const issuer = typeof payload.iss === 'string' ? tl.issuers.get(payload.iss) : undefined;
    const key = issuer && typeof header.kid === 'string' ? issuer.keys.get(header.kid) : undefined;
    return key && key.x5c.length ? key.x5c : null;
  },
  types: () => Object.fromEntries(tl.types),
});
const RESERVED = new Set(shared.RESERVED);
const VISIBLE = new Set(shared.VISIBLE);
const VERSION = /^DR([0-9]{1,3}):/;
// Only the ASCII whitespace docs/format.md names; String.trim() would also take
// U+00A0, U+3000, U+FEFF and the rest of Unicode's spaces.
const SPACE = new Set(shared.PAYLOAD_WHITESPACE);

export function stripPayload(s) {
  let a = 0;
  let b = s.length;
  while (a < b && SPACE.has(s[a])) a++;
  while (b > a && SPACE.has(s[b - 1])) b--;
  return s.slice(a, b);
}

const codePoints = (s) => {
  let n = 0;
  for (const _ of s) n++; // eslint-disable-line no-unused-vars
  return n;
};

class Reject extends Error {
  constructor(reason, detail) {
    super(detail);
    this.reason = reason;
    this.detail = detail;
  }
}

// The in-memory replay memory (verifier/replay.py MemoryReplayStore).
export class MemoryReplayStore {
  constructor() {
    this.until = new Map();
  }

  async remember(nonce, { now, until }) {
    if (this.until.size > 4096) {
      for (const [n, u] of this.until) if (u < now) this.until.delete(n);
    }
    const seen = this.until.get(nonce);
    if (seen !== undefined && seen >= now) return false;
    this.until.set(nonce, until);
    return true;
  }
}

function intClaim(payload, name, required = true) {
  const v = get(payload, name);
  if (v == null && !required) return null;
  if (!isInt(v)) throw new Reject('invalid_claims', `${name} must be an integer`);
  return v;
}

function statusRef(body) {
  const status = get(body, 'status');
  const ref = isObj(status) ? get(status, 'status_list') : undefined;
  if (!isObj(ref)) throw new Reject('invalid_claims', 'status reference missing');
  const idx = get(ref, 'idx');
  const uri = get(ref, 'uri');
  if (!isInt(idx) || idx < 0 || typeof uri !== 'string') throw new Reject('invalid_claims', 'status reference malformed');
  return [idx, uri];
}

class Context {
  constructor(profile, now) {
    this.profile = profile;
    this.now = now;
    this.issuer = null;
    this.tier = null;
    this.validFrom = null;
    this.validUntil = null;
    this.holderBound = false;
    this.trustListAge = null;
    this.statusAge = null;
    this.warnings = [];
  }

  result(reason, detail, claims = null) {
    return {
      ok: reason === 'ok',
      reason,
      detail,
      profile: this.profile.name,
      issuer: this.issuer,
      tier: this.tier,
      valid_from: this.validFrom,
      valid_until: this.validUntil,
      claims: claims !== null && reason === 'ok' ? claims : {},
      holder_bound: this.holderBound,
      trust_list_age: this.trustListAge,
      status_age: this.statusAge,
      warnings: [...this.warnings],
    };
  }

  fresh(exp, grace, what) {
    if (exp === null || exp === undefined || this.now < exp) return;
    if (this.now < exp + grace) {
      this.warnings.push(`stale_${what}`);
      return;
    }
    throw new Reject('stale_trust_data', `the ${what.replace('_', ' ')} expired`);
  }

  async run(payload, bundle, replay, challenge) {
    const prof = this.profile;
    const now = this.now;
    const skew = prof.clock_skew;
    if (payload.length > MAX_PAYLOAD && (typeof payload !== 'string' || codePoints(payload) > MAX_PAYLOAD)) {
      throw new Reject('too_large', 'payload longer than any QR code holds');
    }
    if (typeof payload !== 'string') {
      try {
        payload = decodeUtf8(payload);
      } catch {
        throw new Reject('malformed', 'payload is not UTF-8');
      }
    }
    const text = stripPayload(payload);
    let compact = text;
    if (VERSION.test(text)) {
      try {
        compact = transportDecode(text, restorer(bundle.trustList));
      } catch (e) {
        throw e instanceof WireError ? e : new WireError('malformed', e.message);
      }
    }

    // Trust data first: nothing is decided on an expired trust list.
    const tl = bundle.trustList;
    this.trustListAge = now - tl.iat;
    this.fresh(tl.exp, prof.trust_list_grace, 'trust_list');

    const sd = parseCompact(compact);
    const token = parseJws(sd.issuerJwt);
    token.expectTyp(SD_JWT_VC_TYP);
    if (get(token.header, 'alg') !== ES256) throw new Reject('unsupported_alg', `algorithm ${String(get(token.header, 'alg'))}`);
    const body = token.payload;
    const iss = get(body, 'iss');
    const issuer = typeof iss === 'string' ? tl.issuers.get(iss) : undefined;
    if (issuer === undefined) throw new Reject('unknown_issuer', 'issuer is not in the trust list');
    this.issuer = { iss: issuer.iss, lg_code: issuer.lgCode, name: issuer.name, prefecture: issuer.prefecture, name_en: issuer.nameEn };
    // The key comes from the trust list by kid, and from nowhere else.
    const kid = get(token.header, 'kid');
    const key = typeof kid === 'string' ? issuer.keys.get(kid) : undefined;
    if (key === undefined) throw new Reject('unknown_key', 'kid is not a key of this issuer');
    // x5c, when present, must be the chain the trust list certifies for this key.
    if (!keyAllowsX5c(key, get(token.header, 'x5c'))) {
      throw new Reject('unknown_key', 'x5c is not the certificate chain of this key');
    }
    await token.verify(key.key);
    if (key.certNotBefore !== null && key.certNotAfter !== null && !(key.certNotBefore - skew <= now && now < key.certNotAfter)) {
      throw new Reject('key_not_valid', "the key's certificate is not valid now");
    }

    // The https vct of this deployment, or the URN of credentials issued before it.
    const vct = get(body, 'vct');
    if (vct !== VCT && vct !== tl.iss.replace(/\/+$/, '') + VCT_PATH) {
      throw new Reject('wrong_vct', 'vct is not the dual-residence type');
    }
    const iat = intClaim(body, 'iat');
    const exp = intClaim(body, 'exp');
    const nbf = intClaim(body, 'nbf', false);
    if (!keyValidAt(key, iat)) {
      throw new Reject('key_not_valid', 'key was not valid when the credential was issued');
    }
    const tier = get(body, 'tier');
    if (!TIERS.includes(tier)) throw new Reject('invalid_claims', 'tier is missing or unknown');
    this.tier = tier;
    this.validFrom = nbf !== null ? nbf : iat;
    this.validUntil = exp;
    if (this.validFrom > now + skew || iat > now + skew) throw new Reject('not_yet_valid', 'credential is not valid yet');
    if (now >= exp + skew) throw new Reject('expired', 'credential has expired');

    const claims = await processDisclosures(body, sd.disclosures, RESERVED);

    const cnf = get(body, 'cnf');
    let nonce = null;
    let kbIat = 0;
    if (cnf === undefined && sd.kbJwt === null) {
      this.paper();
    } else {
      let holderKey;
      try {
        holderKey = await keyFromJwk(isObj(cnf) ? get(cnf, 'jwk') : undefined);
      } catch (e) {
        if (e instanceof WireError && e.code === 'malformed') throw new Reject('invalid_claims', `cnf: ${e.description}`);
        throw e;
      }
      if (sd.kbJwt === null) {
        if (prof.holder_binding === 'required') throw new Reject('holder_binding_missing', 'no key-binding JWT');
      } else {
        [nonce, kbIat] = await this.holderBinding(sd, holderKey, challenge);
      }
    }

    const [statusIdx, statusUri] = statusRef(body);
    const entry = bundle.status.get(statusUri);
    if (entry === undefined || entry.issuer !== issuer.iss) throw new Reject('status_unavailable', 'status list not in the bundle');
    const slt = entry.token;
    this.statusAge = now - slt.iat;
    const status = slt.statusList.get(statusIdx);
    if (status === null) throw new Reject('status_unavailable', 'status index outside the list');
    if (status === REVOKED) throw new Reject('revoked', 'revoked by the issuer');
    this.fresh(slt.exp, prof.status_list_grace, 'status_list');
    if (status === SUSPENDED) throw new Reject('suspended', 'suspended by the issuer');
    if (status !== VALID) throw new Reject('status_unavailable', `unknown status value ${status}`);

    if (!prof.accepted_tiers.includes(tier)) throw new Reject('tier_not_accepted', `tier '${tier}' not accepted`);
    // Whom this verifier serves: a step of its own, after every check of
    // validity, so "valid, but not for us" is never mistaken for a forgery.
    if (!serves(prof, issuer.lgCode)) throw new Reject('outside_policy', `${issuer.lgCode} is outside this policy`);
    const missing = prof.required_disclosures.filter((n) => !claims.has(n)).sort();
    if (missing.length) throw new Reject('missing_disclosure', `not disclosed: ${missing.join(', ')}`);

    // Last, so a scan refused for another reason can be retried after a sync.
    if (nonce !== null) {
      const windowEnd = kbIat + prof.presentation_max_age + skew;
      if (!(await replay.remember(nonce, { now, until: windowEnd }))) {
        throw new Reject('replayed', 'this presentation was already used');
      }
    }

    const disclosed = new Map([...claims].filter(([k]) => !VISIBLE.has(k)));
    return this.result('ok', 'accepted', toPlain(disclosed));
  }

  // A paper 登録証: signed with no holder key (cnf), shown with no KB-JWT.  A
  // phone credential stripped of its KB-JWT still has cnf and is still refused.
  paper() {
    if (this.profile.paper !== 'accepted_with_photo_id') throw new Reject('holder_binding_missing', 'paper credential: not at this profile');
    this.warnings.push('paper_compare_photo_id');
  }

  async holderBinding(sd, holderKey, challenge) {
    const prof = this.profile;
    const now = this.now;
    let kb;
    try {
      kb = await verifyKbJwt(sd, holderKey);
    } catch (e) {
      if (e instanceof WireError && e.code !== 'wrong_sd_hash') {
        throw new Reject('holder_binding_invalid', `KB-JWT: ${e.description}`);
      }
      throw e;
    }
    this.holderBound = true;
    const aud = challenge ? challenge.audience : prof.audience;
    if (get(kb, 'aud') !== aud) throw new Reject('wrong_audience', 'KB-JWT is for another audience');
    const nonce = get(kb, 'nonce');
    if (typeof nonce !== 'string' || !(MIN_NONCE <= codePoints(nonce) && codePoints(nonce) <= MAX_NONCE)) {
      throw new Reject('wrong_nonce', 'KB-JWT nonce missing or of a bad length');
    }
    if (challenge && nonce !== challenge.nonce) throw new Reject('wrong_nonce', 'KB-JWT nonce is not the challenge');
    const kbIat = get(kb, 'iat');
    if (!isInt(kbIat)) throw new Reject('holder_binding_invalid', 'KB-JWT iat missing');
    if (kbIat > now + prof.clock_skew || now - kbIat > prof.presentation_max_age + prof.clock_skew) {
      throw new Reject('stale_presentation', 'KB-JWT is outside its time window');
    }
    return [nonce, kbIat];
  }
}

/**
 * Verify a scanned presentation offline and say why it is accepted or not.
 * payload: the scanned text (DR1:… or a plain compact SD-JWT) or its bytes;
 * bundle: a verified Bundle; profile: an entry of data/profiles.json;
 * now: epoch seconds; replay: {remember(nonce, {now, until})} (async).
 * Never throws on what a scanner reads.
 */
export async function verify(payload, bundle, profile, { now, replay, challenge = null }) {
  if (typeof payload !== 'string' && !(payload instanceof Uint8Array)) throw new TypeError('payload must be a string or bytes');
  if (typeof now !== 'number' || !Number.isFinite(now)) throw new TypeError('now must be epoch seconds');
  const ctx = new Context(profile, Math.floor(now));
  try {
    return await ctx.run(payload, bundle, replay, challenge);
  } catch (e) {
    if (e instanceof Reject) return ctx.result(e.reason, e.detail);
    if (e instanceof WireError) return ctx.result(e.code, e.description);
    return ctx.result('malformed', `unexpected ${e && e.name}`);
  }
}

export { malformed };

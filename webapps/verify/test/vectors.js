// Runs the shared corpus (tests/vectors/hostile.json and good.json) through
// the browser verifier and reports every case, so the Python side can compare
// them one by one.  Used by tests/test_verify_app_browser.py; not part of the
// offline app (the service worker does not cache it).

import { b64uDecode, b64uEncode } from '../../lib/b64.js';
import { decode as b45decode, encode as b45encode } from '../../lib/base45.js';
import { decode as trDecode, encode as trEncode } from '../../lib/transport.js';
import { Bundle } from '../core/bundle.js';
import { importPoint, parse as parseJws, keyFromJwk, b64e, sha256 } from '../core/jws.js';
import { processDisclosures, toPlain } from '../core/sdjwt.js';
import { statusListFromJson } from '../core/statuslist.js';
import { MemoryReplayStore, verify } from '../core/verify.js';
import { withPolicy } from '../core/policy.js';

const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const unhex = (h) => Uint8Array.from(h.match(/../g) || [], (x) => parseInt(x, 16));
const b64std = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

async function loadProfiles() {
  const r = await fetch(new URL('../data/profiles.json', import.meta.url));
  return (await r.json()).profiles;
}

async function anchorOf(jwk) {
  const x = b64uDecode(jwk.x);
  const y = b64uDecode(jwk.y);
  return { x, y, key: await importPoint(x, y) };
}

async function bundlesOf(data) {
  const anchor = await anchorOf(data.anchor_jwk);
  const out = {};
  for (const [name, raw] of Object.entries(data.bundles)) {
    out[name] = await Bundle.loads(JSON.stringify(raw), [anchor]);
  }
  return out;
}

// hostile.json: [{name, reason, warnings, first: [reasons of accept_first]}]
export async function runHostile(data) {
  const profiles = await loadProfiles();
  const bundles = await bundlesOf(data);
  const out = [];
  for (const c of data.cases) {
    const payload = c.payload_base64 !== undefined ? b64std(c.payload_base64) : c.payload;
    const challenge = c.challenge || null;
    const replay = new MemoryReplayStore();
    // policy.json: the profile narrowed to whom the verifier serves.
    const profile = c.policy ? withPolicy(profiles[c.profile], c.policy) : profiles[c.profile];
    const first = [];
    for (const earlier of c.accept_first || []) {
      first.push((await verify(earlier, bundles[c.bundle], profile, { now: c.now, replay, challenge })).reason);
    }
    const r = await verify(payload, bundles[c.bundle], profile, { now: c.now, replay, challenge });
    out.push({ name: c.name, reason: r.reason, detail: r.detail, warnings: r.warnings, first });
  }
  return out;
}

// edge.json bundle_cases: [{name, code}] of the BundleError each load throws.
export async function runBundleCases(data) {
  const anchor = await anchorOf(data.anchor_jwk);
  const out = [];
  for (const c of data.bundle_cases) {
    try {
      await Bundle.loads(c.bundle_text, [anchor]);
      out.push({ name: c.name, code: 'accepted' });
    } catch (e) {
      out.push({ name: c.name, code: e.code || `threw ${e && e.message}` });
    }
  }
  return out;
}

// good.json: wire cases as {name: true|message}, verify cases with full results.
export async function runGood(data) {
  const profiles = await loadProfiles();
  const bundles = await bundlesOf(data);
  const wire = {};
  const check = (name, fn) => {
    try {
      const ok = fn();
      wire[name] = ok === true ? true : `failed: ${JSON.stringify(ok)}`;
    } catch (e) {
      wire[name] = `threw: ${e && e.message}`;
    }
  };
  for (const c of data.wire.base64url) {
    check(`b64:${c.hex.slice(0, 16)}`, () => b64uEncode(unhex(c.hex)) === c.text && hex(b64uDecode(c.text)) === c.hex);
  }
  for (const c of data.wire.base45) {
    check(`b45:${c.text}`, () => b45encode(unhex(c.hex)) === c.text && hex(b45decode(c.text)) === c.hex);
  }
  for (const c of data.wire.status_lists) {
    check(`status:${c.name}`, () => {
      const lst = statusListFromJson({ bits: c.bits, lst: c.lst });
      const got = c.statuses.map((_, i) => lst.get(i));
      return JSON.stringify(got) === JSON.stringify(c.statuses) || got;
    });
  }
  const restorer = { x5c: () => null, types: () => data.wire.transport_types };
  for (const c of data.wire.transport) {
    check(
      `transport:${c.name}`,
      () => trDecode(c.dr1, restorer) === c.compact && trDecode(trEncode(c.compact), restorer) === c.compact,
    );
  }
  const rfc = data.wire.rfc9901;
  {
    const token = parseJws(rfc.issuer_jwt);
    await token.verify(await keyFromJwk(rfc.issuer_public_jwk));
    const digest = b64e(await sha256(new TextEncoder().encode(rfc.disclosures.given_name)));
    wire['rfc9901:digest'] = digest === rfc.digest_of_given_name || digest;
    const claims = toPlain(await processDisclosures(token.payload, Object.values(rfc.disclosures)));
    const want = rfc.all_disclosures_claims;
    wire['rfc9901:claims'] = JSON.stringify(sortKeys(claims)) === JSON.stringify(sortKeys(want)) || claims;
  }
  const results = [];
  for (const c of data.verify) {
    const replay = new MemoryReplayStore();
    const r = await verify(c.payload, bundles[c.bundle], profiles[c.profile], { now: c.now, replay });
    const again = await verify(c.payload, bundles[c.bundle], profiles[c.profile], { now: c.now, replay });
    results.push({ name: c.name, result: r, again: again.reason });
  }
  return { wire, verify: results };
}

function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  }
  return v;
}

// Decoded text -> verdict, n times: the browser half of docs/benchmarks.md.
export async function bench(payloads, rawBundle, anchorJwk, profileName, now, rounds = 1) {
  const profiles = await loadProfiles();
  const bundle = await Bundle.loads(JSON.stringify(rawBundle), [await anchorOf(anchorJwk)]);
  const profile = profiles[profileName];
  const times = [];
  // Warm-up: JIT and WebCrypto key caches, as the Python side warms up too.
  for (const p of payloads.slice(0, 50)) await verify(p, bundle, profile, { now, replay: new MemoryReplayStore() });
  for (let r = 0; r < rounds; r++) {
    const replay = new MemoryReplayStore();
    for (const p of payloads) {
      const t0 = performance.now();
      const res = await verify(p, bundle, profile, { now, replay });
      times.push(performance.now() - t0);
      if (!res.ok) throw new Error(`bench payload refused: ${res.reason}`);
    }
  }
  return times;
}

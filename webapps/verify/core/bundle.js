// The verifier bundle (dualres-bundle/1), mirroring verifier/bundle.py and
// verifier/sync.py: every signature is checked against the pinned anchor when
// the bundle is made and again whenever it is loaded, so a Bundle object only
// exists in a verified state.  Expiry is the profile's decision at scan time.

import { WireError } from '../../lib/errors.js';
import { anchorFromText, importPoint, publicPem, thumbprint } from './jws.js';
import { get } from './json.js';
import { parseToken } from './statuslist.js';
import { keyAllowsX5c, keyValidAt, parse as parseTrustList } from './trustlist.js';
import { BUNDLE_FORMAT, MAX_BUNDLE_BYTES as MAX_BUNDLE_CHARS, MAX_FETCH_BYTES } from '../../lib/shared.js';

export { BUNDLE_FORMAT, MAX_BUNDLE_CHARS, MAX_FETCH_BYTES };
const FETCH_TIMEOUT_MS = 30_000; // as the CLI: a slow municipal server, not a dead one

export class BundleError extends Error {
  constructor(code, description) {
    super(`${code}: ${description}`);
    this.code = code;
    this.description = description;
  }
}

// A pinned anchor from PEM or JWK text: {x, y, key, kid, pem}.
export async function loadAnchor(text) {
  let xy;
  try {
    xy = await anchorFromText(text);
  } catch (e) {
    throw new BundleError('bad_anchor', e.description || 'not a P-256 public key');
  }
  let key;
  try {
    key = await importPoint(xy.x, xy.y);
  } catch {
    throw new BundleError('bad_anchor', 'not a point on P-256');
  }
  return { ...xy, key, kid: await thumbprint(xy.x, xy.y), pem: await publicPem(key) };
}

const wrap = (e, where) => {
  if (e instanceof BundleError) return e;
  if (e instanceof WireError) return new BundleError(e.code, `${where}: ${e.description}`);
  return new BundleError('malformed', `${where}: ${e && e.message}`);
};

export class Bundle {
  constructor(trustList, status, raw) {
    this.trustList = trustList;
    this.status = status; // uri -> {issuer, token}
    this.raw = raw;
    this.createdAt = raw.created_at;
    this.source = raw.source ?? null;
  }

  static async fromTokens({ trustList, statusLists, anchors, createdAt, source = null }) {
    if (!anchors.length) throw new BundleError('no_anchor', 'a pinned trust-anchor key is required');
    let tl;
    try {
      tl = await parseTrustList(trustList, anchors);
    } catch (e) {
      throw wrap(e, 'trust list');
    }
    const listed = new Map();
    for (const iss of tl.issuers.values()) for (const uri of iss.statusLists) listed.set(uri, iss.iss);
    const entries = new Map();
    for (const [uri, text] of Object.entries(statusLists)) {
      const owner = listed.get(uri);
      if (owner === undefined) throw new BundleError('unknown_status_list', `${uri} is not in the trust list`);
      let parsed;
      try {
        const [token, p] = parseToken(text);
        const key = tl.issuers.get(owner).keys.get(p.kid ?? '');
        if (key === undefined) throw new BundleError('unknown_key', `status list ${uri}: unknown kid`);
        if (!keyAllowsX5c(key, get(token.header, 'x5c'))) {
          throw new BundleError('unknown_key', `status list ${uri}: x5c is not the key's`);
        }
        await token.verify(key.key);
        parsed = p;
      } catch (e) {
        throw wrap(e, `status list ${uri}`);
      }
      // A retired key's old "all valid" list, or the next key's before its start,
      // must not clear a revoked credential (verifier/bundle.py).
      if (!keyValidAt(tl.issuers.get(owner).keys.get(parsed.kid), parsed.iat)) {
        throw new BundleError('key_not_valid', `status list ${uri}: signed at ${parsed.iat}, outside its key's validity`);
      }
      if (parsed.sub !== uri) throw new BundleError('malformed', `status list ${uri} names ${parsed.sub}`);
      entries.set(uri, { issuer: owner, token: parsed });
    }
    const raw = {
      format: BUNDLE_FORMAT,
      created_at: createdAt,
      source,
      anchor: anchors[0].pem ?? (await publicPem(anchors[0].key)),
      trust_list: trustList,
      status_lists: { ...statusLists },
    };
    return new Bundle(tl, entries, raw);
  }

  // Load and re-verify, always against the pinned anchors given: the anchor
  // written inside a bundle is never trusted by this app.
  static async loads(data, anchors) {
    if (data.length > MAX_BUNDLE_CHARS) throw new BundleError('too_large', 'bundle file too large');
    let raw;
    try {
      raw = JSON.parse(data);
    } catch {
      throw new BundleError('malformed', 'bundle is not JSON');
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || raw.format !== BUNDLE_FORMAT) {
      throw new BundleError('unsupported_version', `not a ${BUNDLE_FORMAT} file`);
    }
    const createdAt = Number.parseInt(raw.created_at, 10);
    if (!('trust_list' in raw) || !('status_lists' in raw) || !Number.isFinite(createdAt)) {
      throw new BundleError('malformed', 'bundle is incomplete');
    }
    if (typeof raw.trust_list !== 'string' || raw.status_lists === null || typeof raw.status_lists !== 'object' || Array.isArray(raw.status_lists)) {
      throw new BundleError('malformed', 'bundle parts have the wrong types');
    }
    return Bundle.fromTokens({
      trustList: raw.trust_list,
      statusLists: raw.status_lists,
      anchors,
      createdAt,
      source: raw.source ?? null,
    });
  }

  dumps() {
    return JSON.stringify(this.raw);
  }

  // What is saved anyway but must be said (verifier/sync.py _warnings).
  warnings(now) {
    const out = [];
    for (const [uri, e] of this.status) {
      if (e.token.exp !== null && now >= e.token.exp) out.push(`stale_status_list ${uri}`);
    }
    const named = new Set();
    for (const iss of this.trustList.issuers.values()) for (const u of iss.statusLists) named.add(u);
    for (const u of named) if (!this.status.has(u)) out.push(`missing_status_list ${u}`);
    return out;
  }

  // The oldest expiry that matters: the trust list's and every status list's.
  expiries() {
    const lists = [...this.status.values()].map((e) => e.token.exp).filter((e) => e !== null);
    return { trustList: this.trustList.exp, statusLists: lists.length ? Math.min(...lists) : null };
  }
}

async function fetchText(url, fetchImpl) {
  let resp;
  try {
    resp = await fetchImpl(url, {
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
  } catch (e) {
    throw new BundleError('network_error', `${url}: ${e && e.message}`);
  }
  if (!resp.ok) throw new BundleError('network_error', `HTTP ${resp.status} from ${url}`);
  const declared = Number(resp.headers.get('Content-Length'));
  if (declared > MAX_FETCH_BYTES) throw new BundleError('too_large', `${url} is larger than ${MAX_FETCH_BYTES} bytes`);
  let buf;
  try {
    buf = new Uint8Array(await resp.arrayBuffer());
  } catch (e) {
    throw new BundleError('network_error', `${url}: ${e && e.message}`);
  }
  if (buf.length > MAX_FETCH_BYTES) throw new BundleError('too_large', `${url} sent more than ${MAX_FETCH_BYTES} bytes`);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf).trim();
  } catch {
    throw new BundleError('malformed', `${url} is not UTF-8 text`);
  }
}

function notExpired(tl, now) {
  if (now >= tl.exp) throw new BundleError('stale_trust_data', `the trust list expired (${tl.exp}); ask for a current one`);
}

// `dualres-verify sync` in the browser: the source holds a signed trust list
// (then every status list it names is fetched) or a whole bundle file.
export async function sync(source, anchors, { now, fetchImpl = fetch, text = null } = {}) {
  const body = text ?? (await fetchText(source, fetchImpl));
  if (body.startsWith('{')) {
    const bundle = await Bundle.loads(body, anchors);
    notExpired(bundle.trustList, now);
    return { bundle, carried: true, warnings: bundle.warnings(now) };
  }
  let tl;
  try {
    tl = await parseTrustList(body, anchors);
  } catch (e) {
    throw wrap(e, 'trust list');
  }
  notExpired(tl, now);
  const uris = [...new Set([...tl.issuers.values()].flatMap((i) => i.statusLists))];
  // Eight at a time, like the CLI: ~1,700 municipalities must not open 1,700 requests.
  const lists = {};
  for (let i = 0; i < uris.length; i += 8) {
    const chunk = uris.slice(i, i + 8);
    const texts = await Promise.all(chunk.map((u) => fetchText(u, fetchImpl)));
    chunk.forEach((u, j) => { lists[u] = texts[j]; });
  }
  const bundle = await Bundle.fromTokens({ trustList: body, statusLists: lists, anchors, createdAt: now, source });
  return { bundle, carried: false, warnings: bundle.warnings(now) };
}

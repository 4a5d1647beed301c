// OpenID4VCI 1.0, pre-authorized code flow, as wallet/oid4vci.py does it:
// offer → metadata → token (with tx_code; DPoP when the server offers it)
// → c_nonce → a batch of one-time credentials (batch_credential_issuance),
// one fresh holder key and key proof each (issue 13); the refresh token in
// the token answer refills the batch later (refill()).
import { newKeyPair, publicJwk, randomToken, sha256b64u, signJwt } from './sdjwt.js';

export const PRE_AUTH_GRANT = 'urn:ietf:params:oauth:grant-type:pre-authorized_code';
const OFFER_SCHEME = 'openid-credential-offer://';
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export class IssuanceError extends Error {
  constructor(message, { code = null, status = null, kind = 'protocol' } = {}) {
    super(message);
    this.code = code; // the issuer's OAuth error code, when it sent one
    this.status = status;
    this.kind = kind; // 'network' | 'protocol' | 'input' | 'tx_code'
  }
}

// https only; plain http just for this machine (the demo server, tests).
function checkUrl(url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    throw new IssuanceError(`not a URL: ${url}`, { kind: 'input' });
  }
  if (u.protocol === 'https:' || (u.protocol === 'http:' && LOOPBACK.has(u.hostname))) return u.href;
  throw new IssuanceError(`refusing ${u.protocol} URL: https only`, { kind: 'input' });
}

// An offer arrives as the openid-credential-offer:// URI of the counter QR, as an
// https link to this wallet (…/wallet/#credential_offer_uri=… or ?…), or pasted with
// stray whitespace.  All three carry the same two query parameters.
export function parseOfferText(text) {
  const s = (text || '').trim();
  if (!s) throw new IssuanceError('empty offer', { kind: 'input' });
  let query;
  if (s.startsWith(OFFER_SCHEME)) {
    query = s.slice(OFFER_SCHEME.length).replace(/^[^?]*\?/, '');
  } else if (/^https?:\/\//i.test(s)) {
    const u = new URL(s);
    query = u.search.slice(1) || u.hash.replace(/^#/, '');
  } else {
    query = s.replace(/^\?/, '');
  }
  const params = new URLSearchParams(query);
  if (params.has('credential_offer')) return { offer: JSON.parse(params.get('credential_offer')) };
  if (params.has('credential_offer_uri')) return { uri: checkUrl(params.get('credential_offer_uri')) };
  throw new IssuanceError('not a credential offer', { kind: 'input' });
}

async function request(method, url, { form, body, headers = {} } = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers }, cache: 'no-store', credentials: 'omit' };
  if (form) {
    init.body = new URLSearchParams(form).toString();
    init.headers['Content-Type'] = 'application/x-www-form-urlencoded';
  } else if (body) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  let resp;
  try {
    resp = await fetch(checkUrl(url), init);
  } catch (err) {
    throw new IssuanceError(`${method} ${url}: ${err.message}`, { kind: 'network' });
  }
  let out = null;
  try {
    out = await resp.json();
  } catch {
    out = null;
  }
  if (!resp.ok) {
    const code = out && typeof out.error === 'string' ? out.error : null;
    const desc = out && typeof out.error_description === 'string' ? out.error_description : resp.statusText;
    throw new IssuanceError(`${method} ${url}: ${resp.status} ${code || ''} ${desc}`, { code, status: resp.status });
  }
  if (!out || typeof out !== 'object' || Array.isArray(out)) {
    throw new IssuanceError(`${method} ${url}: the answer is not a JSON object`);
  }
  return out;
}

// RFC 8414 path insertion: /.well-known/<doc> goes between host and path.
function wellKnown(id, doc) {
  const u = new URL(checkUrl(id));
  return `${u.origin}/.well-known/${doc}${u.pathname.replace(/\/$/, '')}`;
}

async function dpopProof(keys, method, url, accessToken) {
  const payload = { htm: method, htu: url, iat: Math.floor(Date.now() / 1000), jti: randomToken(16) };
  if (accessToken) payload.ath = await sha256b64u(accessToken);
  return signJwt({ typ: 'dpop+jwt', jwk: await publicJwk(keys.publicKey) }, payload, keys.privateKey);
}

export async function resolveOffer(text) {
  const found = parseOfferText(text);
  const offer = found.offer || (await request('GET', found.uri));
  if (!offer || typeof offer.credential_issuer !== 'string') {
    throw new IssuanceError('the credential offer has no credential_issuer');
  }
  const grant = (offer.grants || {})[PRE_AUTH_GRANT];
  if (!grant || typeof grant['pre-authorized_code'] !== 'string') {
    throw new IssuanceError('the offer carries no pre-authorized code');
  }
  return { offer, grant, needsTxCode: grant.tx_code != null, txCode: grant.tx_code || null };
}

// One credential request for a batch: n fresh non-extractable keys, one proof
// each, all with the one c_nonce.  Returns [{ privateKey, publicKey, credential }].
async function fetchBatch(ends, access, dpopKeys, n) {
  const nonce = (await request('POST', ends.nonce_endpoint)).c_nonce;
  if (typeof nonce !== 'string') throw new IssuanceError('the nonce endpoint sent no c_nonce');
  const keys = [];
  for (let i = 0; i < n; i++) keys.push(await newKeyPair());
  const now = Math.floor(Date.now() / 1000);
  const proofs = [];
  for (const k of keys) {
    proofs.push(await signJwt(
      { typ: 'openid4vci-proof+jwt', jwk: await publicJwk(k.publicKey) },
      { aud: ends.credential_issuer, iat: now, nonce },
      k.privateKey,
    ));
  }
  const tokenType = String(access.token_type || 'Bearer');
  const headers = { Authorization: `${tokenType} ${access.access_token}` };
  if (tokenType.toLowerCase() === 'dpop') {
    headers.DPoP = await dpopProof(dpopKeys, 'POST', ends.credential_endpoint, access.access_token);
  }
  const out = await request('POST', ends.credential_endpoint, {
    body: { credential_configuration_id: ends.configuration_id, proofs: { jwt: proofs } },
    headers,
  });
  const creds = Array.isArray(out.credentials) ? out.credentials.map((c) => c && c.credential) : [];
  if (creds.length !== n || !creds.every((c) => typeof c === 'string')) {
    throw new IssuanceError('the credential response does not hold one credential per proof');
  }
  return keys.map((k, i) => ({ privateKey: k.privateKey, publicKey: k.publicKey, credential: creds[i] }));
}

// Run the whole flow; returns the batch, what the card shows about its
// issuer, and what a refill needs (endpoints and the refresh token).
export async function acceptOffer(text, txCode) {
  const { offer, grant, needsTxCode } = await resolveOffer(text);
  if (needsTxCode && !txCode) throw new IssuanceError('tx_code required', { kind: 'tx_code' });
  const issuerId = offer.credential_issuer;
  const meta = await request('GET', wellKnown(issuerId, 'openid-credential-issuer'));
  if (meta.credential_issuer !== issuerId) throw new IssuanceError('the metadata names another credential issuer');
  const asId = (meta.authorization_servers || [issuerId])[0];
  const auth = await request('GET', wellKnown(asId, 'oauth-authorization-server'));
  if (auth.issuer !== asId) throw new IssuanceError('the authorization server metadata names another issuer');
  const supported = meta.credential_configurations_supported || {};
  const config = (offer.credential_configuration_ids || []).find((c) => c in supported);
  if (!config) throw new IssuanceError('the issuer supports none of the offered credentials');
  const size = Number(meta.batch_credential_issuance?.batch_size) || 1;

  // DPoP binds the access token to a throwaway key of this session, so a
  // token seen in transit is useless; plain bearer only if not offered.
  const useDpop = (auth.dpop_signing_alg_values_supported || []).includes('ES256');
  const dpopKeys = useDpop ? await newKeyPair() : null;
  const form = { grant_type: PRE_AUTH_GRANT, 'pre-authorized_code': grant['pre-authorized_code'] };
  if (txCode) form.tx_code = txCode;
  const headers = dpopKeys ? { DPoP: await dpopProof(dpopKeys, 'POST', auth.token_endpoint) } : {};
  let access;
  try {
    access = await request('POST', auth.token_endpoint, { form, headers });
  } catch (err) {
    if (err.code === 'invalid_grant' && txCode) err.kind = 'tx_code';
    throw err;
  }
  const ends = {
    credential_issuer: issuerId,
    token_endpoint: auth.token_endpoint,
    nonce_endpoint: meta.nonce_endpoint,
    credential_endpoint: meta.credential_endpoint,
    configuration_id: config,
    batch_size: size,
    dpop: useDpop,
  };
  const batch = await fetchBatch(ends, access, dpopKeys, size);
  return {
    batch,
    issuer: issuerId,
    configuration: config,
    display: meta.display || [],
    refill: { ends, refresh_token: typeof access.refresh_token === 'string' ? access.refresh_token : null },
  };
}

// A new batch with the refresh token of the last one (online only).  Returns
// { batch, refill } with the next refresh token.
export async function refill({ ends, refresh_token: refreshToken }) {
  if (!refreshToken) throw new IssuanceError('no refresh token', { kind: 'input' });
  const dpopKeys = ends.dpop ? await newKeyPair() : null;
  const headers = dpopKeys ? { DPoP: await dpopProof(dpopKeys, 'POST', ends.token_endpoint) } : {};
  const access = await request('POST', ends.token_endpoint, {
    form: { grant_type: 'refresh_token', refresh_token: refreshToken },
    headers,
  });
  const batch = await fetchBatch(ends, access, dpopKeys, ends.batch_size);
  return { batch, refill: { ends, refresh_token: typeof access.refresh_token === 'string' ? access.refresh_token : null } };
}

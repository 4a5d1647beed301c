// OpenID4VCI 1.0, pre-authorized code flow, as wallet/oid4vci.py does it
// (and, below, the authorization code flow of an online application):
// offer → metadata → token (with tx_code; DPoP when the server offers it)
// → c_nonce → a batch of one-time credentials (batch_credential_issuance),
// one fresh holder key and key proof each (issue 13); the refresh token in
// the token answer refills the batch later (refill()).
import { newKeyPair, publicJwk, randomToken, sha256b64u, signJwt } from './sdjwt.js';

export const PRE_AUTH_GRANT = 'urn:ietf:params:oauth:grant-type:pre-authorized_code';
export const AUTH_CODE_GRANT = 'authorization_code';
// A public client (no secret): the issuer allows it a redirect under its own /wallet/.
export const CLIENT_ID = 'dualres-browser-wallet';
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

// The offer, by value or fetched by reference.
export async function fetchOffer(text) {
  const found = parseOfferText(text);
  const offer = found.offer || (await request('GET', found.uri));
  if (!offer || typeof offer.credential_issuer !== 'string') {
    throw new IssuanceError('the credential offer has no credential_issuer');
  }
  return offer;
}

// Which flow an offer asks for: the counter's pre-authorized code, or the
// authorization code flow (an /apply/ approval; an offer without grants too,
// as OpenID4VCI §4.1.1 leaves the choice to the wallet then).
export function offerFlow(offer) {
  const grants = offer.grants || {};
  if (grants[PRE_AUTH_GRANT]) return 'pre-authorized';
  if (grants[AUTH_CODE_GRANT] || !offer.grants) return 'authorization_code';
  throw new IssuanceError('the offer carries no grant this wallet supports');
}

// Without a network round trip: is the text an offer by value for the
// authorization code flow?  (The page shows the sign-in button, not the code field.)
export function isAuthCodeOffer(text) {
  try {
    const found = parseOfferText(text);
    return Boolean(found.offer) && offerFlow(found.offer) === 'authorization_code';
  } catch {
    return false;
  }
}

// `source`: the offer's text (fetched here when by reference) or the offer
// fetchOffer already gave the caller (a second GET would only repeat the first).
export async function resolveOffer(source) {
  const offer = typeof source === 'string' ? await fetchOffer(source) : source;
  const grant = (offer.grants || {})[PRE_AUTH_GRANT];
  if (!grant || typeof grant['pre-authorized_code'] !== 'string') {
    throw new IssuanceError('the offer carries no pre-authorized code');
  }
  return { offer, grant, needsTxCode: grant.tx_code != null, txCode: grant.tx_code || null };
}

// Issuer and authorization server metadata (RFC 8414 path insertion), checked
// to name the issuer they were fetched for.
async function discover(issuerId, offered) {
  const meta = await request('GET', wellKnown(issuerId, 'openid-credential-issuer'));
  if (meta.credential_issuer !== issuerId) throw new IssuanceError('the metadata names another credential issuer');
  const asId = (meta.authorization_servers || [issuerId])[0];
  const auth = await request('GET', wellKnown(asId, 'oauth-authorization-server'));
  if (auth.issuer !== asId) throw new IssuanceError('the authorization server metadata names another issuer');
  const supported = meta.credential_configurations_supported || {};
  const config = (offered || []).find((c) => c in supported);
  if (!config) throw new IssuanceError('the issuer supports none of the offered credentials');
  const size = Number(meta.batch_credential_issuance?.batch_size) || 1;
  const useDpop = (auth.dpop_signing_alg_values_supported || []).includes('ES256');
  const ends = {
    credential_issuer: issuerId,
    token_endpoint: auth.token_endpoint,
    nonce_endpoint: meta.nonce_endpoint,
    credential_endpoint: meta.credential_endpoint,
    configuration_id: config,
    batch_size: size,
    dpop: useDpop,
  };
  return { meta, auth, config, ends };
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
export async function acceptOffer(source, txCode) {
  const { offer, grant, needsTxCode } = await resolveOffer(source);
  if (needsTxCode && !txCode) throw new IssuanceError('tx_code required', { kind: 'tx_code' });
  const { meta, auth, config, ends } = await discover(offer.credential_issuer, offer.credential_configuration_ids);

  // DPoP binds the access token to a throwaway key of this session, so a
  // token seen in transit is useless; plain bearer only if not offered.
  const dpopKeys = ends.dpop ? await newKeyPair() : null;
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
  return issued(access, ends, dpopKeys, meta, config);
}

async function issued(access, ends, dpopKeys, meta, config) {
  const batch = await fetchBatch(ends, access, dpopKeys, ends.batch_size);
  const reg = access.dualres_registration;
  return {
    batch,
    issuer: ends.credential_issuer,
    configuration: config,
    display: meta.display || [],
    refill: { ends, refresh_token: typeof access.refresh_token === 'string' ? access.refresh_token : null },
    // Only for this wallet's own list (whose, renewal): never part of a presentation.
    registration: reg && typeof reg === 'object' ? {
      valid_until: /^\d{4}-\d{2}-\d{2}$/.test(reg.valid_until) ? reg.valid_until : null,
      subject: reg.subject === 'child' ? 'child' : 'self',
    } : null,
  };
}

// --- the authorization code flow (HAIP 1.0: PAR, PKCE S256, DPoP, RFC 9207 iss) -------

// A pending authorization lives through the page's trip to the sign-in and back:
// stored (IndexedDB, with its non-extractable DPoP key) only this long.
export const PENDING_SECONDS = 600;

// Push the authorization request and return where to send the person, plus what
// the return needs (kept on this device only: the PKCE verifier never leaves
// until the token request, the DPoP key never).
export async function beginAuthorization(offer, redirectUri) {
  const { auth, config, ends, meta } = await discover(offer.credential_issuer, offer.credential_configuration_ids);
  const parUrl = auth.pushed_authorization_request_endpoint;
  if (typeof parUrl !== 'string' || typeof auth.authorization_endpoint !== 'string') {
    throw new IssuanceError('the issuer offers no authorization code flow');
  }
  if (!(auth.code_challenge_methods_supported || []).includes('S256')) {
    throw new IssuanceError('the issuer does not support PKCE S256');
  }
  const verifier = randomToken(32); // 43 base64url characters, the least RFC 7636 allows
  const state = randomToken(16);
  const form = {
    client_id: CLIENT_ID,
    response_type: 'code',
    redirect_uri: redirectUri,
    state,
    code_challenge: await sha256b64u(verifier),
    code_challenge_method: 'S256',
    authorization_details: JSON.stringify([{ type: 'openid_credential', credential_configuration_id: config }]),
  };
  const issuerState = offer.grants?.[AUTH_CODE_GRANT]?.issuer_state;
  if (typeof issuerState === 'string') form.issuer_state = issuerState;
  const pushed = await request('POST', parUrl, { form });
  if (typeof pushed.request_uri !== 'string') throw new IssuanceError('the PAR endpoint sent no request_uri');
  const target = new URL(checkUrl(auth.authorization_endpoint));
  target.searchParams.set('client_id', CLIENT_ID);
  target.searchParams.set('request_uri', pushed.request_uri);
  const pending = {
    state, verifier, redirect_uri: redirectUri, as_issuer: auth.issuer, ends,
    configuration: config, display: meta.display || [],
    // HAIP: the token is DPoP-bound; the key is made now so the same one signs the token request.
    dpopKeys: await newKeyPair(),
    created: Math.floor(Date.now() / 1000),
  };
  return { url: target.href, pending };
}

// The authorization response came back to this page: check it, redeem the code.
export async function finishAuthorization(params, pending) {
  // state first: a response this page did not ask for (CSRF, an old tab) stops here.
  if (!pending || params.get('state') !== pending.state) {
    throw new IssuanceError('the authorization response does not match a request of this wallet', { kind: 'state' });
  }
  if (Math.floor(Date.now() / 1000) - pending.created > PENDING_SECONDS) {
    throw new IssuanceError('the authorization took too long', { kind: 'expired' });
  }
  // RFC 9207: the response names the authorization server that sent it; another
  // one is a mix-up attack, refused before the code goes anywhere.
  if (params.get('iss') !== pending.as_issuer) {
    throw new IssuanceError(`the response names another issuer (RFC 9207): ${params.get('iss')}`, { kind: 'iss' });
  }
  const error = params.get('error');
  if (error) {
    throw new IssuanceError(params.get('error_description') || error, {
      code: error, kind: error === 'access_denied' ? 'denied' : 'protocol',
    });
  }
  const code = params.get('code');
  if (!code) throw new IssuanceError('the authorization response has no code');
  const { ends, dpopKeys } = pending;
  const access = await request('POST', ends.token_endpoint, {
    form: {
      grant_type: AUTH_CODE_GRANT, code, code_verifier: pending.verifier,
      redirect_uri: pending.redirect_uri, client_id: CLIENT_ID,
    },
    headers: { DPoP: await dpopProof(dpopKeys, 'POST', ends.token_endpoint) },
  });
  if (String(access.token_type).toLowerCase() !== 'dpop') {
    throw new IssuanceError('the token is not DPoP-bound (HAIP 1.0 requires it)');
  }
  return issued(access, { ...ends, dpop: true }, dpopKeys, { display: pending.display }, pending.configuration);
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

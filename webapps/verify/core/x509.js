// An issuer key's X.509 chain (x5c: leaf, then the issuing CA; the trust
// anchor left out), checked against the pinned anchor key exactly as
// verifier/wire/x509chain.py does: ECDSA P-256 with SHA-256 only, at most four
// certificates, every certificate after the leaf a CA whose subject is the
// previous one's issuer, each signed by the next and the last by the anchor,
// the leaf certifying exactly the listed key and allowed to sign.  No clock:
// the validity window is returned for the scan to compare with its own time.
//
// The DER reader is minimal and strict (definite minimal lengths, no trailing
// bytes) and reads only what the checks need; extensions other than
// basicConstraints and keyUsage are checked for their framing and their
// critical flag (RFC 5280 4.2: CRITICAL_OK), not their content.  The same errors as Python: 'malformed' for anything that is not
// such a chain, 'bad_signature' for a signature that does not verify or is not
// a DER ECDSA signature (OpenSSL's verdict on one), as shared vectors test
// (tests/vectors/edge.json bundle_cases).

import { WireError, malformed } from '../../lib/errors.js';
import { importPoint } from './jws.js';

export const MAX_CHAIN = 4;
export const MAX_CERT_BYTES = 4096;

const OID_EC_PUBLIC_KEY = '2a8648ce3d0201'; // 1.2.840.10045.2.1
const OID_P256 = '2a8648ce3d030107'; // 1.2.840.10045.3.1.7
const OID_ECDSA_SHA256 = '2a8648ce3d040302'; // 1.2.840.10045.4.3.2
const OID_BASIC_CONSTRAINTS = '551d13'; // 2.5.29.19
const OID_KEY_USAGE = '551d0f'; // 2.5.29.15
// The extensions a certificate may mark critical (RFC 5280 4.2: anything else
// critical is refused), the same set as x509chain._CRITICAL_OK, where the
// reasons are written out: basicConstraints and keyUsage are processed;
// subjectKeyIdentifier, authorityKeyIdentifier (path-building hints: x5c is a
// path already) and subjectAltName (we identify no one by a certificate's
// names; the trust list names the key) restrict nothing we accept.
// extendedKeyUsage, nameConstraints, policy extensions and unknown OIDs do.
const CRITICAL_OK = new Set([OID_BASIC_CONSTRAINTS, OID_KEY_USAGE, '551d0e', '551d23', '551d11']);
const VERIFY = { name: 'ECDSA', hash: 'SHA-256' };
// P-256 field prime, b, for decompressing a point (p = 3 mod 4: sqrt is a power).
const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

// One TLV at pos, inside [pos, end): {tag, start, body, end} (body..end is the value).
function tlv(buf, pos, end, what) {
  if (pos + 2 > end) throw malformed(`x5c: ${what} is truncated`);
  const tag = buf[pos];
  if ((tag & 0x1f) === 0x1f) throw malformed(`x5c: ${what} has an unsupported tag`);
  let len = buf[pos + 1];
  let body = pos + 2;
  if (len >= 0x80) {
    const n = len & 0x7f;
    // Indefinite (0x80) is BER, not DER; four length bytes exceed any certificate.
    if (n === 0 || n > 3 || body + n > end) throw malformed(`x5c: ${what} has a bad length`);
    len = 0;
    for (let i = 0; i < n; i += 1) len = len * 256 + buf[body + i];
    if (buf[body] === 0 || len < 0x80) throw malformed(`x5c: ${what} has a non-minimal length`);
    body += n;
  }
  if (body + len > end) throw malformed(`x5c: ${what} is truncated`);
  return { tag, start: pos, body, end: body + len };
}

function expect(buf, pos, end, tag, what) {
  const t = tlv(buf, pos, end, what);
  if (t.tag !== tag) throw malformed(`x5c: ${what} is not where it belongs`);
  return t;
}

function time(buf, t) {
  const text = String.fromCharCode(...buf.subarray(t.body, t.end));
  const m = t.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : t.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : null;
  if (m === null) throw malformed('x5c: a validity time is not UTCTime or GeneralizedTime in UTC');
  let year = Number(m[1]);
  if (t.tag === 0x17) year += year < 50 ? 2000 : 1900; // RFC 5280 4.1.2.5.1
  const [mo, d, h, mi, s] = m.slice(2).map(Number);
  const ms = Date.UTC(year, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  if (mo < 1 || mo > 12 || back.getUTCDate() !== d || back.getUTCMonth() !== mo - 1 || h > 23 || mi > 59 || s > 59) {
    throw malformed('x5c: a validity time is not a date');
  }
  return ms / 1000;
}

function algorithmIsEcdsaSha256(buf, t) {
  const oid = expect(buf, t.body, t.end, 0x06, 'algorithm');
  if (hex(buf.subarray(oid.body, oid.end)) !== OID_ECDSA_SHA256) return false;
  if (oid.end === t.end) return true;
  const params = tlv(buf, oid.end, t.end, 'algorithm parameters');
  return params.tag === 0x05 && params.body === params.end && params.end === t.end; // NULL
}

function point(buf, spki) {
  const alg = expect(buf, spki.body, spki.end, 0x30, 'key algorithm');
  const kind = expect(buf, alg.body, alg.end, 0x06, 'key type');
  const curve = tlv(buf, kind.end, alg.end, 'key curve');
  if (hex(buf.subarray(kind.body, kind.end)) !== OID_EC_PUBLIC_KEY || curve.tag !== 0x06 || curve.end !== alg.end || hex(buf.subarray(curve.body, curve.end)) !== OID_P256) {
    throw malformed('x5c: certificates must be P-256 keys');
  }
  const bits = expect(buf, alg.end, spki.end, 0x03, 'public key');
  if (bits.end !== spki.end || bits.end - bits.body < 2 || buf[bits.body] !== 0) throw malformed('x5c: bad public key');
  const raw = buf.subarray(bits.body + 1, bits.end);
  if (raw[0] === 4 && raw.length === 65) return { x: raw.slice(1, 33), y: raw.slice(33) };
  if ((raw[0] === 2 || raw[0] === 3) && raw.length === 33) return decompress(raw);
  throw malformed('x5c: bad public key');
}

function toBig(bytes) {
  return BigInt(`0x${hex(bytes) || '0'}`);
}

function toBytes(n) {
  const out = new Uint8Array(32);
  for (let i = 31; i >= 0; i -= 1) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

function modPow(base, exp, mod) {
  let result = 1n;
  base %= mod;
  while (exp > 0n) {
    if (exp & 1n) result = (result * base) % mod;
    base = (base * base) % mod;
    exp >>= 1n;
  }
  return result;
}

// cryptography reads a compressed point as readily as an uncompressed one;
// WebCrypto's raw import may not, so the point is expanded here first.
function decompress(raw) {
  const x = toBig(raw.subarray(1));
  if (x >= P) throw malformed('x5c: bad public key');
  const rhs = (((x * x * x - 3n * x + B) % P) + P) % P;
  let y = modPow(rhs, (P + 1n) / 4n, P);
  if ((y * y) % P !== rhs) throw malformed('x5c: bad public key');
  if (Number(y & 1n) !== (raw[0] & 1)) y = P - y;
  return { x: toBytes(x), y: toBytes(y) };
}

// Extension id (hex) -> value; the ids marked critical go into `critical`.
function extensions(buf, t, critical) {
  const out = new Map();
  const seq = expect(buf, t.body, t.end, 0x30, 'extensions');
  if (seq.end !== t.end) throw malformed('x5c: bytes after the extensions');
  for (let pos = seq.body; pos < seq.end; ) {
    const ext = expect(buf, pos, seq.end, 0x30, 'extension');
    const oid = expect(buf, ext.body, ext.end, 0x06, 'extension id');
    let next = tlv(buf, oid.end, ext.end, 'extension');
    if (next.tag === 0x01) {
      // DER leaves critical out when false: only an explicit TRUE may be here.
      if (next.end - next.body !== 1 || buf[next.body] !== 0xff) throw malformed('x5c: bad extension');
      next = tlv(buf, next.end, ext.end, 'extension value');
    }
    if (next.tag !== 0x04 || next.end !== ext.end) throw malformed('x5c: bad extension');
    const id = hex(buf.subarray(oid.body, oid.end));
    if (out.has(id)) throw malformed('x5c: an extension appears twice');
    if (buf[oid.end] === 0x01) critical.push(id);
    out.set(id, buf.subarray(next.body, next.end));
    pos = ext.end;
  }
  return out;
}

function isCa(exts) {
  const value = exts.get(OID_BASIC_CONSTRAINTS);
  if (value === undefined) return false;
  const seq = expect(value, 0, value.length, 0x30, 'basicConstraints');
  if (seq.end !== value.length) throw malformed('x5c: bad basicConstraints');
  if (seq.body === seq.end) return false;
  const first = tlv(value, seq.body, seq.end, 'basicConstraints');
  if (first.tag === 0x01) {
    if (first.end - first.body !== 1 || value[first.body] !== 0xff) throw malformed('x5c: bad basicConstraints');
    if (first.end < seq.end) {
      const len = expect(value, first.end, seq.end, 0x02, 'pathLenConstraint');
      if (len.end !== seq.end || len.end === len.body) throw malformed('x5c: bad basicConstraints');
    }
    return true;
  }
  if (first.tag !== 0x02 || first.end !== seq.end) throw malformed('x5c: bad basicConstraints');
  return false;
}

function maySign(exts) {
  const value = exts.get(OID_KEY_USAGE);
  if (value === undefined) return true;
  const bits = expect(value, 0, value.length, 0x03, 'keyUsage');
  if (bits.end !== value.length || bits.end === bits.body || value[bits.body] > 7) throw malformed('x5c: bad keyUsage');
  return bits.end - bits.body > 1 && (value[bits.body + 1] & 0x80) !== 0; // digitalSignature: bit 0
}

// A DER ECDSA-Sig-Value as WebCrypto's raw r||s, or null when it is not one.
function rawSignature(sig) {
  try {
    const seq = tlv(sig, 0, sig.length, 'signature');
    if (seq.tag !== 0x30 || seq.end !== sig.length) return null;
    const out = new Uint8Array(64);
    let pos = seq.body;
    for (const at of [0, 32]) {
      const n = tlv(sig, pos, seq.end, 'signature');
      let v = sig.subarray(n.body, n.end);
      if (n.tag !== 0x02 || v.length === 0 || v[0] & 0x80) return null;
      if (v[0] === 0 && v.length > 1) {
        if (!(v[1] & 0x80)) return null; // not minimal
        v = v.subarray(1);
      }
      if (v.length > 32) return null;
      out.set(v, at + 32 - v.length);
      pos = n.end;
    }
    return pos === seq.end ? out : null;
  } catch {
    return null;
  }
}

export function parseCertificate(der) {
  const cert = expect(der, 0, der.length, 0x30, 'certificate');
  if (cert.end !== der.length) throw malformed('x5c: bytes after the certificate');
  const tbs = expect(der, cert.body, cert.end, 0x30, 'tbsCertificate');
  const sigAlg = expect(der, tbs.end, cert.end, 0x30, 'signatureAlgorithm');
  const sigBits = expect(der, sigAlg.end, cert.end, 0x03, 'signature');
  if (sigBits.end !== cert.end || sigBits.end === sigBits.body || der[sigBits.body] !== 0) {
    throw malformed('x5c: bad certificate signature');
  }
  let pos = tbs.body;
  let t = tlv(der, pos, tbs.end, 'version');
  if (t.tag === 0xa0) {
    // v3 (2); v1 is the default DER leaves out, and cryptography knows no v2.
    const v = expect(der, t.body, t.end, 0x02, 'version');
    if (v.end !== t.end || v.end - v.body !== 1 || der[v.body] !== 2) throw malformed('x5c: unknown certificate version');
    pos = t.end;
  }
  const serial = expect(der, pos, tbs.end, 0x02, 'serialNumber');
  if (serial.end === serial.body) throw malformed('x5c: bad serialNumber');
  // RFC 5280 4.1.2.2: positive (x509chain.py refuses zero and negative alike).
  if (der[serial.body] & 0x80 || (serial.end - serial.body === 1 && der[serial.body] === 0)) {
    throw malformed('x5c: serialNumber is not positive');
  }
  const innerAlg = expect(der, serial.end, tbs.end, 0x30, 'signature');
  const issuer = expect(der, innerAlg.end, tbs.end, 0x30, 'issuer');
  const validity = expect(der, issuer.end, tbs.end, 0x30, 'validity');
  const nb = tlv(der, validity.body, validity.end, 'notBefore');
  const na = tlv(der, nb.end, validity.end, 'notAfter');
  if (na.end !== validity.end) throw malformed('x5c: bad validity');
  const subject = expect(der, validity.end, tbs.end, 0x30, 'subject');
  const spki = expect(der, subject.end, tbs.end, 0x30, 'subjectPublicKeyInfo');
  pos = spki.end;
  let exts = new Map();
  const critical = [];
  for (const tag of [0x81, 0x82, 0xa3]) {
    if (pos < tbs.end && der[pos] === tag) {
      t = tlv(der, pos, tbs.end, 'tbsCertificate');
      if (tag === 0xa3) exts = extensions(der, t, critical);
      pos = t.end;
    }
  }
  if (pos !== tbs.end) throw malformed('x5c: bytes after the tbsCertificate');
  return {
    tbs: der.subarray(tbs.start, tbs.end),
    signatureOk: algorithmIsEcdsaSha256(der, sigAlg),
    signature: der.subarray(sigBits.body + 1, sigBits.end),
    issuer: hex(der.subarray(issuer.start, issuer.end)),
    subject: hex(der.subarray(subject.start, subject.end)),
    notBefore: time(der, nb),
    notAfter: time(der, na),
    point: point(der, spki),
    extensions: exts,
    critical,
  };
}

function b64Decode(text) {
  // Standard base64 with padding, as x5c is (RFC 7515 4.1.6); nothing else passes.
  if (typeof text !== 'string' || text.length > MAX_CERT_BYTES * 2 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw malformed('x5c entry is not a DER certificate');
  }
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i += 1) out[i] = bin.charCodeAt(i);
  return out;
}

const importPointKey = ({ x, y }) => importPoint(x, y, 'x5c: a certificate key is not on P-256');

async function signedBy(cert, key) {
  if (!cert.signatureOk) throw malformed('certificates must be signed with ECDSA and SHA-256');
  const raw = rawSignature(cert.signature);
  const ok = raw !== null && (await crypto.subtle.verify(VERIFY, key, raw, cert.tbs));
  if (!ok) throw new WireError('bad_signature', 'a certificate in x5c is not signed by the next one');
}

const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

// An OID's hex value in dotted form, for the message (x509chain's wording).
function dotted(h) {
  const parts = [];
  let n = 0;
  for (let i = 0; i < h.length; i += 2) {
    const byte = parseInt(h.slice(i, i + 2), 16);
    n = n * 128 + (byte & 0x7f);
    if (byte & 0x80) continue;
    if (parts.length === 0) parts.push(Math.min(2, Math.floor(n / 40)), n - 40 * Math.min(2, Math.floor(n / 40)));
    else parts.push(n);
    n = 0;
  }
  return parts.join('.');
}

// Every certificate of a chain, as it is read and before any other check (where
// x509chain._load_der checks it too): no critical extension outside CRITICAL_OK.
function checkCritical(cert) {
  for (const id of cert.critical) {
    if (!CRITICAL_OK.has(id)) throw malformed(`x5c: a certificate has a critical extension the verifier does not process (${dotted(id)})`);
  }
}

function loadAll(x5c) {
  return x5c.map((c) => {
    let cert;
    try {
      cert = parseCertificate(b64Decode(c));
    } catch (e) {
      if (e instanceof WireError) throw e;
      throw malformed('x5c entry is not a DER certificate');
    }
    checkCritical(cert);
    return cert;
  });
}

// A CA certificate the trust list names once (issuing_cas), signed by the
// anchor itself: checked once however many keys it certifies (x509chain.check_ca).
export async function checkCa(text, anchorKey) {
  const [cert] = loadAll([text]);
  if (!isCa(cert.extensions)) throw malformed('an issuing CA must be a CA certificate');
  const key = await importPointKey(cert.point);
  await signedBy(cert, anchorKey);
  return { text, key, subject: cert.subject, notBefore: cert.notBefore, notAfter: cert.notAfter };
}

// x5c certifies the key at (x, y) under the anchor (a CryptoKey): the window
// [notBefore, notAfter] (epoch seconds) in which every certificate is valid.
// With ca (from checkCa), x5c stops below that CA, whose window counts too.
export async function checkChain(x5c, x, y, anchorKey, ca = null) {
  if (!Array.isArray(x5c) || x5c.length === 0 || x5c.length + (ca ? 1 : 0) > MAX_CHAIN) {
    throw malformed(`x5c holds 1 to ${MAX_CHAIN} certificates`);
  }
  const certs = loadAll(x5c);
  const leaf = certs[0];
  if (!same(leaf.point.x, x) || !same(leaf.point.y, y)) throw malformed('the x5c leaf certifies another key');
  if (isCa(leaf.extensions)) throw malformed('the x5c leaf is a CA certificate');
  if (!maySign(leaf.extensions)) throw malformed('the x5c leaf may not sign');
  for (let i = 0; i + 1 < certs.length; i += 1) {
    const [cert, issuer] = [certs[i], certs[i + 1]];
    if (!isCa(issuer.extensions) || cert.issuer !== issuer.subject) throw malformed('x5c is not a chain of CA certificates');
    await signedBy(cert, await importPointKey(issuer.point));
  }
  const top = certs[certs.length - 1];
  let notBefore = Math.max(...certs.map((c) => c.notBefore));
  let notAfter = Math.min(...certs.map((c) => c.notAfter));
  if (ca) {
    if (top.issuer !== ca.subject) throw malformed('x5c does not end below its issuing CA');
    await signedBy(top, ca.key);
    notBefore = Math.max(notBefore, ca.notBefore);
    notAfter = Math.min(notAfter, ca.notAfter);
  } else {
    await signedBy(top, anchorKey);
  }
  return { notBefore, notAfter };
}

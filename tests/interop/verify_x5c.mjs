// A second, independent verifier, HAIP style: it takes the issuer's key from
// the credential's x5c (not from our trust list), checks that certificate
// against the pinned trust anchor with @peculiar/x509, and verifies the SD-JWT
// VC and its Token Status List with @sd-jwt/sd-jwt-vc (OpenWallet Foundation).
// It also reads both spellings of the issuer metadata and the type metadata
// at the vct URL.  Run by tests/test_interop_oid4vci.py against a live server:
//
//   node verify_x5c.mjs BASE_URL LG_CODE CREDENTIAL ANCHOR_PUBLIC_PEM_FILE
//
// Prints one JSON object of findings on stdout; exits non-zero on any failure.
import 'reflect-metadata' // @peculiar/x509's dependency injection needs it loaded first
import { createHash, webcrypto } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { X509Certificate, cryptoProvider } from '@peculiar/x509'
import { ES256, digest } from '@sd-jwt/crypto-nodejs'
import { SDJwtVcInstance } from '@sd-jwt/sd-jwt-vc'

const [base, lg, credential, anchorFile] = process.argv.slice(2)
cryptoProvider.set(webcrypto)
const issuer = `${base}/lg/${lg}`

async function getJson(url, accept = 'application/json') {
  const r = await fetch(url, { headers: { Accept: accept } })
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`)
  return r.json()
}

// 1. Both metadata paths answer with the same documents.
const inserted = await getJson(`${base}/.well-known/openid-credential-issuer/lg/${lg}`)
const appended = await getJson(`${issuer}/.well-known/openid-credential-issuer`)
const asInserted = await getJson(`${base}/.well-known/oauth-authorization-server/lg/${lg}`)
const asAppended = await getJson(`${issuer}/.well-known/oauth-authorization-server`)
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b)
const config = Object.values(inserted.credential_configurations_supported)[0]
const claimDisplays = config.credential_metadata.claims.flatMap((c) => c.display)

// 2. The x5c chain (leaf, then the issuing CA), each certificate checked with
// the next one's key, the last with the pinned anchor key.
const header = JSON.parse(Buffer.from(credential.split('.')[0], 'base64url'))
const payload = JSON.parse(Buffer.from(credential.split('~')[0].split('.')[1], 'base64url'))
const certs = header.x5c.map((c) => new X509Certificate(c))
const leaf = certs[0]
const anchorPem = readFileSync(anchorFile, 'utf8').replace(/-----[A-Z ]+-----|\s/g, '')
const anchorKey = await webcrypto.subtle.importKey(
  'spki',
  Buffer.from(anchorPem, 'base64'),
  { name: 'ECDSA', namedCurve: 'P-256' },
  true,
  ['verify'],
)
const EC = { name: 'ECDSA', namedCurve: 'P-256' }
let chainOk = true
for (let i = 0; i < certs.length; i += 1) {
  const next = i + 1 < certs.length ? await certs[i + 1].publicKey.export(EC, ['verify']) : anchorKey
  chainOk = chainOk && (await certs[i].verify({ publicKey: next, signatureOnly: true }))
  if (i > 0) {
    const constraints = certs[i].getExtension('2.5.29.19') // basicConstraints
    chainOk = chainOk && constraints !== null && constraints.ca === true
    chainOk = chainOk && certs[i - 1].issuer === certs[i].subject
  }
}
const leafKey = await leaf.publicKey.export({ name: 'ECDSA', namedCurve: 'P-256' }, ['verify'])
const leafJwk = await webcrypto.subtle.exportKey('jwk', leafKey)
const san = leaf.getExtension('2.5.29.17')
const sanUris = san ? san.names.items.filter((n) => n.type === 'url').map((n) => n.value) : []

// 3. The credential, its status list and its type metadata, by the library,
// with the key from x5c only.
let statusHeader = null
let typeIntegrityOk = false
const sdjwt = new SDJwtVcInstance({
  hasher: digest,
  verifier: await ES256.getVerifier({ kty: 'EC', crv: 'P-256', x: leafJwk.x, y: leafJwk.y }),
  statusListFetcher: async (uri) => {
    const r = await fetch(uri, { headers: { Accept: 'application/statuslist+jwt' } })
    const text = await r.text()
    statusHeader = JSON.parse(Buffer.from(text.split('.')[0], 'base64url'))
    return text
  },
  loadTypeMetadataFormat: true,
  // The library reads "vct#Integrity" and compares hex: check the SRI value
  // (sha256-, base64) of the bytes the vct URL answers ourselves.
  vctFetcher: async (uri) => {
    const r = await fetch(uri)
    const bytes = Buffer.from(await r.arrayBuffer())
    const sri = `sha256-${createHash('sha256').update(bytes).digest('base64')}`
    typeIntegrityOk = sri === payload['vct#integrity']
    return JSON.parse(bytes.toString('utf8'))
  },
})
const verified = await sdjwt.verify(credential) // signature, status list, then the vct fetch
const typeMetadata = await sdjwt.getVct(credential)

process.stdout.write(
  `${JSON.stringify({
    metadata_same: same(inserted, appended),
    as_metadata_same: same(asInserted, asAppended),
    claim_display_names: claimDisplays.every((d) => d.name && d.locale && !('label' in d)),
    claim_display_count: claimDisplays.length,
    chain_ok: chainOk,
    chain_length: certs.length,
    leaf_san_uris: sanUris,
    status_x5c_same: statusHeader !== null && same(statusHeader.x5c, header.x5c),
    vct: verified.payload.vct,
    type_metadata_vct: typeMetadata?.vct ?? null,
    type_integrity_ok: typeIntegrityOk,
    family_name: verified.payload.person?.family_name ?? null,
  })}\n`,
)

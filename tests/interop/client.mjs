// An independent OpenID4VCI wallet: the OpenWallet Foundation's oid4vc-ts
// client (@openid4vc/openid4vci, @openid4vc/oauth2), run by
// tests/test_interop_oid4vci.py against a real `dualres-issuer serve --demo`.
//
//   node client.mjs OFFER_URI TX_CODE [--dpop] [--batch N]
//
// Prints {"credential": "<compact SD-JWT>", "holder_private_jwk": {...},
// "credentials": [...], "holder_private_jwks": [...], "token_type": "..."} on
// stdout.  --batch N asks for N credentials in one request (OpenID4VCI 1.0
// batch issuance, issue 13): N holder keys, one proof each, one c_nonce.  Only the library speaks to the issuer; this
// file supplies the crypto callbacks it asks for (callbacks.mjs: WebCrypto, ES256).
import { clientAuthenticationAnonymous } from '@openid4vc/oauth2'
import { Openid4vciClient, setGlobalConfig } from '@openid4vc/openid4vci'
import { callbacks as makeCallbacks, newKey } from './callbacks.mjs'

const [offerUri, txCode, ...flags] = process.argv.slice(2)
if (!offerUri || !txCode) {
  console.error('usage: node client.mjs OFFER_URI TX_CODE [--dpop] [--batch N]')
  process.exit(2)
}
const useDpop = flags.includes('--dpop')
const batchAt = flags.indexOf('--batch')
const batchSize = batchAt >= 0 ? Number(flags[batchAt + 1]) : 1

// The demo issuer is plain http on 127.0.0.1.
setGlobalConfig({ allowInsecureUrls: true })

const holders = []
for (let i = 0; i < batchSize; i++) holders.push(await newKey())
const holder = holders[0]
const dpopKey = useDpop ? await newKey() : null
const byThumb = new Map() // public x -> CryptoKey
for (const h of holders) byThumb.set(h.publicJwk.x, h.privateKey)
if (dpopKey) byThumb.set(dpopKey.publicJwk.x, dpopKey.privateKey)

const callbacks = makeCallbacks(clientAuthenticationAnonymous(), byThumb)

const client = new Openid4vciClient({ callbacks })

const credentialOffer = await client.resolveCredentialOffer(offerUri)
const issuerMetadata = await client.resolveIssuerMetadata(credentialOffer.credential_issuer)
const [credentialConfigurationId] = credentialOffer.credential_configuration_ids

const dpopSigner = dpopKey
  ? { signer: { method: 'jwk', alg: 'ES256', publicJwk: dpopKey.publicJwk } }
  : undefined
const { accessTokenResponse, dpop } = await client.retrievePreAuthorizedCodeAccessTokenFromOffer({
  credentialOffer,
  issuerMetadata,
  txCode,
  dpop: dpopSigner,
})

const { c_nonce: nonce } = await client.requestNonce({ issuerMetadata })
const proofJwts = []
for (const h of holders) {
  const { jwt } = await client.createCredentialRequestJwtProof({
    issuerMetadata,
    credentialConfigurationId,
    nonce,
    signer: { method: 'jwk', alg: 'ES256', publicJwk: h.publicJwk },
  })
  proofJwts.push(jwt)
}

const result = await client.retrieveCredentials({
  issuerMetadata,
  credentialConfigurationId,
  accessToken: accessTokenResponse.access_token,
  proofs: { jwt: proofJwts },
  dpop,
})
const credentials = (result.credentialResponse.credentials ?? []).map((c) => c?.credential)
const credential = credentials[0]
if (credentials.length !== holders.length || !credentials.every((c) => typeof c === 'string')) {
  throw new Error(`not one credential per proof: ${JSON.stringify(result.credentialResponse)}`)
}

process.stdout.write(
  `${JSON.stringify({
    credential,
    holder_private_jwk: holder.privateJwk,
    credentials,
    holder_private_jwks: holders.map((h) => h.privateJwk),
    token_type: accessTokenResponse.token_type,
  })}\n`,
)

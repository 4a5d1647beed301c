// The independent OpenID4VCI wallet (oid4vc-ts: @openid4vc/openid4vci, @openid4vc/oauth2)
// in the authorization code flow (issue 12), run by tests/test_interop_oid4vci.py against
// a real `dualres-issuer serve --demo`:
//
//   node authcode.mjs CREDENTIAL_ISSUER REDIRECT_URI
//
// 1. Resolves the issuer and authorization server metadata, pushes the authorization
//    request (PAR, RFC 9126) with PKCE S256, authorization_details of type
//    openid_credential and a DPoP key, and prints {"authorization_url": ...}.
// 2. Reads one line from stdin: the URL the person's browser was sent back to (the test
//    plays the browser: the sign-in at /apply/ through the demo /idp).
// 3. Parses it and checks `iss` against the authorization server's issuer (RFC 9207),
//    redeems the code with the PKCE verifier and a DPoP proof, asks for a nonce, sends a
//    jwt key proof and prints {"credential", "holder_private_jwk", "token_type", ...}.
//
// Only the library speaks to the issuer; this file supplies the crypto callbacks and the
// wallet-initiated offer object the library's helpers take (no offer exists in this flow:
// the wallet starts it after the municipality approved an application online).
import { createInterface } from 'node:readline'
import { clientAuthenticationNone } from '@openid4vc/oauth2'
import { Openid4vciClient, setGlobalConfig } from '@openid4vc/openid4vci'
import { callbacks as makeCallbacks, newKey } from './callbacks.mjs'

const [credentialIssuer, redirectUri] = process.argv.slice(2)
if (!credentialIssuer || !redirectUri) {
  console.error('usage: node authcode.mjs CREDENTIAL_ISSUER REDIRECT_URI')
  process.exit(2)
}
const clientId = 'oid4vc-ts-interop'

setGlobalConfig({ allowInsecureUrls: true }) // the demo issuer is plain http on 127.0.0.1

const holder = await newKey()
const dpopKey = await newKey()
const byX = new Map([
  [holder.publicJwk.x, holder.privateKey],
  [dpopKey.publicJwk.x, dpopKey.privateKey],
])
// A public client (token_endpoint_auth_methods_supported: none): client_id in the body.
const callbacks = makeCallbacks(clientAuthenticationNone({ clientId }), byX)

const client = new Openid4vciClient({ callbacks })
const issuerMetadata = await client.resolveIssuerMetadata(credentialIssuer)
const [credentialConfigurationId] = Object.keys(
  issuerMetadata.credentialIssuer.credential_configurations_supported,
)
const credentialOffer = {
  credential_issuer: credentialIssuer,
  credential_configuration_ids: [credentialConfigurationId],
  grants: { authorization_code: {} },
}
const authorizationServerMetadata = issuerMetadata.authorizationServers[0]
if (!authorizationServerMetadata.pushed_authorization_request_endpoint) {
  throw new Error('the authorization server advertises no PAR endpoint')
}

const dpopSigner = { signer: { method: 'jwk', alg: 'ES256', publicJwk: dpopKey.publicJwk } }
const { authorizationRequestUrl, pkce, dpop } = await client.createAuthorizationRequestUrlFromOffer({
  clientId,
  credentialOffer,
  issuerMetadata,
  redirectUri,
  additionalRequestPayload: {
    authorization_details: [{ type: 'openid_credential', credential_configuration_id: credentialConfigurationId }],
  },
  dpop: dpopSigner,
})
if (!pkce || pkce.codeChallengeMethod !== 'S256') throw new Error(`PKCE not S256: ${JSON.stringify(pkce)}`)
process.stdout.write(`${JSON.stringify({ authorization_url: authorizationRequestUrl })}\n`)

const lines = createInterface({ input: process.stdin })
const back = await new Promise((resolve) => lines.once('line', resolve))
lines.close()

// Throws if `iss` is missing or not the authorization server's issuer (RFC 9207).
const response = client.parseAndVerifyAuthorizationResponseRedirectUrl({
  url: back,
  authorizationServerMetadata,
})
if (response.error) throw new Error(`authorization refused: ${response.error}`)

const { accessTokenResponse, dpop: tokenDpop } = await client.retrieveAuthorizationCodeAccessTokenFromOffer({
  issuerMetadata,
  credentialOffer,
  authorizationCode: response.code,
  pkceCodeVerifier: pkce.codeVerifier,
  redirectUri,
  dpop: dpop ?? dpopSigner,
})
const { c_nonce: nonce } = await client.requestNonce({ issuerMetadata })
const { jwt } = await client.createCredentialRequestJwtProof({
  issuerMetadata,
  credentialConfigurationId,
  nonce,
  signer: { method: 'jwk', alg: 'ES256', publicJwk: holder.publicJwk },
})
const result = await client.retrieveCredentials({
  issuerMetadata,
  credentialConfigurationId,
  accessToken: accessTokenResponse.access_token,
  proofs: { jwt: [jwt] },
  dpop: tokenDpop,
})
const credential = result.credentialResponse.credentials?.[0]?.credential
if (typeof credential !== 'string') {
  throw new Error(`no credential: ${JSON.stringify(result.credentialResponse)}`)
}
process.stdout.write(
  `${JSON.stringify({
    credential,
    holder_private_jwk: holder.privateJwk,
    token_type: accessTokenResponse.token_type,
    iss: response.iss,
    authorization_server: authorizationServerMetadata.issuer,
  })}\n`,
)

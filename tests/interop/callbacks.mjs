// The crypto the oid4vc-ts client asks its caller for (WebCrypto, ES256), shared by the two
// independent wallets: client.mjs (pre-authorized code) and authcode.mjs (authorization code).
import { webcrypto } from 'node:crypto'
import { HashAlgorithm } from '@openid4vc/oauth2'

// WebCrypto; node:crypto's, since Node 18 (Debian 12) has no globalThis.crypto.
const subtle = webcrypto.subtle
const ES256 = { name: 'ECDSA', namedCurve: 'P-256' }

const b64url = (bytes) => Buffer.from(bytes).toString('base64url')
const publicOf = ({ kty, crv, x, y }) => ({ kty, crv, x, y })

export async function newKey() {
  const pair = await subtle.generateKey(ES256, true, ['sign', 'verify'])
  const priv = await subtle.exportKey('jwk', pair.privateKey)
  return { privateKey: pair.privateKey, privateJwk: priv, publicJwk: publicOf(priv) }
}

const hashNames = {
  [HashAlgorithm.Sha256]: 'SHA-256',
  [HashAlgorithm.Sha384]: 'SHA-384',
  [HashAlgorithm.Sha512]: 'SHA-512',
}

// The callbacks for `new Openid4vciClient({ callbacks })`: `keys` maps a public key's x to
// its private CryptoKey (the holder keys and the DPoP key the library may ask to sign with).
export function callbacks(clientAuthentication, keys) {
  return {
    fetch: globalThis.fetch,
    clientAuthentication,
    generateRandom: (n) => webcrypto.getRandomValues(new Uint8Array(n)),
    hash: async (data, alg) => new Uint8Array(await subtle.digest(hashNames[alg], data)),
    signJwt: async (signer, { header, payload }) => {
      if (signer.method !== 'jwk' || signer.alg !== 'ES256') {
        throw new Error(`unsupported signer ${signer.method}/${signer.alg}`)
      }
      const key = keys.get(signer.publicJwk.x)
      if (!key) throw new Error('no private key for the requested signer')
      const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`
      // WebCrypto's ECDSA signature is already the JWS r||s form.
      const sig = await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key, Buffer.from(input))
      return { jwt: `${input}.${b64url(new Uint8Array(sig))}`, signerJwk: signer.publicJwk }
    },
  }
}

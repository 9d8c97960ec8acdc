// functions/core/dpop.ts and dpop-nonce.ts: DPoP proofs (RFC 9449 §4.3: typ, asymmetric alg, public jwk, htm, htu,
// iat window, ath, nonce), which key a token request binds to (§5, §6) and the stateless server nonces (§8).
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { calculateJwkThumbprint, exportJWK, SignJWT, type JWK } from 'jose';
import {
  boundJkt,
  dpopBinding,
  proofRememberedUntil,
  verifyDPoPProof,
  type DPoPProofPolicy,
} from '../../functions/core/dpop.ts';
import { DPOP_NONCE_PERIOD_S, dpopNonce, dpopNonceValid } from '../../functions/core/dpop-nonce.ts';
import { DPOP_ALGS } from '../../functions/core/capabilities.ts';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { rejectsOAuth, throwsOAuth } from './helpers/oauth-assert.ts';

const NOW = 1_800_000_000;
const URL_TOKEN = 'https://as.example/token';
const POLICY: DPoPProofPolicy = {
  method: 'POST',
  urls: [URL_TOKEN, 'https://mtls.as.example/token'],
  algorithms: DPOP_ALGS,
  now: NOW,
};

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const publicJwk = async (key = ec.publicKey) => (await exportJWK(key)) as JWK;

async function proof(
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
  signer = ec.privateKey,
  alg = 'ES256',
): Promise<string> {
  return new SignJWT({ jti: `jti-${Math.random()}`, htm: 'POST', htu: URL_TOKEN, iat: NOW, ...claims })
    .setProtectedHeader({ alg, typ: 'dpop+jwt', jwk: await publicJwk(), ...header } as never)
    .sign(signer);
}

describe('RFC 9449 §4.3 proof checks', () => {
  test('a valid proof yields the RFC 7638 thumbprint of its key, its jti and iat', async () => {
    const jwt = await proof({ jti: 'one' });
    const checked = await verifyDPoPProof(jwt, POLICY);
    assert.deepEqual(checked, { jkt: await calculateJwkThumbprint(await publicJwk(), 'sha256'), jti: 'one', iat: NOW });
    assert.equal(proofRememberedUntil(checked), NOW + 60);
  });

  test('§4.3 step 9: htu is compared without query and fragment, at the issuer URL or the mTLS alias', async () => {
    await verifyDPoPProof(await proof({ htu: `${URL_TOKEN}?x=1#f` }), POLICY);
    await verifyDPoPProof(await proof({ htu: 'HTTPS://AS.example:443/token' }), POLICY);
    await verifyDPoPProof(await proof({ htu: 'https://mtls.as.example/token' }), POLICY);
    await rejectsOAuth(
      verifyDPoPProof(await proof({ htu: 'https://as.example/userinfo' }), POLICY),
      'invalid_dpop_proof',
      400,
      /htu/,
    );
    await rejectsOAuth(verifyDPoPProof(await proof({ htu: 'not a url' }), POLICY), 'invalid_dpop_proof', 400, /htu/);
  });

  test('§4.3 step 8: htm is the request method', async () => {
    await rejectsOAuth(verifyDPoPProof(await proof({ htm: 'GET' }), POLICY), 'invalid_dpop_proof', 400, /htm/);
  });

  test('§4.2: typ must be dpop+jwt', async () => {
    await rejectsOAuth(verifyDPoPProof(await proof({}, { typ: 'JWT' }), POLICY), 'invalid_dpop_proof', 400, /typ/);
  });

  test('§4.2: an asymmetric algorithm the server supports; HS256 and none are refused', async () => {
    const hs = await new SignJWT({ jti: 'x', htm: 'POST', htu: URL_TOKEN, iat: NOW })
      .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: 'AAAA' } } as never)
      .sign(new Uint8Array(32));
    await rejectsOAuth(verifyDPoPProof(hs, POLICY), 'invalid_dpop_proof', 400, /alg/);
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'dpop+jwt', jwk: await publicJwk() })).toString('base64url')}.${Buffer.from('{}').toString('base64url')}.`;
    await rejectsOAuth(verifyDPoPProof(none, POLICY), 'invalid_dpop_proof', 400, /alg/);
  });

  test('§4.3 step 7: the jwk header is a public key (no private members), and the one that signed', async () => {
    const priv = (await exportJWK(ec.privateKey)) as JWK;
    await rejectsOAuth(verifyDPoPProof(await proof({}, { jwk: priv }), POLICY), 'invalid_dpop_proof', 400, /private/);
    await rejectsOAuth(verifyDPoPProof(await proof({}, { jwk: undefined }), POLICY), 'invalid_dpop_proof', 400, /jwk/);
    const offCurve = { ...(await publicJwk()), x: 'AAAA', y: 'AAAA' };
    await rejectsOAuth(
      verifyDPoPProof(await proof({}, { jwk: offCurve }), POLICY),
      'invalid_dpop_proof',
      400,
      /usable/,
    );
    const oct = { kty: 'oct', kid: 'x' };
    await rejectsOAuth(
      verifyDPoPProof(await proof({}, { jwk: oct }), POLICY),
      'invalid_dpop_proof',
      400,
      /EC, RSA or OKP/,
    );
    const signedByOther = await proof({}, {}, other.privateKey);
    await rejectsOAuth(verifyDPoPProof(signedByOther, POLICY), 'invalid_dpop_proof', 400, /signature/);
  });

  test('§4.3 step 3: jti, htm, htu and iat are required', async () => {
    for (const claim of ['jti', 'htm', 'htu', 'iat']) {
      await rejectsOAuth(
        verifyDPoPProof(await proof({ [claim]: undefined }), POLICY),
        'invalid_dpop_proof',
        400,
        new RegExp(claim),
      );
    }
  });

  test('§4.3 step 11: iat within 60 s back and 30 s ahead', async () => {
    await verifyDPoPProof(await proof({ iat: NOW - 60 }), POLICY);
    await verifyDPoPProof(await proof({ iat: NOW + 30 }), POLICY);
    await rejectsOAuth(verifyDPoPProof(await proof({ iat: NOW - 61 }), POLICY), 'invalid_dpop_proof', 400, /old/);
    await rejectsOAuth(verifyDPoPProof(await proof({ iat: NOW + 31 }), POLICY), 'invalid_dpop_proof', 400, /future/);
  });

  test('§4.3 step 12 / §7: at a resource, ath is the base64url SHA-256 of the access token', async () => {
    const withAth = { ...POLICY, accessToken: 'the-token' };
    await verifyDPoPProof(await proof({ ath: sha256b64u('the-token') }), withAth);
    await rejectsOAuth(verifyDPoPProof(await proof(), withAth), 'invalid_dpop_proof', 400, /ath is required/);
    await rejectsOAuth(
      verifyDPoPProof(await proof({ ath: sha256b64u('other') }), withAth),
      'invalid_dpop_proof',
      400,
      /ath/,
    );
  });

  test('§4.3 step 1: one DPoP header only (repeated headers arrive comma-joined); a non-JWT is malformed', async () => {
    const jwt = await proof();
    await rejectsOAuth(verifyDPoPProof(`${jwt},${jwt}`, POLICY), 'invalid_dpop_proof', 400, /exactly one/);
    await rejectsOAuth(verifyDPoPProof('abc', POLICY), 'invalid_dpop_proof', 400, /JWT/);
    await rejectsOAuth(verifyDPoPProof('', POLICY), 'invalid_dpop_proof', 400, /JWT/);
    await rejectsOAuth(verifyDPoPProof('!!.e30.sig', POLICY), 'invalid_dpop_proof', 400, /JWT/);
  });

  test('§8: with server nonces, a missing or foreign nonce is use_dpop_nonce; a valid one passes', async () => {
    const key = new Uint8Array(32).fill(7);
    const withNonce = { ...POLICY, nonceValid: (n: string) => dpopNonceValid(key, n, NOW) };
    await verifyDPoPProof(await proof({ nonce: dpopNonce(key, NOW) }), withNonce);
    await rejectsOAuth(verifyDPoPProof(await proof(), withNonce), 'use_dpop_nonce', 400, /required/);
    await rejectsOAuth(verifyDPoPProof(await proof({ nonce: 'made-up' }), withNonce), 'use_dpop_nonce', 400, /invalid/);
  });

  test('RSA (PS256) and Ed25519 (EdDSA) keys work too', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rsaProof = await new SignJWT({ jti: 'r', htm: 'POST', htu: URL_TOKEN, iat: NOW })
      .setProtectedHeader({ alg: 'PS256', typ: 'dpop+jwt', jwk: (await exportJWK(rsa.publicKey)) as JWK } as never)
      .sign(rsa.privateKey);
    assert.equal(
      (await verifyDPoPProof(rsaProof, POLICY)).jkt,
      await calculateJwkThumbprint(await exportJWK(rsa.publicKey)),
    );
    const ed = generateKeyPairSync('ed25519');
    const edProof = await new SignJWT({ jti: 'e', htm: 'POST', htu: URL_TOKEN, iat: NOW })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'dpop+jwt', jwk: (await exportJWK(ed.publicKey)) as JWK } as never)
      .sign(ed.privateKey);
    await verifyDPoPProof(edProof, POLICY);
  });
});

describe('RFC 9449 §5, §6: which key a token request binds to', () => {
  const plain = {};
  test('no proof: a Bearer token; a proof: bound to its key', () => {
    assert.equal(dpopBinding(plain, undefined), undefined);
    assert.equal(dpopBinding(plain, 'jkt-a'), 'jkt-a');
  });
  test('§5.2 dpop_bound_access_tokens: a proof is required (invalid_dpop_proof)', () => {
    throwsOAuth(() => dpopBinding({ dpop_bound_access_tokens: true }, undefined), 'invalid_dpop_proof', 400);
    assert.equal(dpopBinding({ dpop_bound_access_tokens: true }, 'jkt-a'), 'jkt-a');
  });
  test('a DPoP-bound grant: refresh with a proof of its key only (another key: invalid_grant; none: invalid_dpop_proof)', () => {
    assert.equal(dpopBinding(plain, 'jkt-a', 'jkt-a'), 'jkt-a');
    throwsOAuth(() => dpopBinding(plain, 'jkt-b', 'jkt-a'), 'invalid_grant', 400, /another DPoP key/);
    throwsOAuth(() => dpopBinding(plain, undefined, 'jkt-a'), 'invalid_dpop_proof', 400, /DPoP-bound/);
  });
  test('certificate-bound clients (RFC 8705, FAPI-CIBA) cannot use DPoP as well', () => {
    throwsOAuth(
      () => dpopBinding({ tls_client_certificate_bound_access_tokens: true }, 'jkt-a'),
      'invalid_request',
      400,
      /certificate/,
    );
    throwsOAuth(() => dpopBinding({ security_profile: 'fapi-ciba' }, 'jkt-a'), 'invalid_request', 400);
    assert.equal(dpopBinding({ tls_client_certificate_bound_access_tokens: true }, undefined), undefined);
  });
  test('§6.1 boundJkt reads cnf.jkt only', () => {
    assert.equal(boundJkt({ jkt: 'x' }), 'x');
    assert.equal(boundJkt({ 'x5t#S256': 'y' }), undefined);
    assert.equal(boundJkt(undefined), undefined);
  });
});

describe('RFC 9449 §8: stateless server nonces', () => {
  const key = new Uint8Array(32).fill(1);
  test('a nonce is accepted in its slot and the next one, then refused', () => {
    const nonce = dpopNonce(key, NOW);
    assert.match(nonce, /^[\x21\x23-\x5B\x5D-\x7E]+$/, 'NQCHAR only');
    assert.equal(dpopNonceValid(key, nonce, NOW), true);
    assert.equal(dpopNonceValid(key, nonce, NOW + DPOP_NONCE_PERIOD_S), true);
    assert.equal(dpopNonceValid(key, nonce, NOW + 2 * DPOP_NONCE_PERIOD_S), false);
    assert.equal(dpopNonceValid(key, nonce, NOW - DPOP_NONCE_PERIOD_S), false, 'not before its slot');
  });
  test('another key, an altered MAC or garbage are refused', () => {
    const nonce = dpopNonce(key, NOW);
    assert.equal(dpopNonceValid(new Uint8Array(32).fill(2), nonce, NOW), false);
    assert.equal(dpopNonceValid(key, `${nonce.slice(0, -1)}${nonce.endsWith('A') ? 'B' : 'A'}`, NOW), false);
    assert.equal(dpopNonceValid(key, 'garbage', NOW), false);
  });
});

// functions/core/jwt-assertion.ts: client authentication with a JWT (RFC 7523 §2.2, §3; OIDC Core §9
// client_secret_jwt / private_key_jwt; FAPI 1 Advanced §5.2.2-14). Any failure is 401 invalid_client.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import {
  assertionClientId,
  assertionParams,
  CLIENT_ASSERTION_TYPE,
  verifyClientAssertion,
  type AssertionKey,
  type AssertionPolicy,
} from '../../functions/core/jwt-assertion.ts';
import { rejectsOAuth, throwsOAuth } from './helpers/oauth-assert.ts';

const ISSUER = 'https://op.example.com';
const TOKEN_ENDPOINT = `${ISSUER}/token`;
const BC_ENDPOINT = `${ISSUER}/bc-authorize`;
const CLIENT = 'client-1';
const NOW = 1_800_000_000;

const SECRET = new Uint8Array(randomBytes(32));
const ps = await generateKeyPair('PS256');
const es = await generateKeyPair('ES256');
const rs = await generateKeyPair('RS256');
const stranger = await generateKeyPair('PS256');
const CLIENT_KEYS = createLocalJWKSet({
  keys: [
    { ...(await exportJWK(ps.publicKey)), kid: 'ps', alg: 'PS256' },
    { ...(await exportJWK(es.publicKey)), kid: 'es', alg: 'ES256' },
    { ...(await exportJWK(rs.publicKey)), kid: 'rs', alg: 'RS256' },
  ],
});

const FAPI: AssertionPolicy = {
  clientId: CLIENT,
  audiences: [ISSUER, TOKEN_ENDPOINT, BC_ENDPOINT],
  algorithms: ['PS256', 'ES256'],
  now: NOW,
  clockTolerance: 30,
  maxLifetime: 600,
};
const SECRET_JWT: AssertionPolicy = { ...FAPI, algorithms: ['HS256'] };

function claims(over: Record<string, unknown> = {}, omit: string[] = []): JWTPayload {
  const c: Record<string, unknown> = {
    iss: CLIENT,
    sub: CLIENT,
    aud: TOKEN_ENDPOINT,
    iat: NOW,
    exp: NOW + 60,
    jti: randomUUID(),
    ...over,
  };
  for (const k of omit) delete c[k];
  return c as JWTPayload;
}

const ps256 = (payload: JWTPayload, key = ps.privateKey, kid = 'ps') =>
  new SignJWT(payload).setProtectedHeader({ alg: 'PS256', kid }).sign(key);
const es256 = (payload: JWTPayload) =>
  new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid: 'es' }).sign(es.privateKey);
const rs256 = (payload: JWTPayload) =>
  new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: 'rs' }).sign(rs.privateKey);
const hs256 = (payload: JWTPayload, secret = SECRET) =>
  new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(secret);

async function rejected(
  jwt: string | Promise<string>,
  message: RegExp,
  key: AssertionKey = CLIENT_KEYS,
  policy = FAPI,
): Promise<void> {
  await rejectsOAuth(verifyClientAssertion(await jwt, key, policy), 'invalid_client', 401, message);
}

// ---- success ----

test('OIDC Core §9 client_secret_jwt: an HS256 assertion keyed with the client secret authenticates the client', async () => {
  const payload = claims();
  const result = await verifyClientAssertion(await hs256(payload), SECRET, SECRET_JWT);
  assert.deepEqual(result, { jti: payload.jti, exp: NOW + 60 });
});

test('OIDC Core §9 private_key_jwt: PS256 and ES256 assertions verified with the client keys', async () => {
  const p = claims();
  assert.deepEqual(await verifyClientAssertion(await ps256(p), CLIENT_KEYS, FAPI), { jti: p.jti, exp: NOW + 60 });
  const e = claims();
  assert.deepEqual(await verifyClientAssertion(await es256(e), CLIENT_KEYS, FAPI), { jti: e.jti, exp: NOW + 60 });
});

test('OIDC Core §9 private_key_jwt: RS256 passes when the caller allows it (non-FAPI client)', async () => {
  const p = claims();
  const result = await verifyClientAssertion(await rs256(p), CLIENT_KEYS, {
    ...FAPI,
    algorithms: ['PS256', 'ES256', 'RS256'],
  });
  assert.equal(result.jti, p.jti);
});

test('RFC 7523 §3 aud: the issuer, token and backchannel endpoints, as a string or a one-element array', async () => {
  for (const aud of [ISSUER, TOKEN_ENDPOINT, BC_ENDPOINT, [ISSUER], [TOKEN_ENDPOINT], [BC_ENDPOINT]]) {
    const p = claims({ aud });
    assert.equal(
      (await verifyClientAssertion(await ps256(p), CLIENT_KEYS, FAPI)).jti,
      p.jti,
      `aud ${JSON.stringify(aud)}`,
    );
  }
});

test('RFC 7523 §3 nbf and iat in the past are honoured and pass', async () => {
  const p = claims({ iat: NOW - 100, nbf: NOW - 100 });
  assert.equal((await verifyClientAssertion(await ps256(p), CLIENT_KEYS, FAPI)).jti, p.jti);
});

test('RFC 7523 §3 clock tolerance: exp 20 s ago and nbf/iat 20 s ahead still pass with 30 s tolerance', async () => {
  await verifyClientAssertion(await ps256(claims({ iat: NOW - 80, exp: NOW - 20 })), CLIENT_KEYS, FAPI);
  await verifyClientAssertion(await ps256(claims({ iat: NOW + 20, nbf: NOW + 20, exp: NOW + 80 })), CLIENT_KEYS, FAPI);
});

test('RFC 7523 §3 exp exactly maxLifetime (+ tolerance) from now passes', async () => {
  await verifyClientAssertion(await ps256(claims({ exp: NOW + 630 })), CLIENT_KEYS, FAPI);
});

// ---- iss / sub ----

test('RFC 7523 §3 iss missing → 401 invalid_client', async () => {
  await rejected(ps256(claims({}, ['iss'])), /iss is required/);
});

test('RFC 7523 §3 iss not the client_id → 401 invalid_client', async () => {
  await rejected(ps256(claims({ iss: 'client-2' })), /iss must be the client_id/);
});

test('RFC 7523 §3 sub missing or not the client_id (sub ≠ iss) → 401 invalid_client', async () => {
  await rejected(ps256(claims({}, ['sub'])), /sub is required/);
  await rejected(ps256(claims({ sub: 'alice' })), /sub must be the client_id/);
});

// ---- aud ----

test('RFC 7523 §3 aud missing → 401 invalid_client', async () => {
  await rejected(ps256(claims({}, ['aud'])), /aud is required/);
});

test('RFC 7523 §3 aud naming another server (or a near-miss URL) → 401 invalid_client', async () => {
  await rejected(ps256(claims({ aud: 'https://other.example.com/token' })), /aud must name/);
  await rejected(ps256(claims({ aud: `${TOKEN_ENDPOINT}/` })), /aud must name/);
  await rejected(ps256(claims({ aud: ['https://other.example.com'] })), /aud must name/);
  await rejected(ps256(claims({ aud: 42 })), /aud must name/);
  await rejected(ps256(claims({ aud: [] })), /aud must name/);
  await rejected(ps256(claims({ aud: [42] })), /aud must name/);
});

test('draft-ietf-oauth-rfc7523bis / FAPI 2.0: aud with a foreign audience next to ours → 401', async () => {
  await rejected(ps256(claims({ aud: ['https://other.example.com', BC_ENDPOINT] })), /aud must be a single audience/);
  await rejected(ps256(claims({ aud: [ISSUER, 'https://other.example.com'] })), /aud must be a single audience/);
  const mixed = claims({ aud: [TOKEN_ENDPOINT, 'https://other.example.com/token'] });
  await rejected(hs256(mixed), /aud must be a single audience/, SECRET, SECRET_JWT);
});

test('draft-ietf-oauth-rfc7523bis / FAPI 2.0: aud as an array of several of our own values → 401', async () => {
  const two = /aud must be a single audience \(this server\), not an array of 2/;
  await rejected(ps256(claims({ aud: [ISSUER, TOKEN_ENDPOINT] })), two);
  await rejected(ps256(claims({ aud: [ISSUER, ISSUER] })), /aud must be a single audience/);
});

// ---- exp / nbf / iat ----

test('RFC 7523 §3 exp missing → 401 invalid_client', async () => {
  await rejected(ps256(claims({}, ['exp'])), /exp is required/);
});

test('RFC 7523 §3 expired (beyond the clock tolerance) → 401 invalid_client', async () => {
  await rejected(ps256(claims({ iat: NOW - 200, exp: NOW - 31 })), /expired/);
  await rejected(hs256(claims({ iat: NOW - 200, exp: NOW - 100 })), /expired/, SECRET, SECRET_JWT);
});

test('RFC 7523 §3 exp too far in the future (more than maxLifetime from now) → 401 invalid_client', async () => {
  await rejected(ps256(claims({ exp: NOW + 631 })), /more than 600 s/);
  await rejected(ps256(claims({ exp: NOW + 86_400 })), /more than 600 s/);
});

test('RFC 7523 §3 nbf in the future beyond tolerance → 401 invalid_client', async () => {
  await rejected(ps256(claims({ nbf: NOW + 120, exp: NOW + 300 })), /nbf is in the future/);
});

test('RFC 7523 §3 iat in the future beyond tolerance → 401 invalid_client', async () => {
  await rejected(ps256(claims({ iat: NOW + 120, exp: NOW + 300 })), /iat is in the future/);
});

test('RFC 7519 §2 NumericDate: a non-numeric exp → 401 invalid_client', async () => {
  await rejected(ps256(claims({ exp: String(NOW + 60) })), /exp must be a number/);
});

// ---- jti ----

test('RFC 7523 §3 jti missing → 401 invalid_client', async () => {
  await rejected(ps256(claims({}, ['jti'])), /jti is required/);
});

test('RFC 7523 §3 jti empty, not a string or longer than 256 characters → 401 invalid_client', async () => {
  await rejected(ps256(claims({ jti: '' })), /jti must be/);
  await rejected(ps256(claims({ jti: 12345 })), /jti must be/);
  await rejected(ps256(claims({ jti: 'x'.repeat(257) })), /jti must be/);
  await verifyClientAssertion(await ps256(claims({ jti: 'x'.repeat(256) })), CLIENT_KEYS, FAPI);
});

// ---- algorithms and signature ----

test('FAPI 1 Advanced §5.2.2-14 alg not allowed for the client (RS256 under PS256/ES256) → 401 invalid_client', async () => {
  await rejected(rs256(claims()), /alg is not allowed/);
});

test('OIDC Core §9 HS256 for a private_key_jwt client, and PS256 for a client_secret_jwt client → 401 invalid_client', async () => {
  await rejected(hs256(claims()), /alg is not allowed/);
  await rejected(ps256(claims()), /alg is not allowed/, SECRET, SECRET_JWT);
});

test('RFC 7523 §3 alg none (unsecured JWT) → 401 invalid_client', async () => {
  await rejected(new UnsecuredJWT(claims()).encode(), /alg none/);
  await rejected(new UnsecuredJWT(claims()).encode(), /alg none/, SECRET, {
    ...SECRET_JWT,
    algorithms: ['HS256', 'none'],
  });
});

test('RFC 7523 §3 bad signature: tampered payload → 401 invalid_client', async () => {
  const [h, , s] = (await ps256(claims())).split('.');
  const forged = Buffer.from(JSON.stringify(claims({ exp: NOW + 120 }))).toString('base64url');
  await rejected(`${h}.${forged}.${s}`, /signature is invalid/);
});

test('OIDC Core §9 client_secret_jwt with the wrong secret → 401 invalid_client', async () => {
  await rejected(hs256(claims(), new Uint8Array(randomBytes(32))), /signature is invalid/, SECRET, SECRET_JWT);
});

test('OIDC Core §9 private_key_jwt signed by a key the client did not register → 401 invalid_client', async () => {
  await rejected(ps256(claims(), stranger.privateKey, 'stranger'), /not signed by a key registered/);
  await rejected(ps256(claims(), stranger.privateKey, 'ps'), /signature is invalid/);
});

test('RFC 7523 §3.1 a malformed JWT → 401 invalid_client', async () => {
  for (const jwt of [
    '',
    'not-a-jwt',
    'a.b.c',
    'a.b',
    `${Buffer.from('{"alg":"PS256"}').toString('base64url')}.bm90LWpzb24.c2ln`,
  ]) {
    await rejected(jwt, /not a well-formed signed JWT/);
  }
});

// ---- form parameters ----

test('RFC 7521 §4.2 assertionParams: absent → undefined; jwt-bearer type with an assertion → the assertion', () => {
  assert.equal(assertionParams(new Map([['client_id', CLIENT]])), undefined);
  assert.deepEqual(
    assertionParams(
      new Map([
        ['client_assertion_type', CLIENT_ASSERTION_TYPE],
        ['client_assertion', 'x.y.z'],
      ]),
    ),
    { assertion: 'x.y.z' },
  );
});

test('RFC 7523 §2.2 assertionParams: a client_assertion_type other than jwt-bearer → 401 invalid_client', () => {
  throwsOAuth(
    () =>
      assertionParams(
        new Map([
          ['client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer'],
          ['client_assertion', 'x'],
        ]),
      ),
    'invalid_client',
    401,
    /client_assertion_type must be/,
  );
});

test('RFC 7521 §4.2 assertionParams: one of client_assertion / client_assertion_type without the other → 401 invalid_client', () => {
  throwsOAuth(
    () => assertionParams(new Map([['client_assertion', 'x.y.z']])),
    'invalid_client',
    401,
    /requires client_assertion_type/,
  );
  throwsOAuth(
    () => assertionParams(new Map([['client_assertion_type', CLIENT_ASSERTION_TYPE]])),
    'invalid_client',
    401,
    /requires client_assertion$/,
  );
});

test('RFC 7523 §3 assertionClientId: the unverified sub (else iss) names the client to look up', async () => {
  assert.equal(assertionClientId(await ps256(claims())), CLIENT);
  assert.equal(assertionClientId(await ps256(claims({}, ['sub']))), CLIENT);
  assert.equal(assertionClientId(new UnsecuredJWT(claims({ sub: 'client-9' })).encode()), 'client-9');
});

test('RFC 7523 §3 assertionClientId: malformed JWT or no usable client id → undefined', async () => {
  assert.equal(assertionClientId('not-a-jwt'), undefined);
  assert.equal(assertionClientId(await ps256(claims({}, ['sub', 'iss']))), undefined);
  assert.equal(assertionClientId(await ps256(claims({ sub: 7, iss: 'x'.repeat(200) }))), undefined);
});

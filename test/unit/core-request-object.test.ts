// functions/core/request-object.ts: signed authentication requests (CIBA Core §7.1.1; FAPI-CIBA §5.2.2). The failure
// tests mirror the FAPI-CIBA conformance modules one by one. Any failure is 400 invalid_request.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import {
  checkOnlyRequestObject,
  verifyRequestObject,
  type RequestObjectPolicy,
} from '../../functions/core/request-object.ts';
import { rejectsOAuth, throwsOAuth } from './helpers/oauth-assert.ts';

const ISSUER = 'https://op.example.com';
const CLIENT = 'fapi-client';
const NOW = 1_800_000_000;
const MIN = 60;

const ps = await generateKeyPair('PS256');
const es = await generateKeyPair('ES256');
const rs = await generateKeyPair('RS256');
const stranger = await generateKeyPair('PS256');
/** The client's registered keys; the stranger's key is not among them. */
const REGISTERED = createLocalJWKSet({
  keys: [
    { ...(await exportJWK(ps.publicKey)), kid: 'ps', alg: 'PS256' },
    { ...(await exportJWK(es.publicKey)), kid: 'es', alg: 'ES256' },
    { ...(await exportJWK(rs.publicKey)), kid: 'rs', alg: 'RS256' },
  ],
});

const FAPI: RequestObjectPolicy = {
  issuer: ISSUER,
  clientId: CLIENT,
  algorithms: ['PS256', 'ES256'],
  now: NOW,
  clockTolerance: 30,
  maxLifetime: 3600,
  maxAge: 3600,
};

function claims(over: Record<string, unknown> = {}, omit: string[] = []): JWTPayload {
  const c: Record<string, unknown> = {
    iss: CLIENT,
    aud: ISSUER,
    iat: NOW,
    nbf: NOW,
    exp: NOW + 5 * MIN,
    jti: randomUUID(),
    scope: 'openid',
    login_hint: 'alice@example.com',
    binding_message: 'W4SCT',
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

async function rejected(jwt: string | Promise<string>, message: RegExp, policy = FAPI): Promise<void> {
  await rejectsOAuth(verifyRequestObject(await jwt, REGISTERED, policy), 'invalid_request', 400, message);
}

// ---- a valid request object ----

test('CIBA §7.1.1 a valid PS256 request object: its claims become the request parameters, envelope claims dropped', async () => {
  const payload = claims({ acr_values: 'urn:mace:incommon:iap:silver' });
  const result = await verifyRequestObject(await ps256(payload), REGISTERED, FAPI);
  assert.equal(result.jti, payload.jti);
  assert.equal(result.exp, NOW + 5 * MIN);
  assert.deepEqual(Object.fromEntries(result.params), {
    scope: 'openid',
    login_hint: 'alice@example.com',
    binding_message: 'W4SCT',
    acr_values: 'urn:mace:incommon:iap:silver',
  });
});

test('FAPI-CIBA §5.2.2 ES256 is accepted; aud may be a one-element array holding the issuer', async () => {
  const result = await verifyRequestObject(await es256(claims({ aud: [ISSUER] })), REGISTERED, FAPI);
  assert.equal(result.params.get('scope'), 'openid');
});

test('CIBA §7.1.1 RS256 is accepted when the policy allows it (non-FAPI client with no registered alg)', async () => {
  const result = await verifyRequestObject(await rs256(claims()), REGISTERED, {
    ...FAPI,
    algorithms: ['PS256', 'ES256', 'RS256'],
  });
  assert.equal(result.params.get('login_hint'), 'alice@example.com');
});

test('CIBA §7.1.1 requested_expiry as a JSON number becomes its decimal string', async () => {
  const result = await verifyRequestObject(await ps256(claims({ requested_expiry: 120 })), REGISTERED, FAPI);
  assert.equal(result.params.get('requested_expiry'), '120');
});

test('CIBA §7.1.1 requested_expiry as a string is kept as a decimal string', async () => {
  const result = await verifyRequestObject(await ps256(claims({ requested_expiry: '300' })), REGISTERED, FAPI);
  assert.equal(result.params.get('requested_expiry'), '300');
});

test('CIBA §7.1.1 requested_expiry that is not a positive integer (1.5, -5, 0, "12s", true, [60]) → 400 invalid_request', async () => {
  for (const requested_expiry of [1.5, -5, 0, '12s', '1e3', true, [60]]) {
    await rejected(ps256(claims({ requested_expiry })), /requested_expiry must be a positive integer/);
  }
});

test('CIBA §7.1.1 JSON-valued claims (authorization_details, request_context) become their JSON text', async () => {
  const authorization_details = [
    { type: 'payment_initiation', instructedAmount: { currency: 'EUR', amount: '123.50' } },
  ];
  const request_context = { location: { lat: 1.5, lon: 2 } };
  const result = await verifyRequestObject(
    await ps256(claims({ authorization_details, request_context })),
    REGISTERED,
    FAPI,
  );
  assert.deepEqual(JSON.parse(result.params.get('authorization_details')!), authorization_details);
  assert.deepEqual(JSON.parse(result.params.get('request_context')!), request_context);
});

test('CIBA §7.1.1 empty or null claims count as absent, like empty form values', async () => {
  const result = await verifyRequestObject(await ps256(claims({ user_code: '', acr_values: null })), REGISTERED, FAPI);
  assert.equal(result.params.has('user_code'), false);
  assert.equal(result.params.has('acr_values'), false);
});

test('CIBA §7.1.1 a client_id claim equal to the client is accepted; another client_id → 400 invalid_request', async () => {
  const result = await verifyRequestObject(await ps256(claims({ client_id: CLIENT })), REGISTERED, FAPI);
  assert.equal(result.params.get('client_id'), CLIENT);
  await rejected(ps256(claims({ client_id: 'other-client' })), /client_id must be the authenticated client/);
});

test('CIBA §7.1.1 request or request_uri nested inside a request object → 400 invalid_request', async () => {
  await rejected(ps256(claims({ request: 'eyJ...' })), /must not contain request/);
  await rejected(ps256(claims({ request_uri: 'urn:example:req' })), /must not contain request_uri/);
});

test('FAPI-CIBA §5.2.2 nbf up to the clock tolerance ahead, and exactly 60 min old with a lifetime of 60 min, pass', async () => {
  await verifyRequestObject(await ps256(claims({ nbf: NOW + 30, exp: NOW + 10 * MIN })), REGISTERED, FAPI);
  await verifyRequestObject(
    await ps256(claims({ iat: NOW - 60 * MIN, nbf: NOW - 60 * MIN, exp: NOW })),
    REGISTERED,
    FAPI,
  );
});

// ---- FAPI-CIBA conformance: aud ----

test('FAPI-CIBA ensure-request-object-missing-aud-fails → 400 invalid_request', async () => {
  await rejected(ps256(claims({}, ['aud'])), /aud is required/);
});

test('FAPI-CIBA ensure-request-object-bad-aud-fails (wrong aud) → 400 invalid_request', async () => {
  await rejected(ps256(claims({ aud: 'https://other.example.com' })), /aud must be the issuer/);
  await rejected(ps256(claims({ aud: `${ISSUER}/bc-authorize` })), /aud must be the issuer/);
  await rejected(ps256(claims({ aud: ['https://other.example.com'] })), /aud must be the issuer/);
});

test('draft-ietf-oauth-rfc7523bis: aud naming the issuer and more (or it twice) → 400 invalid_request', async () => {
  await rejected(es256(claims({ aud: [ISSUER, 'https://other.example.com'] })), /aud must be a single audience/);
  await rejected(ps256(claims({ aud: ['https://other.example.com', ISSUER] })), /aud must be a single audience/);
  await rejected(ps256(claims({ aud: [ISSUER, ISSUER] })), /aud must be a single audience/);
});

// ---- iss ----

test('FAPI-CIBA ensure-request-object-missing-iss-fails → 400 invalid_request', async () => {
  await rejected(ps256(claims({}, ['iss'])), /iss is required/);
});

test('FAPI-CIBA ensure-request-object-bad-iss-fails (wrong iss) → 400 invalid_request', async () => {
  await rejected(ps256(claims({ iss: 'other-client' })), /iss must be the client_id/);
});

// ---- exp ----

test('FAPI-CIBA ensure-request-object-missing-exp-fails → 400 invalid_request', async () => {
  await rejected(ps256(claims({}, ['exp'])), /exp is required/);
});

test('FAPI-CIBA ensure-request-object-expired-exp-fails → 400 invalid_request', async () => {
  await rejected(ps256(claims({ iat: NOW - 10 * MIN, nbf: NOW - 10 * MIN, exp: NOW - 5 * MIN })), /expired/);
});

test('FAPI-CIBA ensure-request-object-exp-is-70-minutes-in-future-fails (exp − nbf > 60 min) → 400 invalid_request', async () => {
  await rejected(ps256(claims({ exp: NOW + 70 * MIN })), /lifetime \(exp - nbf\) exceeds 3600 s/);
});

// ---- iat ----

test('FAPI-CIBA ensure-request-object-missing-iat-fails → 400 invalid_request', async () => {
  await rejected(ps256(claims({}, ['iat'])), /iat is required/);
});

test('CIBA §7.1.1 iat in the future beyond the clock tolerance → 400 invalid_request', async () => {
  await rejected(ps256(claims({ iat: NOW + 10 * MIN, exp: NOW + 20 * MIN })), /iat is in the future/);
});

// ---- nbf ----

test('FAPI-CIBA ensure-request-object-missing-nbf-fails → 400 invalid_request', async () => {
  await rejected(ps256(claims({}, ['nbf'])), /nbf is required/);
});

test('FAPI-CIBA ensure-request-object-nbf-is-10-minutes-in-future-fails → 400 invalid_request', async () => {
  await rejected(ps256(claims({ nbf: NOW + 10 * MIN, exp: NOW + 20 * MIN })), /nbf is in the future/);
});

test('FAPI-CIBA ensure-request-object-nbf-is-70-minutes-in-past-fails → 400 invalid_request', async () => {
  await rejected(
    ps256(claims({ iat: NOW - 70 * MIN, nbf: NOW - 70 * MIN, exp: NOW + 5 * MIN })),
    /nbf is more than 3600 s in the past/,
  );
});

// ---- jti ----

test('FAPI-CIBA ensure-request-object-missing-jti-fails → 400 invalid_request', async () => {
  await rejected(ps256(claims({}, ['jti'])), /jti is required/);
});

test('CIBA §7.1.1 jti empty, not a string or longer than 256 characters → 400 invalid_request', async () => {
  await rejected(ps256(claims({ jti: '' })), /jti must be/);
  await rejected(ps256(claims({ jti: 7 })), /jti must be/);
  await rejected(ps256(claims({ jti: 'j'.repeat(257) })), /jti must be/);
});

// ---- signature and algorithm ----

test('FAPI-CIBA ensure-request-object-signature-algorithm-is-none-fails (alg none) → 400 invalid_request', async () => {
  await rejected(new UnsecuredJWT(claims()).encode(), /alg none/);
  await rejected(new UnsecuredJWT(claims()).encode(), /alg none/, { ...FAPI, algorithms: ['PS256', 'none'] });
});

test('FAPI-CIBA ensure-request-object-signature-algorithm-is-bad-fails (invalid signature) → 400 invalid_request', async () => {
  const [h, , s] = (await ps256(claims())).split('.');
  const forged = Buffer.from(JSON.stringify(claims({ login_hint: 'mallory@example.com' }))).toString('base64url');
  await rejected(`${h}.${forged}.${s}`, /signature is invalid/);
});

test('FAPI-CIBA ensure-request-object-signature-algorithm-is-RS256-fails (FAPI policy PS256/ES256) → 400 invalid_request', async () => {
  await rejected(rs256(claims()), /alg is not allowed for this client \(allowed: PS256, ES256\)/);
});

test('CIBA §7.1.1 only the registered backchannel_authentication_request_signing_alg: ES256 when PS256 was registered → 400 invalid_request', async () => {
  await rejected(es256(claims()), /alg is not allowed/, { ...FAPI, algorithms: ['PS256'] });
});

test('CIBA §7.1.1 symmetric algorithms (HS256) → 400 invalid_request, even if the policy lists them', async () => {
  const jwt = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256' }).sign(new Uint8Array(randomBytes(32)));
  await rejected(jwt, /asymmetric/);
  await rejected(jwt, /asymmetric/, { ...FAPI, algorithms: ['HS256', 'PS256'] });
});

test('FAPI-CIBA ensure-request-object-signed-by-other-client-fails (key not registered: the resolver finds none) → 400 invalid_request', async () => {
  await rejected(ps256(claims(), stranger.privateKey, 'stranger'), /not signed by a key registered for this client/);
  // Same kid as a registered key: the resolver returns that key and the signature fails.
  await rejected(ps256(claims(), stranger.privateKey, 'ps'), /signature is invalid/);
  // A resolver that knows no keys at all (client registered none).
  await rejectsOAuth(
    verifyRequestObject(
      await ps256(claims()),
      async () => {
        throw new Error('no jwks registered');
      },
      FAPI,
    ),
    'invalid_request',
    400,
    /not signed by a key registered/,
  );
});

test('CIBA §7.1.1 request that is not a JWS (garbage, two parts, JWE-shaped, non-JSON payload) → 400 invalid_request', async () => {
  const h = Buffer.from('{"alg":"PS256"}').toString('base64url');
  for (const jwt of ['', 'not-a-jwt', 'a.b', 'a.b.c.d.e', `${h}.bm90LWpzb24.c2ln`]) {
    await rejected(jwt, /request must be a signed JWT/);
  }
});

// ---- parameters outside the request object ----

test('FAPI-CIBA ensure-authorization-request-with-parameters-outside-request-object-fails → 400 invalid_request naming the parameter', () => {
  for (const name of [
    'scope',
    'login_hint',
    'binding_message',
    'client_notification_token',
    'requested_expiry',
    'request_uri',
  ]) {
    throwsOAuth(
      () =>
        checkOnlyRequestObject(
          new Map([
            ['request', 'x.y.z'],
            ['client_id', CLIENT],
            [name, 'v'],
          ]),
        ),
      'invalid_request',
      400,
      new RegExp(`parameter ${name} must be sent inside the signed request object`),
    );
  }
});

test('CIBA §7.1.1 only request and client authentication parameters may sit outside the request object', () => {
  checkOnlyRequestObject(
    new Map([
      ['request', 'x.y.z'],
      ['client_id', CLIENT],
    ]),
  );
  checkOnlyRequestObject(
    new Map([
      ['request', 'x.y.z'],
      ['client_id', CLIENT],
      ['client_secret', 's'],
    ]),
  );
  checkOnlyRequestObject(
    new Map([
      ['request', 'x.y.z'],
      ['client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'],
      ['client_assertion', 'a.b.c'],
    ]),
  );
  // Without a request object there is nothing to check.
  checkOnlyRequestObject(
    new Map([
      ['scope', 'openid'],
      ['login_hint', 'alice'],
    ]),
  );
});

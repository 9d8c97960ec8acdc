// functions/core/device-assertion.ts: the device API's Bearer assertion (docs/device-api.md): ES256 JWS by the
// device key, iss = device_id, aud = issuer, iat, exp ≤ 120 s after iat, single-use jti, htm, htu = URL without query.
// Any failure is 401 invalid_token.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import {
  DEVICE_ASSERTION_MAX_LIFETIME_S,
  verifyDeviceAssertion,
  type DeviceAssertionContext,
} from '../../functions/core/device-assertion.ts';
import type { Device } from '../../functions/core/model.ts';
import { isOAuthError } from './helpers/oauth-assert.ts';

const ISSUER = 'https://op.example.com';
const URL_ = `${ISSUER}/device/requests`;
const NOW = 1_800_000_000;

const alice = await generateKeyPair('ES256');
const bob = await generateKeyPair('ES256');
const stranger = await generateKeyPair('ES256');
const DEVICES: Device[] = [
  { device_id: 'alice-phone', sub: 'alice', jwk: await exportJWK(alice.publicKey) },
  { device_id: 'bob-phone', sub: 'bob', jwk: await exportJWK(bob.publicKey) },
];

type JtiCall = { deviceId: string; jti: string; exp: number };

/** A fresh context with an in-memory device store and replay cache. */
function context(extra: Partial<DeviceAssertionContext> = {}): DeviceAssertionContext & { jtiCalls: JtiCall[] } {
  const seen = new Set<string>();
  const jtiCalls: JtiCall[] = [];
  return {
    issuer: ISSUER,
    method: 'GET',
    url: URL_,
    nowS: NOW,
    loadDevice: async (id) => DEVICES.find((d) => d.device_id === id),
    useJti: async ({ device_id: deviceId }, jti, exp) => {
      jtiCalls.push({ deviceId, jti, exp });
      const k = `${deviceId}\n${jti}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    },
    jtiCalls,
    ...extra,
  };
}

function claims(over: Record<string, unknown> = {}, omit: string[] = []): JWTPayload {
  const c: Record<string, unknown> = {
    iss: 'alice-phone',
    aud: ISSUER,
    iat: NOW,
    exp: NOW + 60,
    jti: randomUUID(),
    htm: 'GET',
    htu: URL_,
    ...over,
  };
  for (const k of omit) delete c[k];
  return c as JWTPayload;
}

async function es256(payload: JWTPayload, key: Parameters<SignJWT['sign']>[0] = alice.privateKey): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'JWT' }).sign(key);
}

async function rejected(authorization: string | undefined, message: RegExp, ctx = context()): Promise<void> {
  await assert.rejects(verifyDeviceAssertion(authorization, ctx), (e: unknown) => {
    isOAuthError(e, 'invalid_token', 401, message);
    const header = (e as { headers: Record<string, string> }).headers['WWW-Authenticate'] ?? '';
    assert.match(header, /^Bearer error="invalid_token"/);
    return true;
  });
}

test('device API: a valid ES256 device assertion authenticates the device', async () => {
  const ctx = context();
  const payload = claims();
  const device = await verifyDeviceAssertion(`Bearer ${await es256(payload)}`, ctx);
  assert.deepEqual(device, DEVICES[0]);
  assert.equal(ctx.jtiCalls.length, 1);
  assert.equal(ctx.jtiCalls[0]!.deviceId, 'alice-phone');
  assert.equal(ctx.jtiCalls[0]!.jti, payload.jti);
});

test('device API: jti is remembered at least as long as the assertion could still be accepted (exp + clock skew)', async () => {
  const ctx = context();
  const payload = claims({ exp: NOW + 60 });
  await verifyDeviceAssertion(`Bearer ${await es256(payload)}`, ctx);
  // Still accepted at NOW + 60 + 29 (see the skew test), so the cache entry must outlive that.
  assert.ok(ctx.jtiCalls[0]!.exp >= NOW + 60 + 29, `kept until ${ctx.jtiCalls[0]!.exp}`);
});

test('RFC 7235 the Bearer scheme name is case-insensitive', async () => {
  const device = await verifyDeviceAssertion(`bearer ${await es256(claims())}`, context());
  assert.equal(device.device_id, 'alice-phone');
});

test('device API: an unknown device (iss names no registered device) → 401', async () => {
  await rejected(`Bearer ${await es256(claims({ iss: 'mallory-phone' }))}`, /unknown device/);
});

test('device API: a missing iss → 401', async () => {
  await rejected(`Bearer ${await es256(claims({}, ['iss']))}`, /unknown device/);
});

test('device API: wrong iss: naming another registered device while signed by this one → 401', async () => {
  await rejected(`Bearer ${await es256(claims({ iss: 'bob-phone' }))}`, /invalid device assertion/);
});

test('device API: iss must equal the device_id exactly, even if the device store matches loosely (case-insensitive lookup) → 401', async () => {
  const ctx = context({ loadDevice: async (id) => DEVICES.find((d) => d.device_id === id.toLowerCase()) });
  await rejected(`Bearer ${await es256(claims({ iss: 'ALICE-PHONE' }))}`, /invalid device assertion/, ctx);
});

test('device API: wrong aud (not the issuer) → 401', async () => {
  await rejected(`Bearer ${await es256(claims({ aud: 'https://other.example.com' }))}`, /aud must be the issuer/);
  await rejected(`Bearer ${await es256(claims({ aud: `${ISSUER}/` }))}`, /aud must be the issuer/);
  await rejected(`Bearer ${await es256(claims({ aud: ['https://other.example.com'] }))}`, /aud must be the issuer/);
  await rejected(`Bearer ${await es256(claims({}, ['aud']))}`, /aud is required/);
});

test('aud as a one-element array holding the issuer is the issuer as sole audience: accepted', async () => {
  const device = await verifyDeviceAssertion(`Bearer ${await es256(claims({ aud: [ISSUER] }))}`, context());
  assert.equal(device.device_id, 'alice-phone');
});

test('draft-ietf-oauth-rfc7523bis / FAPI 2.0: aud naming the issuer and more (or it twice) → 401', async () => {
  const ctx = context();
  for (const aud of [
    [ISSUER, 'https://other.example.com'],
    ['https://other.example.com', ISSUER],
    [ISSUER, ISSUER],
  ]) {
    await rejected(`Bearer ${await es256(claims({ aud }))}`, /aud must be a single audience/, ctx);
  }
  assert.equal(ctx.jtiCalls.length, 0, 'a refused assertion does not use up its jti');
});

test('device API: an expired assertion → 401', async () => {
  await rejected(`Bearer ${await es256(claims({ iat: NOW - 100, exp: NOW - 40 }))}`, /invalid device assertion/);
});

test('device API: small clock skew is tolerated: exp 20 s ago still passes', async () => {
  const device = await verifyDeviceAssertion(
    `Bearer ${await es256(claims({ iat: NOW - 80, exp: NOW - 20 }))}`,
    context(),
  );
  assert.equal(device.device_id, 'alice-phone');
});

test('device API: exp at most 120 s after iat: exactly 120 passes', async () => {
  assert.equal(DEVICE_ASSERTION_MAX_LIFETIME_S, 120);
  const device = await verifyDeviceAssertion(`Bearer ${await es256(claims({ iat: NOW, exp: NOW + 120 }))}`, context());
  assert.equal(device.device_id, 'alice-phone');
});

test('device API: exp more than 120 s after iat (121) → 401', async () => {
  await rejected(`Bearer ${await es256(claims({ iat: NOW, exp: NOW + 121 }))}`, /lifetime/);
  await rejected(`Bearer ${await es256(claims({ iat: NOW - 10, exp: NOW + 3600 }))}`, /lifetime/);
});

test('device API: an assertion issued in the future → 401', async () => {
  await rejected(`Bearer ${await es256(claims({ iat: NOW + 60, exp: NOW + 90 }))}`, /future/);
});

test('device API: htm must be the request method → 401 otherwise', async () => {
  await rejected(`Bearer ${await es256(claims({ htm: 'POST' }))}`, /method/);
  await rejected(`Bearer ${await es256(claims({ htm: 'get' }))}`, /method/);
  const ctx = context({ method: 'POST', url: `${URL_}/abc` });
  const device = await verifyDeviceAssertion(`Bearer ${await es256(claims({ htm: 'POST', htu: `${URL_}/abc` }))}`, ctx);
  assert.equal(device.device_id, 'alice-phone');
});

test('device API: htu must be the request URL → 401 otherwise', async () => {
  await rejected(`Bearer ${await es256(claims({ htu: `${ISSUER}/device/requests/other` }))}`, /URL/);
  await rejected(`Bearer ${await es256(claims({ htu: `https://evil.example.com/device/requests` }))}`, /URL/);
  await rejected(`Bearer ${await es256(claims({ htu: `${URL_}/` }))}`, /URL/);
});

test('device API: htu is the URL without query: an htu with a query → 401', async () => {
  await rejected(`Bearer ${await es256(claims({ htu: `${URL_}?status=pending` }))}`, /URL/);
  await rejected(`Bearer ${await es256(claims({ htu: `${URL_}#x` }))}`, /URL/);
});

test('device API: jti is single use: a replayed assertion → 401', async () => {
  const ctx = context();
  const token = await es256(claims());
  await verifyDeviceAssertion(`Bearer ${token}`, ctx);
  await rejected(`Bearer ${token}`, /already used/, ctx);
});

test('device API: a fresh jti in a second assertion passes', async () => {
  const ctx = context();
  await verifyDeviceAssertion(`Bearer ${await es256(claims())}`, ctx);
  await verifyDeviceAssertion(`Bearer ${await es256(claims())}`, ctx);
  assert.equal(ctx.jtiCalls.length, 2);
});

test('device API: missing jti, htm, htu, iat or exp → 401', async () => {
  for (const claim of ['jti', 'htm', 'htu', 'iat', 'exp']) {
    await rejected(`Bearer ${await es256(claims({}, [claim]))}`, /invalid device assertion/);
  }
});

test('device API: a trivially short or non-string jti → 401', async () => {
  await rejected(`Bearer ${await es256(claims({ jti: 'abc' }))}`, /jti/);
  await rejected(`Bearer ${await es256(claims({ jti: 12345678901 }))}`, /jti/);
});

test('device API: rejected assertions do not reach the replay cache', async () => {
  const ctx = context();
  await rejected(`Bearer ${await es256(claims({ htm: 'POST' }))}`, /method/, ctx);
  assert.equal(ctx.jtiCalls.length, 0);
});

test('device API: alg none (unsecured JWT) → 401', async () => {
  const token = new UnsecuredJWT(claims()).encode();
  await rejected(`Bearer ${token}`, /invalid device assertion/);
});

test('device API: HS256 (symmetric) → 401', async () => {
  const token = await new SignJWT(claims())
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode('a-shared-secret-that-is-long-enough!'));
  await rejected(`Bearer ${token}`, /invalid device assertion/);
});

test('device API: HS256 keyed with the device public key (algorithm confusion) → 401', async () => {
  const jwk = DEVICES[0]!.jwk;
  const token = await new SignJWT(claims())
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode(JSON.stringify(jwk)));
  await rejected(`Bearer ${token}`, /invalid device assertion/);
});

test('device API: signed by another key → 401', async () => {
  await rejected(`Bearer ${await es256(claims(), stranger.privateKey)}`, /invalid device assertion/);
  await rejected(`Bearer ${await es256(claims(), bob.privateKey)}`, /invalid device assertion/);
});

test('device API: a tampered payload → 401', async () => {
  const [h, , s] = (await es256(claims())).split('.');
  const forged = Buffer.from(JSON.stringify(claims({ iss: 'alice-phone' }))).toString('base64url');
  await rejected(`Bearer ${h}.${forged}.${s}`, /invalid device assertion/);
});

test('device API: not a Bearer assertion → 401', async () => {
  const token = await es256(claims());
  await rejected(undefined, /required/);
  await rejected('', /required/);
  await rejected(token, /required/);
  await rejected(`Basic ${token}`, /required/);
  await rejected(`DPoP ${token}`, /required/);
  await rejected('Bearer', /required/);
});

test('device API: a Bearer value that is not a JWT → 401', async () => {
  await rejected('Bearer ', /malformed/);
  await rejected('Bearer not-a-jwt', /malformed/);
  await rejected('Bearer a.b.c', /malformed/);
});

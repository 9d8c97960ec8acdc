// "Bad input gets a clear OAuth error, never a 5xx": oversized, malformed and hostile values at every endpoint.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, importJWK } from 'jose';
import { basic, CIBA_GRANT, deviceKey, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';

let w: World;
before(async () => {
  w = await startWorld();
});
after(() => w.close());

const long = (n: number) => 'x'.repeat(n);

test('backchannel and token endpoints answer 4xx JSON to hostile input', async () => {
  const cases: [string, string, Record<string, string> | string, Record<string, string>][] = [
    [
      'bc',
      'long client_id (basic)',
      { scope: 'openid', login_hint: 'alice' },
      { authorization: basic(long(5000), SECRET) },
    ],
    [
      'bc',
      'long client_id (post)',
      { scope: 'openid', login_hint: 'alice', client_id: long(5000), client_secret: SECRET },
      {},
    ],
    ['bc', 'long login_hint', { scope: 'openid', login_hint: long(5000) }, { authorization: basic('rp', SECRET) }],
    [
      'bc',
      'long scope',
      { scope: `openid ${long(100_000)}`, login_hint: 'alice' },
      { authorization: basic('rp', SECRET) },
    ],
    ['bc', 'long secret', { scope: 'openid', login_hint: 'alice' }, { authorization: basic('rp', long(6000)) }],
    [
      'bc',
      'bad percent-encoding in Basic',
      { scope: 'openid', login_hint: 'alice' },
      { authorization: 'Basic ' + Buffer.from('%zz:%zz').toString('base64') },
    ],
    [
      'bc',
      'Basic without colon',
      { scope: 'openid', login_hint: 'alice' },
      { authorization: 'Basic ' + Buffer.from('rp').toString('base64') },
    ],
    ['bc', 'Basic with empty credentials', { scope: 'openid', login_hint: 'alice' }, { authorization: 'Basic ' }],
    [
      'bc',
      'control characters',
      { scope: 'openid\u0000', login_hint: 'al\u0000ice', binding_message: '\u0007' },
      { authorization: basic('rp', SECRET) },
    ],
    ['bc', 'lone surrogate', 'scope=openid&login_hint=%ED%A0%80', { authorization: basic('rp', SECRET) }],
    ['bc', 'empty body', '', { authorization: basic('rp', SECRET) }],
    [
      'bc',
      'huge requested_expiry',
      { scope: 'openid', login_hint: 'alice', requested_expiry: '9'.repeat(400) },
      { authorization: basic('rp', SECRET) },
    ],
    [
      'token',
      'long auth_req_id',
      { grant_type: CIBA_GRANT, auth_req_id: long(100_000) },
      { authorization: basic('rp', SECRET) },
    ],
    [
      'token',
      'long client_id',
      { grant_type: CIBA_GRANT, auth_req_id: 'x' },
      { authorization: basic(long(5000), SECRET) },
    ],
    [
      'token',
      'long refresh_token',
      { grant_type: 'refresh_token', refresh_token: long(100_000) },
      { authorization: basic('rp', SECRET) },
    ],
    ['token', 'long grant_type', { grant_type: long(10_000) }, { authorization: basic('rp', SECRET) }],
  ];
  for (const [endpoint, what, params, headers] of cases) {
    const res = await postForm(`${w.issuer}/${endpoint === 'bc' ? 'bc-authorize' : 'token'}`, params, headers);
    assert.ok(res.status >= 400 && res.status < 500, `${endpoint} ${what}: ${res.status} ${res.text.slice(0, 200)}`);
    assert.equal(typeof res.json.error, 'string', `${endpoint} ${what}: ${res.text.slice(0, 200)}`);
  }
});

test('device API answers 4xx to hostile assertions and ids', async () => {
  const key = await importJWK(deviceKey(), 'ES256');
  const url = `${w.issuer}/device/requests`;
  const now = Math.floor(Date.now() / 1000);
  const forged = (claims: Record<string, unknown>) =>
    new SignJWT({ aud: w.issuer, iat: now, exp: now + 60, jti: 'j'.repeat(16), htm: 'GET', htu: url, ...claims })
      .setProtectedHeader({ alg: 'ES256' })
      .sign(key);
  for (const [what, auth] of [
    ['long iss', `Bearer ${await forged({ iss: long(5000) })}`],
    ['numeric iss', `Bearer ${await forged({ iss: 42 })}`],
    ['unknown device', `Bearer ${await forged({ iss: 'nobody' })}`],
  ] as const) {
    const res = await fetch(url, { headers: { authorization: auth } });
    assert.equal(res.status, 401, what);
  }
  const decide = `${w.issuer}/device/requests/${long(3000)}`;
  const res = await fetch(decide, {
    method: 'POST',
    headers: { authorization: `Bearer ${await w.alice.assertion('POST', decide)}`, 'content-type': 'application/json' },
    body: '{"decision":"approve"}',
  });
  assert.equal(res.status, 404);
  const bodyBomb = `${w.issuer}/device/requests/${'A'.repeat(43)}`;
  const bomb = await fetch(bodyBomb, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${await w.alice.assertion('POST', bodyBomb)}`,
      'content-type': 'application/json',
    },
    body: '['.repeat(100_000),
  });
  assert.equal(bomb.status, 400);
});

test('userinfo answers 401 to hostile tokens', async () => {
  for (const token of [long(8000), 'a.b.c', 'eyJhbGciOiJSUzI1NiJ9.' + long(100) + '.sig']) {
    const res = await fetch(`${w.issuer}/userinfo`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 401);
  }
  // Beyond the HTTP header limit the server refuses the request itself (API Gateway: 10 KB of headers).
  const huge = await fetch(`${w.issuer}/userinfo`, { headers: { authorization: `Bearer ${long(100_000)}` } });
  assert.ok(huge.status >= 400 && huge.status < 500, String(huge.status));
});

// Device enrolment on a server configured like an AWS stack without every push platform, and its abuse limit
// (docs/device-api.md, "Enrolling devices", "Channels"): an sns channel for a platform without a platform application
// is 400 invalid_request before anything is consumed; failed enrolments are limited per source address
// (CIBA_ENROLMENT_FAILURES), counted before they are checked, given back when the enrolment succeeds.
// Each source address is a different loopback address (127.0.0.x), as API Gateway's sourceIp would be.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { randomBytes } from 'node:crypto';
import { listUserDevices } from '../../functions/adapters/store.ts';
import { enrolDevice, enrolmentProof, generateDeviceKey, publicDeviceJwk } from '../../local/device-client.ts';
import { startWorld, type World } from '../support/e2e.ts';

let w: World;
before(async () => {
  // As on AWS with only an APNs platform application: no FCM one.
  w = await startWorld({ CIBA_ENROLMENT_FAILURES: '3/600', CIBA_SNS_PLATFORM_FCM_ARN: '' });
});
after(() => w?.close());

type Answer = { status: number; json: Record<string, unknown>; headers: Record<string, string | string[] | undefined> };

/** POST /device/enrol from the loopback address `from`. */
function enrolFrom(from: string, body: unknown): Promise<Answer> {
  const url = new URL(`${w.issuer}/device/enrol`);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: url.port,
        path: url.pathname,
        method: 'POST',
        localAddress: from,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            json: JSON.parse(text) as Record<string, unknown>,
            headers: res.headers,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

async function validBody(code: string): Promise<Record<string, unknown>> {
  const key = generateDeviceKey();
  return { code, jwk: publicDeviceJwk(key), proof: await enrolmentProof(w.issuer, key, code) };
}

async function code(): Promise<string> {
  const res = await w.alice.enrolmentCode();
  assert.equal(res.status, 201, res.text);
  return String(res.json.code);
}

const unknownCode = () => validBody(randomBytes(32).toString('base64url'));

test('an sns channel for a platform without a platform application is invalid_request, and consumes nothing', async () => {
  const c = await code();
  const refused = await enrolDevice(w.issuer, c, { channel: { type: 'sns', platform: 'fcm', token: 'fcm-token' } });
  assert.equal(refused.status, 400, refused.text);
  assert.deepEqual(refused.json, {
    error: 'invalid_request',
    error_description: 'the sns channel for fcm is not configured on this server',
  });
  assert.deepEqual(w.stack.sns.platformEndpoints(), [], 'no endpoint was made');
  assert.equal((await listUserDevices('alice')).length, 1);

  const enrolled = await enrolDevice(w.issuer, c, { channel: { type: 'sns', platform: 'apns', token: 'apns-token' } });
  assert.equal(enrolled.status, 201, 'the code still works; apns is configured');
  const channel = await enrolled.device!.setChannel({ type: 'sns', platform: 'fcm', token: 'fcm-token' });
  assert.equal(channel.status, 400);
  assert.equal(channel.json.error_description, 'the sns channel for fcm is not configured on this server');
  assert.deepEqual(
    w.stack.sns.platformEndpoints().map((e) => e.token),
    ['apns-token'],
    'the refused channel change kept the old endpoint',
  );
  assert.equal((await w.alice.remove(enrolled.device!.deviceId)).status, 204);
});

test('failed enrolments per address: beyond the limit 429 slow_down with Retry-After, even for a valid one, which consumes nothing', async () => {
  const from = '127.0.0.2';
  for (let i = 0; i < 3; i++) {
    const res = await enrolFrom(from, await unknownCode());
    assert.equal(res.status, 400);
    assert.equal(res.json.error, 'invalid_grant');
  }
  const limited = await enrolFrom(from, await unknownCode());
  assert.equal(limited.status, 429);
  assert.equal(limited.json.error, 'slow_down');
  const retryAfter = Number(limited.headers['retry-after']);
  assert.ok(retryAfter >= 1 && retryAfter <= 600, String(limited.headers['retry-after']));

  const c = await code();
  const valid = await enrolFrom(from, await validBody(c));
  assert.equal(valid.status, 429, 'beyond the limit even a valid enrolment is refused');
  const other = await enrolFrom('127.0.0.3', await validBody(c));
  assert.equal(other.status, 201, 'another address is not limited, and the refused attempt did not use the code');
  await w.alice.remove(String(other.json.device_id));
});

test('a successful enrolment gives its attempt back; concurrent failures never exceed the limit', async () => {
  const from = '127.0.0.4';
  for (let i = 0; i < 2; i++) assert.equal((await enrolFrom(from, await unknownCode())).status, 400);
  const ok = await enrolFrom(from, await validBody(await code()));
  assert.equal(ok.status, 201);
  await w.alice.remove(String(ok.json.device_id));
  assert.equal((await enrolFrom(from, await unknownCode())).status, 400, 'the success did not count: 3 failures');
  assert.equal((await enrolFrom(from, await unknownCode())).status, 429);

  const bodies = await Promise.all(Array.from({ length: 10 }, unknownCode));
  const statuses = (await Promise.all(bodies.map((b) => enrolFrom('127.0.0.5', b)))).map((r) => r.status);
  assert.deepEqual(
    [...statuses].sort(),
    [400, 400, 400, 429, 429, 429, 429, 429, 429, 429],
    'counted before checked: exactly the limit gets through',
  );
});

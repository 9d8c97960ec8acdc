// Enrolling and managing authentication devices over real HTTP (docs/device-api.md, "Enrolling devices", "Managing
// devices", "Channels"): one-time codes from a device, enrolment with a proof of possession, Web Push and SNS mobile
// push channels (the local SNS makes platform endpoints), single use, expiry, wrong proofs, the device cap (nothing
// consumed by a refusal, never exceeded by concurrent enrolments), removal, another user's device, and
// GET /device/requests/{id}.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { claimDeviceSlot, getDevice, listUserDevices, putEnrolmentCode } from '../../functions/adapters/store.ts';
import {
  DeviceClient,
  enrolDevice,
  enrolmentProof,
  generateDeviceKey,
  publicDeviceJwk,
} from '../../local/device-client.ts';
import { basic, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';

const CAP = 4;
let w: World;
let dave: DeviceClient;
before(async () => {
  const daveKey = generateDeviceKey();
  w = await startWorld(
    { CIBA_MAX_DEVICES_PER_USER: String(CAP), CIBA_ENROLMENT_FAILURES: '1000/600', CIBA_MIN_EXPIRES_IN: '2' },
    [],
    [
      { sub: 'carol', email: 'carol@example.com' },
      { sub: 'dave', devices: [{ device_id: 'dave-phone', jwk: publicDeviceJwk(daveKey), name: "Dave's phone" }] },
    ],
  );
  dave = new DeviceClient(w.issuer, 'dave-phone', daveKey);
});
after(() => w?.close());

const webpush = () => ({
  type: 'webpush',
  subscription: {
    endpoint: `http://127.0.0.1:9/push/${randomBytes(8).toString('hex')}`,
    keys: { p256dh: randomBytes(65).toString('base64url'), auth: randomBytes(16).toString('base64url') },
  },
});

async function codeFrom(device: DeviceClient): Promise<string> {
  const res = await device.enrolmentCode();
  assert.equal(res.status, 201, res.text);
  return String(res.json.code);
}

/** A code for `sub` as an operator issues it, straight into the store (no device of the user needed). */
async function storedCode(sub: string, expiresAt = Date.now() + 600_000): Promise<string> {
  const code = randomBytes(32).toString('base64url');
  await putEnrolmentCode(sha256b64u(code), { sub, expires_at: expiresAt });
  return code;
}

/** Removes every device of `sub` but `keep` (through the device API, as the user would). */
async function pruneTo(sub: string, keep: DeviceClient): Promise<void> {
  for (const d of await listUserDevices(sub)) {
    if (d.device_id !== keep.deviceId) assert.equal((await keep.remove(d.device_id)).status, 204);
  }
}

describe('enrolment codes and enrolment', () => {
  test('a device gets a code; a new device enrols with it and a Web Push channel, and works; the others are told', async () => {
    const before = Date.now();
    const res = await w.alice.enrolmentCode();
    assert.equal(res.status, 201, res.text);
    const {
      code,
      expires_at: expiresAt,
      enrol_url: enrolUrl,
    } = res.json as {
      code: string;
      expires_at: number;
      enrol_url: string;
    };
    assert.deepEqual(Object.keys(res.json).sort(), ['code', 'enrol_url', 'expires_at']);
    assert.match(code, /^[A-Za-z0-9_-]{43}$/, '256 bits, base64url');
    assert.equal(enrolUrl, `${w.issuer}/device/#enrol=${code}`);
    assert.ok(Math.abs(expiresAt - (Math.floor(before / 1000) + 600)) <= 2, 'valid 10 minutes by default');

    const channel = webpush();
    const enrolled = await enrolDevice(w.issuer, code, { name: 'Work laptop', channel });
    assert.equal(enrolled.status, 201, enrolled.text);
    assert.deepEqual(Object.keys(enrolled.json), ['device_id']);
    const laptop = enrolled.device!;
    const stored = await getDevice(laptop.deviceId);
    assert.equal(stored?.sub, 'alice');
    assert.equal(stored?.name, 'Work laptop');
    assert.deepEqual(stored?.channel, channel);
    assert.deepEqual(stored?.jwk, publicDeviceJwk(enrolled.key));

    // The new device signs assertions with iss = its device_id: it sees alice's requests and devices.
    assert.deepEqual(await laptop.list(), await w.alice.list());
    const listed = await laptop.devices();
    assert.equal(listed.status, 200);
    const devices = listed.json.devices as { device_id: string; name?: string; created_at: number; current: boolean }[];
    const mine = devices.find((d) => d.device_id === laptop.deviceId);
    assert.deepEqual(mine && { ...mine, created_at: 0 }, {
      device_id: laptop.deviceId,
      name: 'Work laptop',
      created_at: 0,
      current: true,
    });
    assert.ok(Math.abs(mine!.created_at - Math.floor(Date.now() / 1000)) <= 5);
    const phone = devices.find((d) => d.device_id === 'alice-phone');
    assert.equal(phone?.current, false);
    assert.equal(typeof phone?.created_at, 'number', 'seeded devices have a created_at too');

    // The user's devices are told, without the code.
    const told = w.stack.sns
      .messages()
      .filter((m) => m.topicArn === w.stack.sns.deviceTopicArn)
      .map((m) => JSON.parse(m.message) as Record<string, unknown>)
      .find((m) => m.type === 'ciba.device_enrolled' && m.device_id === laptop.deviceId);
    assert.deepEqual(told, {
      type: 'ciba.device_enrolled',
      sub: 'alice',
      device_id: laptop.deviceId,
      name: 'Work laptop',
    });
    assert.ok(!JSON.stringify(w.stack.sns.messages()).includes(code), 'the code is never published');
    await pruneTo('alice', w.alice);
  });

  test('an sns channel gets an SNS platform endpoint; changing the channel or removing the device deletes it', async () => {
    const token = `fcm-token-${randomBytes(8).toString('hex')}`;
    const enrolled = await enrolDevice(w.issuer, await codeFrom(w.alice), {
      channel: { type: 'sns', platform: 'fcm', token },
    });
    assert.equal(enrolled.status, 201, enrolled.text);
    const device = enrolled.device!;
    const endpoint = w.stack.sns.platformEndpoints().find((e) => e.token === token);
    assert.ok(endpoint, 'the platform endpoint was made');
    assert.match(endpoint.platformApplicationArn, /:app\/GCM\//);
    const stored = await getDevice(device.deviceId);
    assert.deepEqual(stored?.channel, { type: 'sns', platform: 'fcm', endpoint_arn: endpoint.endpointArn });
    assert.ok(!JSON.stringify(stored).includes(token), 'the push token itself is not kept');

    // A new token: a new endpoint, the old one deleted. Then Web Push: the sns endpoint goes.
    const token2 = `apns-token-${randomBytes(8).toString('hex')}`;
    assert.equal((await device.setChannel({ type: 'sns', platform: 'apns', token: token2 })).status, 204);
    const endpoint2 = w.stack.sns.platformEndpoints().find((e) => e.token === token2);
    assert.ok(endpoint2 && /:app\/APNS\//.test(endpoint2.platformApplicationArn));
    assert.ok(!w.stack.sns.platformEndpoints().some((e) => e.token === token), 'the replaced endpoint is deleted');
    const channel = webpush();
    assert.equal((await device.setChannel(channel)).status, 204);
    assert.deepEqual((await getDevice(device.deviceId))?.channel, channel);
    assert.ok(!w.stack.sns.platformEndpoints().some((e) => e.token === token2));
    assert.equal((await device.setChannel(null)).status, 204);
    assert.equal((await getDevice(device.deviceId))?.channel, undefined);

    // Removing a device with an sns channel deletes its endpoint.
    assert.equal((await device.setChannel({ type: 'sns', platform: 'apns_sandbox', token })).status, 204);
    assert.ok(w.stack.sns.platformEndpoints().some((e) => e.token === token));
    assert.equal((await w.alice.remove(device.deviceId)).status, 204);
    assert.ok(!w.stack.sns.platformEndpoints().some((e) => e.token === token));

    // Malformed channel bodies are invalid_request and change nothing.
    for (const body of [{}, { channel: { type: 'sms' } }, { channel: { type: 'webpush', subscription: {} } }]) {
      const res = await w.alice.call('PUT', '/device/channel', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.json.error, 'invalid_request');
    }
    const ftp = webpush();
    ftp.subscription.endpoint = 'ftp://example.com/push';
    assert.equal((await w.alice.setChannel(ftp)).status, 400, 'a push endpoint must be https (or loopback http)');
  });

  test('a code is single use: the second enrolment with it is invalid_grant', async () => {
    const code = await codeFrom(w.alice);
    const first = await enrolDevice(w.issuer, code);
    assert.equal(first.status, 201, first.text);
    const second = await enrolDevice(w.issuer, code);
    assert.equal(second.status, 400);
    assert.equal(second.json.error, 'invalid_grant');
    assert.equal((await listUserDevices('alice')).length, 2);
    await pruneTo('alice', w.alice);
  });

  test('an expired or unknown code is invalid_grant', async () => {
    const expired = await storedCode('alice', Date.now() - 1);
    for (const code of [expired, randomBytes(32).toString('base64url'), 'short']) {
      const res = await enrolDevice(w.issuer, code);
      assert.equal(res.status, 400, res.text);
      assert.equal(res.json.error, 'invalid_grant');
    }
    assert.equal((await listUserDevices('alice')).length, 1);
  });

  test('a proof not made with jwk (another key, wrong aud, stale iat, another code) is invalid_grant and consumes nothing', async () => {
    const code = await codeFrom(w.alice);
    const key = generateDeviceKey();
    const wrong: [string, Promise<string>][] = [
      ['signed by another key', enrolmentProof(w.issuer, generateDeviceKey(), code)],
      ['another audience', enrolmentProof(w.issuer, key, code, { aud: 'https://elsewhere.example' })],
      ['two audiences', enrolmentProof(w.issuer, key, code, { aud: [w.issuer, 'https://elsewhere.example'] })],
      ['a stale iat', enrolmentProof(w.issuer, key, code, { iat: Math.floor(Date.now() / 1000) - 120 })],
      ['an iat in the future', enrolmentProof(w.issuer, key, code, { iat: Math.floor(Date.now() / 1000) + 120 })],
      ['another code', enrolmentProof(w.issuer, key, await codeFrom(w.alice))],
      ['no jti', enrolmentProof(w.issuer, key, code, { jti: undefined })],
    ];
    for (const [what, proof] of wrong) {
      const res = await enrolDevice(w.issuer, code, { key, proof: await proof });
      assert.equal(res.status, 400, `${what}: ${res.text}`);
      assert.equal(res.json.error, 'invalid_grant', what);
    }
    const ok = await enrolDevice(w.issuer, code, { key });
    assert.equal(ok.status, 201, 'the refused attempts consumed nothing: the code still works');
    await pruneTo('alice', w.alice);
  });

  test('a malformed body is invalid_request', async () => {
    const code = await codeFrom(w.alice);
    const key = generateDeviceKey();
    const proof = await enrolmentProof(w.issuer, key, code);
    const jwk = publicDeviceJwk(key);
    const post = (body: string) =>
      fetch(`${w.issuer}/device/enrol`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    for (const body of [
      '',
      'not json',
      '[]',
      JSON.stringify({ jwk, proof }),
      JSON.stringify({ code, proof }),
      JSON.stringify({ code, jwk: { ...jwk, d: key.d }, proof }),
      JSON.stringify({ code, jwk: { kty: 'RSA', n: 'x', e: 'AQAB' }, proof }),
      JSON.stringify({ code, jwk }),
      JSON.stringify({ code, jwk, proof: 'not-a-jws' }),
      JSON.stringify({ code, jwk, proof, name: 'x'.repeat(65) }),
      JSON.stringify({ code, jwk, proof, name: 'two\nlines' }),
      JSON.stringify({ code, jwk, proof, channel: { type: 'sns', platform: 'windows', token: 't' } }),
    ]) {
      const res = await post(body);
      assert.equal(res.status, 400, body);
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_request', body);
    }
    const ok = await enrolDevice(w.issuer, code, { key, proof, name: 'x'.repeat(64) });
    assert.equal(ok.status, 201, 'nothing was consumed; a 64-character name is fine');
    await pruneTo('alice', w.alice);
  });
});

describe('the device cap', () => {
  test('over the cap: 409 too_many_devices, nothing consumed; the same code works once a device is removed', async () => {
    const extra: DeviceClient[] = [];
    for (let i = 1; i < CAP; i++) {
      const res = await enrolDevice(w.issuer, await codeFrom(w.alice), { name: `device ${i}` });
      assert.equal(res.status, 201, res.text);
      extra.push(res.device!);
    }
    assert.equal((await listUserDevices('alice')).length, CAP);
    const code = await codeFrom(w.alice);
    const key = generateDeviceKey();
    const proof = await enrolmentProof(w.issuer, key, code);
    const refused = await enrolDevice(w.issuer, code, { key, proof });
    assert.equal(refused.status, 409, refused.text);
    assert.equal(refused.json.error, 'too_many_devices');
    assert.equal((await listUserDevices('alice')).length, CAP);

    assert.equal((await extra[0]!.remove(extra[0]!.deviceId)).status, 204, 'a device removes itself');
    // The very same request again: its proof was seen (single-use jti), whatever else changed.
    const replayed = await enrolDevice(w.issuer, code, { key, proof });
    assert.equal(replayed.status, 400, replayed.text);
    assert.equal(replayed.json.error, 'invalid_grant');
    const accepted = await enrolDevice(w.issuer, code, { key });
    assert.equal(accepted.status, 201, 'the code refused at the cap still works, with a fresh proof');
    assert.equal((await listUserDevices('alice')).length, CAP);
    await pruneTo('alice', w.alice);
  });

  test('20 concurrent enrolments with codes for one user never exceed the cap; the refused codes stay usable', async () => {
    const codes = await Promise.all(Array.from({ length: 20 }, () => codeFrom(dave)));
    const results = await Promise.all(codes.map((code, i) => enrolDevice(w.issuer, code, { name: `race ${i}` })));
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 201).length, CAP - 1, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 409).length, 20 - (CAP - 1), statuses.join(','));
    assert.equal((await listUserDevices('dave')).length, CAP);

    const winner = results.find((r) => r.status === 201)!.device!;
    assert.equal((await dave.remove(winner.deviceId)).status, 204);
    const loser = codes[results.findIndex((r) => r.status === 409)]!;
    assert.equal((await enrolDevice(w.issuer, loser)).status, 201, 'a code refused at the cap was not used');
    assert.equal((await listUserDevices('dave')).length, CAP);
    await pruneTo('dave', dave);
  });

  test('the first device of a user with none yet: concurrent enrolments still stop at the cap', async () => {
    const codes = await Promise.all(Array.from({ length: 10 }, () => storedCode('carol')));
    const results = await Promise.all(codes.map((code) => enrolDevice(w.issuer, code)));
    assert.equal(results.filter((r) => r.status === 201).length, CAP, results.map((r) => r.status).join(','));
    assert.equal((await listUserDevices('carol')).length, CAP);
  });
});

test('device slots: concurrent claims for a user with no device yet all succeed up to the cap (a lost map creation claims again), never beyond', async () => {
  const within = await Promise.all(
    Array.from({ length: CAP }, (_, i) => claimDeviceSlot('slot-user', `slot-${i}`, CAP, Date.now())),
  );
  assert.deepEqual(within, Array(CAP).fill(true));
  assert.equal(await claimDeviceSlot('slot-user', 'slot-0', CAP, Date.now()), true, 'idempotent for an id');
  assert.equal(await claimDeviceSlot('slot-user', 'one-more', CAP, Date.now()), false);
  const beyond = await Promise.all(
    Array.from({ length: 12 }, (_, i) => claimDeviceSlot('slot-user-2', `slot-${i}`, CAP, Date.now())),
  );
  assert.equal(beyond.filter(Boolean).length, CAP, beyond.join(','));
});

describe('managing devices', () => {
  test('a removed device gets 401; another user cannot remove a device (404); unknown ids are 404', async () => {
    const enrolled = await enrolDevice(w.issuer, await codeFrom(w.alice), { name: 'old phone' });
    const old = enrolled.device!;
    assert.equal((await old.devices()).status, 200);

    assert.equal((await w.bob.remove(old.deviceId)).status, 404, "bob cannot remove alice's device");
    assert.equal((await old.devices()).status, 200, 'still there');
    assert.equal((await w.alice.remove('no-such-device')).status, 404);
    assert.equal((await w.alice.remove(' ')).status, 404);

    assert.equal((await w.alice.remove(old.deviceId)).status, 204);
    for (const res of [await old.devices(), await old.enrolmentCode(), await old.call('GET', '/device/requests')]) {
      assert.equal(res.status, 401);
      assert.equal(res.json.error, 'invalid_token');
    }
    assert.equal((await w.alice.remove(old.deviceId)).status, 404, 'already gone');
    assert.ok(
      !((await w.alice.devices()).json.devices as { device_id: string }[]).some((d) => d.device_id === old.deviceId),
    );
  });

  test('the device API without a valid assertion is 401', async () => {
    for (const [method, path] of [
      ['POST', '/device/enrolment-codes'],
      ['GET', '/device/devices'],
      ['DELETE', '/device/devices/alice-phone'],
      ['PUT', '/device/channel'],
      ['GET', `/device/requests/${'A'.repeat(43)}`],
    ] as const) {
      const res = await fetch(`${w.issuer}${path}`, { method, headers: { authorization: 'Bearer x.y.z' } });
      assert.equal(res.status, 401, `${method} ${path}`);
      // An assertion for another route is refused too (htu/htm binding).
      const wrong = await fetch(`${w.issuer}${path}`, {
        method,
        headers: { authorization: `Bearer ${await w.alice.assertion(method, `${w.issuer}/device/requests`)}` },
      });
      assert.equal(wrong.status, 401, `${method} ${path} with another route's assertion`);
    }
  });
});

describe('GET /device/requests/{id}', () => {
  test('one pending request of the user; 404 for another user, unknown, decided or expired', async () => {
    const start = async (extra: Record<string, string> = {}) => {
      const bindingMessage = `ONE-${randomBytes(4).toString('hex')}`;
      const res = await postForm(
        `${w.issuer}/bc-authorize`,
        { scope: 'openid', login_hint: 'alice', binding_message: bindingMessage, ...extra },
        { authorization: basic('rp', SECRET) },
      );
      assert.equal(res.status, 200, res.text);
      return w.alice.waitFor((r) => r.binding_message === bindingMessage);
    };
    const listed = await start();
    const one = await w.alice.request(listed.id);
    assert.equal(one.status, 200, one.text);
    assert.deepEqual(one.json, listed);

    const notFound = async (device: DeviceClient, id: string) => {
      const res = await device.request(id);
      assert.equal(res.status, 404, id);
      assert.deepEqual(res.json, { error: 'not_found' });
    };
    await notFound(w.bob, listed.id);
    await notFound(w.alice, 'A'.repeat(43));
    await notFound(w.alice, 'not-an-id');
    assert.equal((await w.alice.decide(listed.id, 'deny')).status, 204);
    await notFound(w.alice, listed.id);

    const short = await start({ requested_expiry: '2' });
    assert.equal((await w.alice.request(short.id)).status, 200);
    await new Promise((r) => setTimeout(r, 2500));
    await notFound(w.alice, short.id);
  });
});

// Reaching the user (docs/notifications.md) on the local stack, with real receivers: a loopback Web Push service that
// verifies VAPID and decrypts RFC 8291 payloads as a browser would (test/support/push-service.ts), an operator hook
// that verifies Standard Webhooks signatures (test/support/webhook.ts), and the outbox for SNS mobile push, SMS and
// e-mail. Covers: every channel of a user at once, an expired subscription (410/404: dropped, never used again), a
// webhook answering 503 then 204 (retried, delivered once), a redelivered device-topic message (nobody notified
// twice), the SMS and e-mail fallback of a user without channels, enrolment notices to the other devices only, and a
// user nobody could reach.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CreatePlatformEndpointCommand, PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { loadSeed } from '../../functions/admin/seed.ts';
import { getDevice } from '../../functions/adapters/store.ts';
import { publishDeviceEnrolled } from '../../functions/adapters/device-notifier.ts';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { publicDeviceJwk } from '../../local/device-client.ts';
import { basic, deviceKey, postForm, SECRET, sleep, startWorld, type World } from '../support/e2e.ts';
import { NotificationReceiver, type Received } from '../support/receiver.ts';
import { PushService, type Subscriber } from '../support/push-service.ts';
import { verifyWebhook } from '../support/webhook.ts';

const WEBHOOK_SECRET = `whsec_${Buffer.from('ciba-test-webhook-secret-0123456789').toString('base64')}`;
const VAPID_SUBJECT = 'mailto:ops@example.com';

let w: World;
let push: PushService;
let hook: NotificationReceiver;
let sns: SNSClient;
const subs = {} as { laptop: Subscriber; tablet: Subscriber; frank: Subscriber };
let phoneEndpoint = '';
const errors: string[] = [];
const writeErr = process.stderr.write.bind(process.stderr);

before(async () => {
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    errors.push(String(chunk));
    return writeErr(chunk, ...rest);
  }) as typeof process.stderr.write;
  push = await PushService.start();
  hook = await NotificationReceiver.start();
  w = await startWorld({
    CIBA_NOTIFY_WEBHOOK_URL: hook.url('/hook'),
    CIBA_NOTIFY_WEBHOOK_SECRET: WEBHOOK_SECRET,
    CIBA_NOTIFY_SMS: 'on',
    CIBA_NOTIFY_EMAIL_FROM: 'ciba@example.com',
    CIBA_VAPID_SUBJECT: VAPID_SUBJECT,
  });
  sns = new SNSClient({ endpoint: w.stack.awsEndpoint });
  // carol: a browser (Web Push), a tablet whose subscription has expired, and a native app (SNS mobile push).
  // The endpoint is made as enrolment makes it (CreatePlatformEndpoint), then the devices are seeded in stored form.
  phoneEndpoint = (
    await sns.send(
      new CreatePlatformEndpointCommand({
        PlatformApplicationArn: process.env.CIBA_SNS_PLATFORM_FCM_ARN!,
        Token: 'fcm-token-of-carols-phone',
      }),
    )
  ).EndpointArn!;
  subs.laptop = push.subscribe('carol-laptop');
  subs.tablet = push.subscribe('carol-tablet');
  push.respond(subs.tablet, () => 410);
  subs.frank = push.subscribe('frank-phone');
  push.respond(subs.frank, () => 404);
  const device = (id: string, channel?: unknown, name?: string) => ({
    device_id: id,
    jwk: publicDeviceJwk(deviceKey()),
    ...(name ? { name } : {}),
    ...(channel ? { channel } : {}),
  });
  await loadSeed({
    users: [
      {
        sub: 'carol',
        email: 'carol@example.com',
        email_verified: true,
        phone_number: '+15550002222',
        devices: [
          device('carol-laptop', { type: 'webpush', subscription: subs.laptop.subscription }, 'Laptop'),
          device('carol-tablet', { type: 'webpush', subscription: subs.tablet.subscription }),
          device('carol-phone', { type: 'sns', platform: 'fcm', endpoint_arn: phoneEndpoint }, 'Phone'),
        ],
      },
      // No device at all: SMS and e-mail (verified address) instead.
      { sub: 'dave', phone_number: '+1 555 000-3333', email: 'dave@example.com', email_verified: true },
      // One device whose subscription the push service says is gone: nobody can reach frank.
      { sub: 'frank', devices: [device('frank-phone', { type: 'webpush', subscription: subs.frank.subscription })] },
    ],
  });
  const config = await fetch(`${w.issuer}/device/config`);
  assert.equal(config.status, 200);
  push.expectedKey = ((await config.json()) as { vapid_public_key: string }).vapid_public_key;
});

after(async () => {
  await w.close();
  await push.close();
  await hook.down();
  process.stderr.write = writeErr;
});

/** Starts a request for `sub` as the `rp` client ("Store POS"); its public request id. */
async function startRequest(sub: string, bindingMessage: string): Promise<{ id: string; expiresIn: number }> {
  const res = await postForm(
    `${w.issuer}/bc-authorize`,
    { scope: 'openid', login_hint: sub, binding_message: bindingMessage },
    { authorization: basic('rp', SECRET) },
  );
  assert.equal(res.status, 200, res.text);
  return { id: sha256b64u(String(res.json.auth_req_id)), expiresIn: Number(res.json.expires_in) };
}

const hooksFor = (field: string, value: string): Received[] =>
  hook.received('/hook').filter((r) => r.json[field] === value);

async function waitForHooks(field: string, value: string, count = 1): Promise<Received[]> {
  const deadline = Date.now() + 15_000;
  while (hooksFor(field, value).length < count) {
    if (Date.now() > deadline) throw new Error(`${count} webhook POSTs for ${value} did not arrive`);
    await sleep(25);
  }
  return hooksFor(field, value);
}

async function waitForOutbox(to: string, count = 1) {
  const deadline = Date.now() + 15_000;
  while (w.stack.outbox.entries().filter((e) => e.to === to).length < count) {
    if (Date.now() > deadline) throw new Error(`${count} outbox entries for ${to} did not arrive`);
    await sleep(25);
  }
  return w.stack.outbox.entries().filter((e) => e.to === to);
}

describe('an authentication request reaches every channel of the user', () => {
  let request: { id: string; expiresIn: number };
  before(async () => {
    request = await startRequest('carol', 'BM-CAROL-ONE');
    await push.waitFor(subs.laptop);
    await push.waitFor(subs.tablet);
    await waitForOutbox(phoneEndpoint);
    await waitForHooks('request_id', request.id);
    await w.stack.sns.drain();
  });

  it('Web Push: VAPID for the push service origin, the published key, an RFC 8291 payload without secrets', () => {
    const [message] = push.received(subs.laptop);
    assert.ok(message);
    assert.equal(message.error, undefined, message.error);
    assert.equal(message.status, 201);
    assert.deepEqual(message.vapid && { aud: message.vapid.aud, sub: message.vapid.sub, key: message.vapid.key }, {
      aud: push.origin,
      sub: VAPID_SUBJECT,
      key: push.expectedKey,
    });
    const expiresAt = message.json?.expires_at as number;
    assert.deepEqual(message.json, {
      type: 'ciba.authentication_request',
      request_id: request.id,
      expires_at: expiresAt,
    });
    assert.ok(Math.abs(expiresAt - (Date.now() / 1000 + request.expiresIn)) < 10, 'expires_at in epoch seconds');
    assert.ok(!message.text?.includes('BM-CAROL-ONE'), 'no binding message in the push');
    const ttl = Number(message.headers.ttl);
    assert.ok(ttl > 0 && ttl <= request.expiresIn, `TTL ${ttl} until the request expires`);
    assert.equal(message.headers.urgency, 'high');
  });

  it('a push service answering 410 ends that subscription: the channel is dropped and never used again', async () => {
    assert.equal(push.received(subs.tablet).length, 1);
    assert.equal(push.received(subs.tablet)[0]!.error, undefined);
    assert.equal((await getDevice('carol-tablet'))?.channel, undefined);
    assert.ok((await getDevice('carol-laptop'))?.channel, 'the other subscriptions stay');
    const second = await startRequest('carol', 'BM-CAROL-TWO');
    await push.waitFor(subs.laptop, 2);
    await waitForHooks('request_id', second.id);
    await w.stack.sns.drain();
    assert.equal(push.received(subs.tablet).length, 1, 'no further sends to the expired subscription');
  });

  it('SNS mobile push: the same JSON to the platform endpoint (outbox), no binding message', () => {
    const entries = w.stack.outbox.entries().filter((e) => e.to === phoneEndpoint);
    assert.equal(entries.length >= 1, true);
    const entry = entries[0]!;
    assert.equal(entry.channel, 'sns');
    assert.ok(!Number.isNaN(Date.parse(entry.at)));
    assert.deepEqual(JSON.parse(entry.message), push.received(subs.laptop)[0]!.json);
    assert.ok(!entry.message.includes('BM-CAROL'));
  });

  it('operator hook: one signed POST per request with the request details', () => {
    const [post] = hooksFor('request_id', request.id);
    assert.ok(post);
    assert.equal(hooksFor('request_id', request.id).length, 1);
    verifyWebhook(post.headers, post.body, WEBHOOK_SECRET);
    assert.equal(post.headers['content-type'], 'application/json');
    assert.deepEqual(post.json, {
      type: 'ciba.authentication_request',
      request_id: request.id,
      sub: 'carol',
      client_id: 'rp',
      client_name: 'Store POS',
      binding_message: 'BM-CAROL-ONE',
      scope: 'openid',
      expires_at: push.received(subs.laptop)[0]!.json?.expires_at,
    });
  });

  it('no SMS or e-mail for a user whose devices have channels', () => {
    const to = w.stack.outbox.entries().map((e) => e.to);
    assert.ok(!to.includes('+15550002222') && !to.includes('carol@example.com'));
  });

  it('a redelivered device-topic message notifies nobody twice (the ledger)', async () => {
    const original = w.stack.sns
      .messages()
      .find((m) => m.topicArn === w.stack.sns.deviceTopicArn && m.message.includes(request.id));
    assert.ok(original);
    const before = { pushes: push.received(subs.laptop).length, outbox: w.stack.outbox.entries().length };
    await sns.send(new PublishCommand({ TopicArn: w.stack.sns.deviceTopicArn, Message: original.message }));
    await sleep(300);
    await w.stack.sns.drain();
    assert.equal(push.received(subs.laptop).length, before.pushes);
    assert.equal(w.stack.outbox.entries().length, before.outbox);
    assert.equal(hooksFor('request_id', request.id).length, 1);
  });
});

describe('retries and fallbacks', () => {
  it('a webhook answering 503 is retried: delivered once, same webhook-id, each attempt signed', async () => {
    const failedOnce = new Set<string>();
    hook.respond('/hook', (_n, received) => {
      const id = String(received.json.request_id ?? '');
      if (received.json.sub !== 'carol' || failedOnce.has(id)) return 204;
      failedOnce.add(id);
      return 503;
    });
    const request = await startRequest('carol', 'BM-CAROL-RETRY');
    const posts = await waitForHooks('request_id', request.id, 2);
    await w.stack.sns.drain();
    hook.respond('/hook', () => 204);
    assert.equal(hooksFor('request_id', request.id).length, 2, 'one 503, then one 204, then nothing');
    const [first, second] = posts.map((p) => verifyWebhook(p.headers, p.body, WEBHOOK_SECRET));
    assert.equal(first!.id, second!.id, 'the same message id on the retry');
    assert.equal(push.received(subs.laptop).filter((p) => p.json?.request_id === request.id).length, 1);
  });

  it('a user without any device channel gets an SMS and an e-mail with a link to the device app, no secret', async () => {
    const request = await startRequest('dave', 'BM-DAVE-SECRET-ISH');
    const [sms] = await waitForOutbox('+15550003333');
    const [email] = await waitForOutbox('dave@example.com');
    await waitForHooks('request_id', request.id);
    await w.stack.sns.drain();
    const link = `${w.issuer}/device/#request=${request.id}`;
    assert.equal(sms!.channel, 'sms');
    assert.equal(email!.channel, 'email');
    for (const entry of [sms!, email!]) {
      assert.ok(entry.message.includes(link), entry.message);
      assert.ok(entry.message.includes('Store POS'), entry.message);
      assert.ok(!entry.message.includes('BM-DAVE'), 'no binding message');
    }
    assert.equal(w.stack.outbox.entries().filter((e) => e.to === '+15550003333').length, 1);
  });

  it('a user nobody can reach is logged as such (UsersUnreachable), and their dropped channel is not retried', async () => {
    const request = await startRequest('frank', 'BM-FRANK');
    await push.waitFor(subs.frank);
    await waitForHooks('request_id', request.id);
    await w.stack.sns.drain();
    assert.equal((await getDevice('frank-phone'))?.channel, undefined);
    const line = errors
      .join('')
      .split('\n')
      .find((l) => l.includes('user could not be reached') && l.includes(request.id));
    assert.ok(line, 'an error log line names the request');
    assert.match(line, /"webpush#frank-phone":"gone"/);
  });
});

describe('enrolment notices', () => {
  it("reach the user's other devices and the hook, never the enrolled device itself", async () => {
    const laptopBefore = push.received(subs.laptop).length;
    const phoneBefore = w.stack.outbox.entries().filter((e) => e.to === phoneEndpoint).length;
    await publishDeviceEnrolled({ sub: 'carol', device_id: 'carol-laptop', name: 'Laptop' });
    await waitForOutbox(phoneEndpoint, phoneBefore + 1);
    await waitForHooks('device_id', 'carol-laptop');
    await w.stack.sns.drain();
    const entry = w.stack.outbox.entries().filter((e) => e.to === phoneEndpoint)[phoneBefore]!;
    assert.deepEqual(JSON.parse(entry.message), {
      type: 'ciba.device_enrolled',
      device_id: 'carol-laptop',
      name: 'Laptop',
    });
    assert.equal(push.received(subs.laptop).length, laptopBefore, 'the enrolled device is not told about itself');
    const [post] = hooksFor('device_id', 'carol-laptop');
    verifyWebhook(post!.headers, post!.body, WEBHOOK_SECRET);
    assert.deepEqual(post!.json, {
      type: 'ciba.device_enrolled',
      sub: 'carol',
      device_id: 'carol-laptop',
      name: 'Laptop',
    });

    // Another device enrolled: now the laptop is one of the others.
    await publishDeviceEnrolled({ sub: 'carol', device_id: 'carol-new-watch' });
    const notice = (await push.waitFor(subs.laptop, laptopBefore + 1))[laptopBefore];
    assert.equal(notice?.error, undefined);
    assert.deepEqual(notice?.json, { type: 'ciba.device_enrolled', device_id: 'carol-new-watch' });
    assert.equal(notice?.headers.urgency, 'normal');
  });
});

describe('GET /device/config', () => {
  it('publishes the VAPID public key: an uncompressed P-256 point, the key every push was signed with', async () => {
    const res = await fetch(`${w.issuer}/device/config`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body), ['vapid_public_key']);
    const point = Buffer.from(String(body.vapid_public_key), 'base64url');
    assert.equal(point.length, 65);
    assert.equal(point[0], 4);
    assert.ok(push.received().every((r) => r.vapid?.key === body.vapid_public_key));
  });
});

// No secret (auth_req_id, access/ID/refresh tokens, client secret, user code, task token, client notification token,
// device enrolment codes and proofs, push tokens and Web Push keys) appears in any execution's input, output or
// history, in any SNS message, dead letter, or log line (docs/security.md), for poll, ping and push flows including a
// retried push and a dead-lettered one, and for device enrolment (accepted and refused). User notifications (Web
// Push payloads as the browser decrypts them, SNS mobile push, SMS and e-mail in the outbox, operator hook POSTs) carry
// none of them, nor the webhook secret, the VAPID private key or a subscription's keys; and no binding message reaches
// a Web Push, SNS, SMS or e-mail payload (only the operator's own hook gets it).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { getAuthRequest } from '../../functions/adapters/store.ts';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { basic, CIBA_GRANT, postForm, SECRET, startWorld, USER_CODE, type World } from '../support/e2e.ts';
import { NotificationReceiver } from '../support/receiver.ts';
import { enrolDevice, enrolmentProof, generateDeviceKey } from '../../local/device-client.ts';
import { issueEnrolmentCode } from '../../functions/usecases/enrolment.ts';
import { readFileSync } from 'node:fs';
import { CreatePlatformEndpointCommand, SNSClient } from '@aws-sdk/client-sns';
import { loadSeed } from '../../functions/admin/seed.ts';
import { publicDeviceJwk } from '../../local/device-client.ts';
import { PushService, type Subscriber } from '../support/push-service.ts';

let w: World;
let receiver: NotificationReceiver;
let pushService: PushService;
let nina: Subscriber;
const WEBHOOK_SECRET = `whsec_${Buffer.from(`no-secrets-hook-${Math.random()}`).toString('base64')}`;
const logs: string[] = [];
const writes = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };

before(async () => {
  // Capture everything the handlers and local services write, at the most verbose level.
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    logs.push(String(chunk));
    return writes.out(chunk, ...rest);
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    logs.push(String(chunk));
    return writes.err(chunk, ...rest);
  }) as typeof process.stderr.write;
  receiver = await NotificationReceiver.start();
  pushService = await PushService.start();
  nina = pushService.subscribe('nina');
  const base = { client_secret: SECRET, grant_types: [CIBA_GRANT, 'refresh_token'], scope: 'openid profile' };
  const notify = {
    CIBA_NOTIFY_WEBHOOK_URL: receiver.url('/hook'),
    CIBA_NOTIFY_WEBHOOK_SECRET: WEBHOOK_SECRET,
    CIBA_NOTIFY_SMS: 'on',
    CIBA_NOTIFY_EMAIL_FROM: 'ciba@example.com',
  };
  const users = [
    {
      sub: 'nina',
      devices: [
        {
          device_id: 'nina-browser',
          jwk: publicDeviceJwk(generateDeviceKey()),
          channel: { type: 'webpush', subscription: nina.subscription },
        },
      ],
    },
    { sub: 'omar', phone_number: '+15550004444', email: 'omar@example.com', email_verified: true },
  ];
  w = await startWorld(
    { CIBA_POLL_INTERVAL: '1', LOG_LEVEL: 'debug', CIBA_MIN_EXPIRES_IN: '2', ...notify },
    [
      {
        ...base,
        client_id: 'ping-ns',
        backchannel_token_delivery_mode: 'ping',
        backchannel_client_notification_endpoint: receiver.url('/ping'),
      },
      {
        ...base,
        client_id: 'push-ns',
        backchannel_token_delivery_mode: 'push',
        backchannel_client_notification_endpoint: receiver.url('/push'),
      },
      {
        ...base,
        client_id: 'push-401',
        backchannel_token_delivery_mode: 'push',
        backchannel_client_notification_endpoint: receiver.url('/push-401'),
      },
    ],
    users,
  );
});
after(async () => {
  await w.close();
  await receiver.down();
  await pushService.close();
  process.stdout.write = writes.out;
  process.stderr.write = writes.err;
});

test('secrets stay out of executions, SNS messages and logs', async () => {
  const secrets = new Map<string, string>([
    ['client secret', SECRET],
    ['user code', USER_CODE],
  ]);
  const config = await w.rp();

  // approve (with refresh), deny, expire-by-timeout and a user-code request: every workflow path.
  for (const [i, outcome] of (['approve', 'deny', 'expire'] as const).entries()) {
    const bindingMessage = `SECRETS-${i}`;
    const started = await oidc.initiateBackchannelAuthentication(config, {
      scope: 'openid profile',
      login_hint: 'alice',
      binding_message: bindingMessage,
      ...(outcome === 'expire' ? { requested_expiry: '10' } : {}),
    });
    secrets.set(`auth_req_id ${outcome}`, started.auth_req_id);
    const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
    const row = await getAuthRequest(sha256b64u(started.auth_req_id));
    assert.ok(row?.task_token, 'the task token is stored server-side');
    secrets.set(`task token ${outcome}`, row.task_token);
    if (outcome === 'expire') {
      await w.stack.stepFunctions.waitForStatus(request.id, 'SUCCEEDED', 20_000);
      continue;
    }
    assert.equal((await w.alice.decide(request.id, outcome)).status, 204);
    if (outcome === 'approve') {
      const tokens = await oidc.pollBackchannelAuthenticationGrant(config, started);
      secrets.set('access token', tokens.access_token);
      secrets.set('id token', tokens.id_token!);
      secrets.set('refresh token', tokens.refresh_token!);
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      secrets.set('refreshed refresh token', refreshed.refresh_token!);
    }
    await w.stack.stepFunctions.waitForStatus(request.id, 'SUCCEEDED');
  }
  const withCode = await postForm(
    `${w.issuer}/bc-authorize`,
    { scope: 'openid', login_hint: 'alice', user_code: USER_CODE },
    { authorization: basic('user-code', SECRET) },
  );
  assert.equal(withCode.status, 200);
  secrets.set('auth_req_id user-code', String(withCode.json.auth_req_id));
  const wrong = await postForm(
    `${w.issuer}/token`,
    { grant_type: CIBA_GRANT, auth_req_id: String(withCode.json.auth_req_id) },
    { authorization: basic('rp', SECRET) },
  );
  assert.equal(wrong.json.error, 'invalid_grant');

  // Ping and push: approve (push retried once after a 503, so the token set is re-sent), deny, expire, dead-lettered.
  receiver.respond('/push', (n) => (n === 0 ? 503 : 204));
  receiver.respond('/push-401', () => 401);
  for (const [clientId, outcome] of [
    ['ping-ns', 'approve'],
    ['push-ns', 'approve'],
    ['push-ns', 'deny'],
    ['ping-ns', 'expire'],
    ['push-401', 'approve'],
  ] as const) {
    const bindingMessage = `SECRETS-${clientId}-${outcome}`;
    const notificationToken = `nt-${clientId}-${outcome}-${Math.random().toString(36).slice(2)}`;
    secrets.set(`notification token ${clientId} ${outcome}`, notificationToken);
    const res = await postForm(
      `${w.issuer}/bc-authorize`,
      {
        scope: 'openid profile',
        login_hint: 'alice',
        binding_message: bindingMessage,
        client_notification_token: notificationToken,
        ...(outcome === 'expire' ? { requested_expiry: '2' } : {}),
      },
      { authorization: basic(clientId, SECRET) },
    );
    assert.equal(res.status, 200, res.text);
    secrets.set(`auth_req_id ${clientId} ${outcome}`, String(res.json.auth_req_id));
    const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
    const row = await getAuthRequest(request.id);
    assert.ok(row?.delivery_secrets, 'the notification secrets are kept sealed');
    if (outcome !== 'expire') assert.equal((await w.alice.decide(request.id, outcome)).status, 204);
    await w.stack.stepFunctions.waitForStatus(request.id, clientId === 'push-401' ? 'FAILED' : 'SUCCEEDED', 20_000);
  }
  // Device enrolment: codes from a device and from an operator, accepted and refused proofs, push channels.
  const deviceCode = String((await w.alice.enrolmentCode()).json.code);
  const adminCode = (await issueEnrolmentCode('alice', 'admin:test')).code;
  const key = generateDeviceKey();
  const proof = await enrolmentProof(w.issuer, key, deviceCode);
  const wrongProof = await enrolmentProof(w.issuer, generateDeviceKey(), adminCode);
  const pushToken = `fcm-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
  const webPushAuth = Buffer.from(`auth-${Math.random()}`).subarray(0, 16).toString('base64url');
  secrets.set('enrolment code (device)', deviceCode);
  secrets.set('enrolment code (admin)', adminCode);
  secrets.set('enrolment proof', proof);
  secrets.set('refused enrolment proof', wrongProof);
  secrets.set('push token', pushToken);
  secrets.set('Web Push auth secret', webPushAuth);
  assert.equal((await enrolDevice(w.issuer, adminCode, { proof: wrongProof })).status, 400);
  const enrolled = await enrolDevice(w.issuer, deviceCode, {
    key,
    proof,
    name: 'Secret-free tablet',
    channel: { type: 'sns', platform: 'fcm', token: pushToken },
  });
  assert.equal(enrolled.status, 201, enrolled.text);
  assert.equal((await enrolDevice(w.issuer, deviceCode, { key, proof })).status, 400, 'replayed');
  const subscription = {
    endpoint: receiver.url('/webpush'),
    keys: { p256dh: Buffer.alloc(65, 4).toString('base64url'), auth: webPushAuth },
  };
  assert.equal((await enrolled.device!.setChannel({ type: 'webpush', subscription })).status, 204);
  assert.equal((await enrolDevice(w.issuer, adminCode, { name: 'Second' })).status, 201);
  await w.stack.sns.drain();

  // User notifications: Web Push (nina), SNS mobile push (nina's app), SMS and e-mail (omar has no device), the hook.
  const endpoint = await new SNSClient({ endpoint: w.stack.awsEndpoint }).send(
    new CreatePlatformEndpointCommand({
      PlatformApplicationArn: process.env.CIBA_SNS_PLATFORM_FCM_ARN!,
      Token: 'no-secrets-fcm-token-of-nina',
    }),
  );
  await loadSeed({
    users: [
      {
        sub: 'nina',
        devices: [
          {
            device_id: 'nina-browser',
            jwk: publicDeviceJwk(generateDeviceKey()),
            channel: { type: 'webpush', subscription: nina.subscription },
          },
          {
            device_id: 'nina-app',
            jwk: publicDeviceJwk(generateDeviceKey()),
            channel: { type: 'sns', platform: 'fcm', endpoint_arn: endpoint.EndpointArn },
          },
        ],
      },
    ],
  });
  secrets.set('webhook secret', WEBHOOK_SECRET);
  secrets.set('webhook secret key', WEBHOOK_SECRET.slice('whsec_'.length));
  secrets.set('subscription auth secret', nina.subscription.keys.auth);
  secrets.set('subscription private key', nina.ecdh.getPrivateKey().toString('base64url'));
  assert.equal((await fetch(`${w.issuer}/device/config`)).status, 200);
  const vapidKey = JSON.parse(readFileSync(process.env.CIBA_VAPID_KEY_FILE!, 'utf8')) as { d: string };
  secrets.set('VAPID private key', vapidKey.d);
  for (const sub of ['nina', 'omar']) {
    const res = await postForm(
      `${w.issuer}/bc-authorize`,
      { scope: 'openid', login_hint: sub, binding_message: `SECRETS-USER-${sub}` },
      { authorization: basic('rp', SECRET) },
    );
    assert.equal(res.status, 200, res.text);
    secrets.set(`auth_req_id ${sub}`, String(res.json.auth_req_id));
  }
  await pushService.waitFor(nina, 1);
  const outboxTo = () => new Set(w.stack.outbox.entries().map((e) => e.to));
  const expected = [endpoint.EndpointArn!, '+15550004444', 'omar@example.com'];
  for (let i = 0; i < 400 && !expected.every((to) => outboxTo().has(to)); i++)
    await new Promise((r) => setTimeout(r, 25));
  await w.stack.sns.drain();
  assert.deepEqual(
    expected.filter((to) => !outboxTo().has(to)),
    [],
    'SNS mobile push, SMS and e-mail are in the outbox',
  );
  for (const r of pushService.received(nina)) assert.equal(r.error, undefined, `Web Push to nina: ${r.error}`);
  assert.ok(receiver.received('/hook').length >= 2, 'the operator hook was called');
  const payloads: [string, string][] = [
    ...pushService
      .received()
      .map((r, i): [string, string] => [`Web Push ${i}`, `${r.text}${JSON.stringify(r.headers)}`]),
    ...w.stack.outbox.entries().map((e, i): [string, string] => [`outbox ${e.channel} ${i}`, JSON.stringify(e)]),
  ];
  for (const [where, text] of payloads) assert.ok(!text.includes('SECRETS-'), `a binding message appears in ${where}`);

  for (const push of receiver.received('/push')) {
    for (const field of ['access_token', 'id_token', 'refresh_token'] as const) {
      if (typeof push.json[field] === 'string') secrets.set(`pushed ${field}`, push.json[field]);
    }
  }
  assert.ok(
    secrets.has('pushed access_token') && receiver.received('/push').length >= 3,
    'a retried push and a denied push arrived',
  );
  assert.ok(w.stack.sqs.deadLetters().length >= 1, 'the 401 push was dead-lettered');

  const executions = w.stack.stepFunctions.executions();
  assert.ok(executions.length >= 4);
  const places: [string, string][] = [
    ...executions.map((e): [string, string] => [
      `execution ${e.name}`,
      JSON.stringify(e) + JSON.stringify(w.stack.stepFunctions.history(e.executionArn)),
    ]),
    ...w.stack.sns.messages().map((m, i): [string, string] => [`SNS message ${i}`, JSON.stringify(m)]),
    ...w.stack.sqs.deadLetters().map((m, i): [string, string] => [`dead letter ${i}`, JSON.stringify(m)]),
    ...payloads,
    ...receiver
      .received('/hook')
      .map((r, i): [string, string] => [`webhook POST ${i}`, JSON.stringify(r.headers) + r.body]),
    ['logs', logs.join('')],
  ];
  assert.ok(w.stack.sns.messages().length >= 3, 'device notifications were published');
  assert.ok(logs.join('').includes('backchannel request accepted'), 'handler logs were captured');
  for (const [where, text] of places) {
    for (const [what, secret] of secrets) {
      assert.ok(!text.includes(secret), `${what} appears in ${where}`);
      // also the URL-encoded and JSON-escaped forms
      assert.ok(!text.includes(encodeURIComponent(secret)), `${what} (url-encoded) appears in ${where}`);
    }
  }
});

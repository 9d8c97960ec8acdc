// functions/core/user-notification.ts: what each channel carries (no secret, no binding message outside the operator
// hook), which channels a notice goes to, what a push service's / AWS's / the hook's answer means (RFC 8030 §5-§7,
// Standard Webhooks), and the retry schedule (docs/notifications.md).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  classifyAwsError,
  classifyPushService,
  classifyWebhook,
  devicePayload,
  emailAddress,
  fallbackMessage,
  isUnreachable,
  needsProfile,
  nextAttemptDelay,
  noticeDeadline,
  noticeKey,
  type Notice,
  parseNotice,
  planTargets,
  pushTtlSeconds,
  RETRY,
  smsNumber,
  snsPushMessage,
  VAPID_SUBJECT,
  webhookBody,
} from '../../functions/core/user-notification.ts';
import type { Device, User } from '../../functions/core/model.ts';

const REQUEST: Notice = {
  type: 'ciba.authentication_request',
  requestId: 'req-1',
  sub: 'alice',
  clientId: 'rp',
  clientName: 'Store POS',
  bindingMessage: 'ORDER-4711',
  scope: 'openid',
  expiresAt: 1_900_000_000,
};
const ENROLLED: Notice = { type: 'ciba.device_enrolled', sub: 'alice', deviceId: 'new-phone', name: 'New phone' };
const JWK = { kty: 'EC', crv: 'P-256', x: 'x', y: 'y' };
const webpush = (id: string): Device => ({
  device_id: id,
  sub: 'alice',
  jwk: JWK,
  channel: {
    type: 'webpush',
    subscription: { endpoint: `https://push.example/${id}`, keys: { p256dh: 'p', auth: 'a' } },
  },
});
const snsDevice = (id: string): Device => ({
  device_id: id,
  sub: 'alice',
  jwk: JWK,
  channel: { type: 'sns', platform: 'fcm', endpoint_arn: `arn:aws:sns:eu-west-1:123456789012:endpoint/GCM/app/${id}` },
});
const polling = (id: string): Device => ({ device_id: id, sub: 'alice', jwk: JWK });
const ALICE: User = {
  sub: 'alice',
  phone_number: '+1 (555) 123-4567',
  email: 'alice@example.com',
  email_verified: true,
};
const ALL = { webhook: true, sms: true, email: true };
const NONE = { webhook: false, sms: false, email: false };

describe('parseNotice: the device topic messages', () => {
  test('an authentication request as notify-device publishes it', () => {
    const { type, requestId, sub, clientId, clientName, bindingMessage, scope, expiresAt } = REQUEST as Extract<
      Notice,
      { type: 'ciba.authentication_request' }
    >;
    const message = { type, requestId, sub, clientId, clientName, bindingMessage, scope, expiresAt };
    assert.deepEqual(parseNotice(message), REQUEST);
  });

  test('an enrolment notice {type, sub, device_id, name}', () => {
    assert.deepEqual(
      parseNotice({ type: 'ciba.device_enrolled', sub: 'alice', device_id: 'new-phone', name: 'New phone' }),
      ENROLLED,
    );
    assert.deepEqual(parseNotice({ type: 'ciba.device_enrolled', sub: 'alice', device_id: 'd' }), {
      type: 'ciba.device_enrolled',
      sub: 'alice',
      deviceId: 'd',
    });
  });

  test('anything else is not a notice', () => {
    for (const m of [
      null,
      'text',
      [],
      { type: 'ciba.delivery', requestId: 'x' },
      { type: 'ciba.authentication_request', sub: 'alice' },
      { ...REQUEST, expiresAt: 'soon' },
      { type: 'ciba.device_enrolled', sub: 'alice' },
    ])
      assert.equal(parseNotice(m), undefined, JSON.stringify(m));
  });
});

describe('payloads', () => {
  test('a device gets {type, request_id, expires_at}: no binding message, client or secret', () => {
    assert.deepEqual(devicePayload(REQUEST), {
      type: 'ciba.authentication_request',
      request_id: 'req-1',
      expires_at: 1_900_000_000,
    });
    assert.deepEqual(devicePayload(ENROLLED), {
      type: 'ciba.device_enrolled',
      device_id: 'new-phone',
      name: 'New phone',
    });
  });

  test('SNS mobile push: the same JSON as default, FCM data of strings, an APNs alert that reveals nothing', () => {
    const message = JSON.parse(snsPushMessage(devicePayload(REQUEST))) as Record<string, string>;
    assert.deepEqual(JSON.parse(message.default!), devicePayload(REQUEST));
    assert.deepEqual(JSON.parse(message.GCM!), {
      data: { type: 'ciba.authentication_request', request_id: 'req-1', expires_at: '1900000000' },
    });
    const apns = JSON.parse(message.APNS!) as { aps: { alert: { title: string; body: string } }; ciba: unknown };
    assert.deepEqual(apns.ciba, devicePayload(REQUEST));
    assert.equal(message.APNS, message.APNS_SANDBOX);
    assert.ok(!JSON.stringify(message).includes('ORDER-4711'));
  });

  test('the operator hook gets the request details, absent fields omitted', () => {
    assert.deepEqual(webhookBody(REQUEST), {
      type: 'ciba.authentication_request',
      request_id: 'req-1',
      sub: 'alice',
      client_id: 'rp',
      client_name: 'Store POS',
      binding_message: 'ORDER-4711',
      scope: 'openid',
      expires_at: 1_900_000_000,
    });
    const bare = { ...REQUEST, clientName: undefined, bindingMessage: undefined };
    assert.deepEqual(Object.keys(webhookBody(parseNotice(bare)!)).sort(), [
      'client_id',
      'expires_at',
      'request_id',
      'scope',
      'sub',
      'type',
    ]);
    assert.deepEqual(webhookBody(ENROLLED), {
      type: 'ciba.device_enrolled',
      sub: 'alice',
      device_id: 'new-phone',
      name: 'New phone',
    });
  });

  test('SMS and e-mail: a short text with the device app link, the client name, never the binding message', () => {
    const m = fallbackMessage(
      REQUEST as Extract<Notice, { type: 'ciba.authentication_request' }>,
      'https://id.example',
    );
    assert.equal(m.subject, 'Sign-in request');
    assert.equal(
      m.text,
      'Store POS asks you to sign in. Review it in your device app: https://id.example/device/#request=req-1',
    );
    assert.ok(m.text.length <= 160);
    const long = fallbackMessage(
      { ...(REQUEST as Extract<Notice, { type: 'ciba.authentication_request' }>), clientName: 'x'.repeat(200) },
      'https://id.example',
    );
    assert.ok(long.text.length < 160, 'a long client name is cut');
  });
});

describe('planTargets: which channels', () => {
  test('every device with a channel, and the hook; no fallback then', () => {
    const plan = planTargets(REQUEST, [webpush('a'), snsDevice('b'), polling('c')], ALICE, ALL);
    assert.deepEqual(
      plan.targets.map((t) => t.key),
      ['webpush#a', 'sns#b', 'webhook'],
    );
    assert.equal(plan.userTargets, 2);
    assert.equal(plan.pollingDevices, 1);
  });

  test('no device channel: SMS to an E.164 number and e-mail to a verified address, when configured', () => {
    assert.deepEqual(planTargets(REQUEST, [polling('c')], ALICE, ALL).targets, [
      { channel: 'sms', key: 'sms', phoneNumber: '+15551234567' },
      { channel: 'email', key: 'email', address: 'alice@example.com' },
      { channel: 'webhook', key: 'webhook' },
    ]);
    assert.deepEqual(planTargets(REQUEST, [], ALICE, { ...ALL, sms: false, webhook: false }).targets, [
      { channel: 'email', key: 'email', address: 'alice@example.com' },
    ]);
    assert.deepEqual(planTargets(REQUEST, [], ALICE, NONE).targets, []);
    assert.deepEqual(planTargets(REQUEST, [], { ...ALICE, email_verified: false, phone_number: '555' }, ALL).targets, [
      { channel: 'webhook', key: 'webhook' },
    ]);
  });

  test('the profile is read only when a fallback could be used', () => {
    assert.equal(needsProfile(REQUEST, [webpush('a')], ALL), false);
    assert.equal(needsProfile(REQUEST, [polling('a')], ALL), true);
    assert.equal(needsProfile(REQUEST, [], NONE), false);
    assert.equal(needsProfile(ENROLLED, [], ALL), false);
  });

  test("an enrolment notice goes to the user's other devices and the hook, never by SMS or e-mail", () => {
    const plan = planTargets(ENROLLED, [webpush('new-phone'), webpush('laptop'), snsDevice('tablet')], ALICE, ALL);
    assert.deepEqual(
      plan.targets.map((t) => t.key),
      ['webpush#laptop', 'sns#tablet', 'webhook'],
    );
    assert.deepEqual(
      planTargets(ENROLLED, [webpush('new-phone')], ALICE, ALL).targets.map((t) => t.key),
      ['webhook'],
    );
  });

  test('a disabled user gets nothing; devices of another user are never used', () => {
    assert.deepEqual(planTargets(REQUEST, [webpush('a')], { ...ALICE, disabled: true }, ALL).targets, []);
    assert.deepEqual(planTargets(REQUEST, [{ ...webpush('a'), sub: 'bob' }], undefined, NONE).targets, []);
  });

  test('contacts: E.164 after dropping separators, unless marked unverified; only a verified e-mail', () => {
    assert.equal(smsNumber({ sub: 's', phone_number: '+44 20 7946.0958' }), '+442079460958');
    assert.equal(smsNumber({ sub: 's', phone_number: '020 7946 0958' }), undefined);
    assert.equal(smsNumber({ sub: 's', phone_number: '+15551234567', phone_number_verified: false }), undefined);
    assert.equal(emailAddress({ sub: 's', email: 'a@b.example' }), undefined);
    assert.equal(emailAddress({ sub: 's', email: 'a@b.example', email_verified: true }), 'a@b.example');
    assert.equal(emailAddress({ sub: 's', email: 'not an address', email_verified: true }), undefined);
  });
});

describe('what an answer means', () => {
  test('RFC 8030: 2xx accepted; 404 and 410 end the subscription; 429, 408, 5xx retried; redirects and other 4xx final', () => {
    for (const status of [200, 201, 202]) assert.equal(classifyPushService(status).kind, 'delivered', String(status));
    for (const status of [404, 410]) assert.equal(classifyPushService(status).kind, 'gone', String(status));
    for (const status of [408, 429, 500, 502, 503])
      assert.equal(classifyPushService(status).kind, 'retry', String(status));
    for (const status of [301, 302, 307, 400, 401, 403, 413])
      assert.equal(classifyPushService(status).kind, 'rejected', String(status));
    assert.match(classifyPushService(302).detail, /push service \(redirects are not followed\)/);
  });

  test('the operator hook: as a ping client (2xx delivered, 5xx/408/429 retried, the rest final)', () => {
    assert.equal(classifyWebhook(204).kind, 'delivered');
    assert.equal(classifyWebhook(503).kind, 'retry');
    assert.equal(classifyWebhook(410).kind, 'rejected', 'a gone hook is not a gone user channel');
    assert.match(classifyWebhook(400).detail, /from the webhook/);
  });

  test('AWS errors: throttling and server faults retried; a disabled endpoint and client faults final', () => {
    assert.equal(classifyAwsError({ name: 'ThrottlingException', $fault: 'client' }).kind, 'retry');
    assert.equal(classifyAwsError({ name: 'InternalErrorException', $fault: 'server' }).kind, 'retry');
    assert.equal(classifyAwsError({ name: 'EndpointDisabledException', $fault: 'client' }).kind, 'rejected');
    assert.equal(classifyAwsError({ name: 'InvalidParameterException', $fault: 'client' }).kind, 'rejected');
    assert.equal(classifyAwsError({ name: 'MessageRejected', $fault: 'client' }).kind, 'rejected');
    assert.equal(classifyAwsError(new TypeError('fetch failed')).kind, 'retry');
  });
});

describe('retries', () => {
  test('exponential from 0.5 s, capped at 8 s, with jitter, at most RETRY.maxAttempts attempts', () => {
    const now = 0;
    const far = 3_600_000;
    assert.equal(nextAttemptDelay(1, now, far, 0), 250);
    assert.equal(nextAttemptDelay(1, now, far, 1), 500);
    assert.equal(nextAttemptDelay(2, now, far, 1), 1000);
    assert.equal(nextAttemptDelay(5, now, far, 1), 8000);
    assert.equal(nextAttemptDelay(5, now, far, 0), 4000);
    assert.equal(nextAttemptDelay(RETRY.maxAttempts, now, far, 1), undefined);
    let total = 0;
    for (let n = 1; n < RETRY.maxAttempts; n++) total += nextAttemptDelay(n, now, far, 1)!;
    assert.equal(total, 15_500, 'at most 15.5 s of waiting in all (docs/notifications.md)');
  });

  test('never past the deadline (the request expiry or the invocation time limit)', () => {
    assert.equal(nextAttemptDelay(1, 1000, 1400, 1), undefined);
    assert.equal(nextAttemptDelay(1, 1000, 1600, 1), 500);
  });

  test('deadlines, TTL and idempotency keys', () => {
    assert.equal(noticeDeadline(REQUEST, 0), 1_900_000_000_000);
    assert.equal(noticeDeadline(ENROLLED, 1000), 3_601_000);
    assert.equal(pushTtlSeconds(REQUEST, 1_899_999_900_000), 100);
    assert.equal(pushTtlSeconds(REQUEST, 1_999_999_999_000), 0);
    assert.equal(pushTtlSeconds(ENROLLED, 0), 86_400);
    assert.equal(noticeKey(REQUEST, 'msg-1'), 'REQ#req-1', 'a request is notified once, however often it is published');
    assert.equal(noticeKey(ENROLLED, 'msg-1'), 'MSG#msg-1');
  });
});

describe('isUnreachable', () => {
  const plan = (userTargets: number, pollingDevices = 0) => ({ targets: [], userTargets, pollingDevices });
  test('every user channel failed for good', () => {
    assert.equal(
      isUnreachable(REQUEST, plan(2), [
        { key: 'webpush#a', kind: 'gone' },
        { key: 'sms', kind: 'retry' },
        { key: 'webhook', kind: 'delivered' },
      ]),
      true,
      'the operator hook does not reach the user',
    );
    assert.equal(
      isUnreachable(REQUEST, plan(2), [
        { key: 'webpush#a', kind: 'gone' },
        { key: 'sms', kind: 'delivered' },
      ]),
      false,
    );
  });

  test('no channel and no device at all; but devices that poll, another invocation at work, or an enrolment notice are not', () => {
    assert.equal(isUnreachable(REQUEST, plan(0, 0), []), true);
    assert.equal(isUnreachable(REQUEST, plan(0, 1), []), false);
    assert.equal(isUnreachable(REQUEST, plan(1), [{ key: 'webpush#a', kind: 'skipped' }]), false);
    assert.equal(isUnreachable(ENROLLED, plan(0), []), false);
  });
});

test('VAPID subject: a mailto: or https: contact', () => {
  for (const ok of ['mailto:ops@example.com', 'https://example.com/contact']) assert.ok(VAPID_SUBJECT.test(ok), ok);
  for (const bad of ['ops@example.com', 'http://example.com', 'mailto:', 'https://'])
    assert.ok(!VAPID_SUBJECT.test(bad), bad);
});

// functions/core/notification.ts and the client_notification_token check: what ping and push POST (CIBA Core §10.2,
// §10.3.1, §12) and how the client's answer is treated (docs/architecture.md).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  classifyNetworkError,
  classifyResponse,
  notificationBody,
  outcomeOf,
  NOTIFICATION_TOKEN_MAX,
  type PushTokens,
} from '../../functions/core/notification.ts';
import { checkNotificationToken } from '../../functions/core/backchannel-request.ts';
import { CIBA_GRANT, type Client, type DeliveryMode } from '../../functions/core/model.ts';
import { throwsOAuth } from './helpers/oauth-assert.ts';

const TOKENS: PushTokens = {
  access_token: 'at',
  token_type: 'Bearer',
  expires_in: 600,
  refresh_token: 'rt',
  id_token: 'idt',
};

describe('notificationBody', () => {
  test('§10.2 ping carries only auth_req_id, whatever the outcome', () => {
    for (const outcome of ['approved', 'denied', 'expired', 'failed'] as const) {
      assert.deepEqual(notificationBody('ping', outcome, 'abc', TOKENS), { auth_req_id: 'abc' });
    }
  });
  test('§10.3.1 push success: auth_req_id and the token set, nothing else (no scope)', () => {
    assert.deepEqual(notificationBody('push', 'approved', 'abc', TOKENS), {
      auth_req_id: 'abc',
      access_token: 'at',
      token_type: 'Bearer',
      expires_in: 600,
      refresh_token: 'rt',
      id_token: 'idt',
    });
    const { refresh_token: _, ...noRefresh } = TOKENS;
    assert.equal('refresh_token' in notificationBody('push', 'approved', 'abc', noRefresh), false);
    assert.throws(() => notificationBody('push', 'approved', 'abc'), /token set/);
  });
  test('§12 push errors: access_denied, expired_token, transaction_failed with auth_req_id', () => {
    for (const [outcome, error] of [
      ['denied', 'access_denied'],
      ['expired', 'expired_token'],
      ['failed', 'transaction_failed'],
    ] as const) {
      const body = notificationBody('push', outcome, 'abc');
      assert.deepEqual(Object.keys(body).sort(), ['auth_req_id', 'error', 'error_description']);
      assert.equal(body.error, error);
      assert.equal(body.auth_req_id, 'abc');
      assert.match(
        String(body.error_description),
        /^[\x20-\x21\x23-\x5B\x5D-\x7E]+$/,
        '§12 error_description: printable ASCII without " and \\',
      );
    }
  });
  test('outcomeOf: what a stored status tells the client', () => {
    assert.equal(outcomeOf('approved'), 'approved');
    assert.equal(outcomeOf('redeemed'), 'approved', 'a push set minted by an earlier attempt');
    assert.equal(outcomeOf('denied'), 'denied');
    assert.equal(outcomeOf('expired'), 'expired');
    assert.equal(outcomeOf('failed'), 'failed');
    assert.equal(outcomeOf('pending'), undefined);
  });
});

describe('classifyResponse', () => {
  test('2xx is delivered: 200 with any body, 204, 202', () => {
    for (const status of [200, 201, 202, 204, 299])
      assert.equal(classifyResponse(status).kind, 'delivered', String(status));
  });
  test('3xx is final and never followed', () => {
    for (const status of [301, 302, 303, 307, 308]) {
      const r = classifyResponse(status);
      assert.equal(r.kind, 'rejected', String(status));
      assert.match(r.detail, /not followed/);
    }
  });
  test('4xx is final, except 408 and 429 (the client asks to try later)', () => {
    for (const status of [400, 401, 403, 404, 405, 410, 413, 415, 422])
      assert.equal(classifyResponse(status).kind, 'rejected', String(status));
    for (const status of [408, 429]) assert.equal(classifyResponse(status).kind, 'retry', String(status));
  });
  test('5xx and no answer at all are retried', () => {
    for (const status of [500, 502, 503, 504, 599])
      assert.equal(classifyResponse(status).kind, 'retry', String(status));
    assert.equal(classifyNetworkError('ECONNREFUSED').kind, 'retry');
    assert.match(classifyNetworkError('ECONNRESET').detail, /ECONNRESET/);
  });
});

describe('checkNotificationToken (§7.1)', () => {
  const client = (mode: DeliveryMode): Client => ({
    client_id: 'c',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: [CIBA_GRANT],
    scope: 'openid',
    backchannel_token_delivery_mode: mode,
    backchannel_user_code_parameter: false,
    id_token_signed_response_alg: 'RS256',
  });
  const params = (token?: string) => new Map(token === undefined ? [] : [['client_notification_token', token]]);
  test('required for ping and push clients → invalid_request (400)', () => {
    for (const mode of ['ping', 'push'] as const) {
      throwsOAuth(() => checkNotificationToken(params(), client(mode)), 'invalid_request', 400);
      throwsOAuth(() => checkNotificationToken(params(''), client(mode)), 'invalid_request', 400);
    }
  });
  test(`at most ${NOTIFICATION_TOKEN_MAX} characters`, () => {
    assert.equal(
      checkNotificationToken(params('a'.repeat(NOTIFICATION_TOKEN_MAX)), client('ping')),
      'a'.repeat(NOTIFICATION_TOKEN_MAX),
    );
    throwsOAuth(
      () => checkNotificationToken(params('a'.repeat(NOTIFICATION_TOKEN_MAX + 1)), client('ping')),
      'invalid_request',
      400,
    );
  });
  test('RFC 6750 §2.1 b64token: ALPHA DIGIT - . _ ~ + / then = padding only', () => {
    for (const ok of ['abc', 'A-b.c_d~e+f/g', 'abc==', '8d67dc78-7faa-4d41-aabd-67707b374255'])
      assert.equal(checkNotificationToken(params(ok), client('push')), ok);
    for (const bad of ['a b', 'a=b', '=abc', 'tok\u00e9n', 'a"b', 'a,b', 'a\nb'])
      throwsOAuth(() => checkNotificationToken(params(bad), client('push')), 'invalid_request', 400);
  });
  test('a poll client never needs one, and one it sends is dropped', () => {
    assert.equal(checkNotificationToken(params(), client('poll')), undefined);
    assert.equal(checkNotificationToken(params('whatever'), client('poll')), undefined);
  });
});

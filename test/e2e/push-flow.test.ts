// Push mode end to end (CIBA Core §10.3, §10.3.1, §12): the token set, or the error, is POSTed to the client's
// notification endpoint; the ID token binds it (auth_req_id, at_hash, rt_hash); the token endpoint refuses push ids.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { basic, CIBA_GRANT, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';
import { NotificationReceiver } from '../support/receiver.ts';
import { getAuthRequest } from '../../functions/adapters/store.ts';

let w: World;
let receiver: NotificationReceiver;
const NOTIFICATION_TOKEN = 'push-notification-token.0123456789~abcdef';

before(async () => {
  receiver = await NotificationReceiver.start();
  const push = { scope: 'openid profile email', client_secret: SECRET, backchannel_token_delivery_mode: 'push' };
  w = await startWorld({ CIBA_POLL_INTERVAL: '1', CIBA_MIN_EXPIRES_IN: '2' }, [
    {
      ...push,
      client_id: 'push-rp',
      grant_types: [CIBA_GRANT, 'refresh_token'],
      backchannel_client_notification_endpoint: receiver.url('/push-rp'),
    },
    {
      ...push,
      client_id: 'push-es256',
      grant_types: [CIBA_GRANT],
      id_token_signed_response_alg: 'ES256',
      backchannel_client_notification_endpoint: receiver.url('/push-es256'),
    },
  ]);
});
after(async () => {
  await w.close();
  await receiver.down();
});

/** OIDC Core §3.1.3.6 at_hash: left half of the hash of the ASCII token, base64url. */
const halfHash = (value: string, alg: string) => {
  const digest = createHash(alg === 'ES256' || alg === 'RS256' || alg === 'PS256' ? 'sha256' : 'sha512')
    .update(value)
    .digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
};

async function start(clientId: string, params: Record<string, string> = {}) {
  const bindingMessage = `PU-${Math.random().toString(36).slice(2, 8)}`;
  const res = await postForm(
    `${w.issuer}/bc-authorize`,
    {
      scope: 'openid profile',
      login_hint: 'alice',
      binding_message: bindingMessage,
      client_notification_token: NOTIFICATION_TOKEN,
      ...params,
    },
    { authorization: basic(clientId, SECRET) },
  );
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.interval, undefined, '§7.3: no interval for push clients');
  return { authReqId: String(res.json.auth_req_id), bindingMessage, before: receiver.received(`/${clientId}`).length };
}

async function states(requestId: string) {
  const execution = await w.stack.stepFunctions.waitForStatus(requestId, 'SUCCEEDED', 20_000);
  return w.stack.stepFunctions
    .history(execution.executionArn)
    .filter((e) => e.type === 'StateEntered')
    .map((e) => e.stateName);
}

describe('§10.3 push', () => {
  test('approve: the token set with an ID token bound to it, verified against the JWKS', async () => {
    const { authReqId, bindingMessage, before: n } = await start('push-rp');
    const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
    assert.equal((await w.alice.decide(request.id, 'approve')).status, 204);

    const [push] = (await receiver.waitFor('/push-rp', n + 1)).slice(n);
    assert.equal(push!.headers.authorization, `Bearer ${NOTIFICATION_TOKEN}`);
    assert.match(String(push!.headers['content-type']), /^application\/json/);
    const body = push!.json as Record<string, string | number>;
    assert.deepEqual(Object.keys(body).sort(), [
      'access_token',
      'auth_req_id',
      'expires_in',
      'id_token',
      'refresh_token',
      'token_type',
    ]);
    assert.equal(body.auth_req_id, authReqId);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(typeof body.expires_in, 'number');

    const jwks = createRemoteJWKSet(new URL(`${w.issuer}/jwks`));
    const { payload: idToken } = await jwtVerify(String(body.id_token), jwks, {
      issuer: w.issuer,
      audience: 'push-rp',
    });
    assert.equal(idToken.sub, 'alice');
    assert.equal(idToken['urn:openid:params:jwt:claim:auth_req_id'], authReqId, '§10.3.1 auth_req_id claim');
    assert.equal(idToken.at_hash, halfHash(String(body.access_token), 'RS256'), '§10.3.1 at_hash');
    assert.equal(
      idToken['urn:openid:params:jwt:claim:rt_hash'],
      halfHash(String(body.refresh_token), 'RS256'),
      '§10.3.1 rt_hash',
    );
    const { payload: access } = await jwtVerify(String(body.access_token), jwks, {
      issuer: w.issuer,
      audience: w.issuer,
      typ: 'at+jwt',
    });
    assert.equal(access.client_id, 'push-rp');

    // The pushed tokens work: userinfo and the refresh grant.
    const config = await w.rp('push-rp');
    const userinfo = await oidc.fetchUserInfo(config, String(body.access_token), 'alice');
    assert.equal(userinfo.name, 'Alice Example');
    const refreshed = await oidc.refreshTokenGrant(config, String(body.refresh_token));
    assert.ok(refreshed.access_token);

    assert.deepEqual(await states(request.id), ['AwaitDecision', 'Deliver']);
    const row = await getAuthRequest(request.id);
    assert.equal(row?.status, 'redeemed');
    assert.equal(row?.push_tokens, undefined, 'the sealed token set is gone once delivered');
    assert.equal(row?.delivery_secrets, undefined);
  });

  test('without refresh_token grant: no refresh token and no rt_hash; ES256 ID token hashes with SHA-256', async () => {
    const { authReqId, bindingMessage, before: n } = await start('push-es256');
    const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
    await w.alice.decide(request.id, 'approve');
    const [push] = (await receiver.waitFor('/push-es256', n + 1)).slice(n);
    const body = push!.json as Record<string, string>;
    assert.equal(body.refresh_token, undefined);
    assert.equal(decodeProtectedHeader(body.id_token!).alg, 'ES256');
    const { payload } = await jwtVerify(body.id_token!, createRemoteJWKSet(new URL(`${w.issuer}/jwks`)), {
      issuer: w.issuer,
      audience: 'push-es256',
    });
    assert.equal(payload['urn:openid:params:jwt:claim:auth_req_id'], authReqId);
    assert.equal(payload.at_hash, halfHash(body.access_token!, 'ES256'));
    assert.equal(payload['urn:openid:params:jwt:claim:rt_hash'], undefined);
    await states(request.id);
  });

  test('deny: §12 error payload access_denied', async () => {
    const { authReqId, bindingMessage, before: n } = await start('push-rp');
    const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
    await w.alice.decide(request.id, 'deny');
    const [push] = (await receiver.waitFor('/push-rp', n + 1)).slice(n);
    assert.equal(push!.headers.authorization, `Bearer ${NOTIFICATION_TOKEN}`);
    assert.deepEqual(Object.keys(push!.json).sort(), ['auth_req_id', 'error', 'error_description']);
    assert.equal(push!.json.error, 'access_denied');
    assert.equal(push!.json.auth_req_id, authReqId);
    assert.match(
      String(push!.json.error_description),
      /^[\x20-\x21\x23-\x5B\x5D-\x7E]+$/,
      'printable ASCII without " and \\',
    );
    assert.deepEqual(await states(request.id), ['AwaitDecision', 'Deliver']);
  });

  test('expire: §12 error payload expired_token', async () => {
    const { authReqId, bindingMessage, before: n } = await start('push-rp', { requested_expiry: '2' });
    const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
    const [push] = (await receiver.waitFor('/push-rp', n + 1)).slice(n);
    assert.equal(push!.json.error, 'expired_token');
    assert.equal(push!.json.auth_req_id, authReqId);
    assert.deepEqual(await states(request.id), ['AwaitDecision', 'Deliver']);
  });

  test("a push client's auth_req_id is never redeemable at the token endpoint", async () => {
    const { authReqId, bindingMessage, before: n } = await start('push-rp');
    const pollIt = () =>
      postForm(
        `${w.issuer}/token`,
        { grant_type: CIBA_GRANT, auth_req_id: authReqId },
        { authorization: basic('push-rp', SECRET) },
      );
    const pending = await pollIt();
    assert.equal(pending.status, 400);
    assert.equal(pending.json.error, 'invalid_grant');
    const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
    await w.alice.decide(request.id, 'approve');
    await receiver.waitFor('/push-rp', n + 1);
    const approved = await pollIt();
    assert.equal(approved.status, 400);
    assert.equal(approved.json.error, 'invalid_grant');
    assert.equal(approved.json.access_token, undefined);
    await states(request.id);
  });
});

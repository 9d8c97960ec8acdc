// Ping mode end to end (CIBA Core §7.1, §10.2): the client is told `{auth_req_id}` at its notification endpoint when
// the request ends (approved, denied, expired), then redeems at the token endpoint with openid-client.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { basic, CIBA_GRANT, postForm, SECRET, sleep, startWorld, type World } from '../support/e2e.ts';
import { NotificationReceiver } from '../support/receiver.ts';
import { getAuthRequest } from '../../functions/adapters/store.ts';

let w: World;
let receiver: NotificationReceiver;
const NOTIFICATION_TOKEN = 'ping-notification-token-0123456789abcdefABCDEF';

before(async () => {
  receiver = await NotificationReceiver.start();
  const ping = {
    grant_types: [CIBA_GRANT, 'refresh_token'],
    scope: 'openid profile email',
    client_secret: SECRET,
    backchannel_token_delivery_mode: 'ping',
  };
  w = await startWorld({ CIBA_POLL_INTERVAL: '1', CIBA_MIN_EXPIRES_IN: '2' }, [
    {
      ...ping,
      client_id: 'ping-rp',
      client_name: 'Call centre',
      backchannel_client_notification_endpoint: receiver.url('/ping-rp'),
    },
  ]);
});
after(async () => {
  await w.close();
  await receiver.down();
});

const bcUrl = () => `${w.issuer}/bc-authorize`;

async function start(path: string, params: Record<string, string> = {}) {
  const config = await w.rp('ping-rp');
  const bindingMessage = `P-${Math.random().toString(36).slice(2, 8)}`;
  const started = await oidc.initiateBackchannelAuthentication(config, {
    scope: 'openid profile',
    login_hint: 'alice',
    binding_message: bindingMessage,
    client_notification_token: NOTIFICATION_TOKEN,
    ...params,
  });
  return { config, started, bindingMessage, before: receiver.received(path).length };
}

async function states(requestId: string, status = 'SUCCEEDED') {
  const execution = await w.stack.stepFunctions.waitForStatus(requestId, status, 20_000);
  return w.stack.stepFunctions
    .history(execution.executionArn)
    .filter((e) => e.type === 'StateEntered')
    .map((e) => e.stateName);
}

describe('§7.1 client_notification_token', () => {
  test('required for a ping client, at most 1024 characters, RFC 6750 bearer syntax', async () => {
    const auth = { authorization: basic('ping-rp', SECRET) };
    const base = { scope: 'openid', login_hint: 'alice' };
    for (const [token, why] of [
      [undefined, 'missing'],
      ['', 'empty'],
      ['a'.repeat(1025), 'too long'],
      ['has space', 'bad syntax'],
      ['a=b', '= inside'],
    ] as const) {
      const res = await postForm(
        bcUrl(),
        { ...base, ...(token !== undefined ? { client_notification_token: token } : {}) },
        auth,
      );
      assert.equal(res.status, 400, why);
      assert.equal(res.json.error, 'invalid_request', why);
      assert.match(String(res.json.error_description), /client_notification_token/, why);
    }
    const longest = await postForm(bcUrl(), { ...base, client_notification_token: 'A'.repeat(1022) + '==' }, auth);
    assert.equal(longest.status, 200, '1024 characters with b64token padding are accepted');
    assert.equal(longest.json.interval, 1, '§7.3 interval is returned to ping clients');
  });

  test('a poll client may send one; it is ignored', async () => {
    const res = await postForm(
      bcUrl(),
      { scope: 'openid', login_hint: 'alice', client_notification_token: 'ignored' },
      { authorization: basic('rp', SECRET) },
    );
    assert.equal(res.status, 200);
    const row = await getAuthRequest(
      (await import('../../functions/core/crypto.ts')).sha256b64u(String(res.json.auth_req_id)),
    );
    assert.equal(row?.delivery_secrets, undefined, 'nothing kept for a poll request');
  });
});

describe('§10.2 ping', () => {
  test('approve: {auth_req_id} with the bearer token, then tokens from the token endpoint', async () => {
    const { config, started, bindingMessage, before: n } = await start('/ping-rp');
    const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
    assert.equal((await w.alice.decide(request.id, 'approve')).status, 204);

    const [ping] = (await receiver.waitFor('/ping-rp', n + 1)).slice(n);
    assert.equal(ping!.method, 'POST');
    assert.equal(ping!.headers.authorization, `Bearer ${NOTIFICATION_TOKEN}`);
    assert.match(String(ping!.headers['content-type']), /^application\/json/);
    assert.deepEqual(JSON.parse(ping!.body), { auth_req_id: started.auth_req_id }, 'exactly {auth_req_id} (§10.2)');

    const tokens = await oidc.genericGrantRequest(config, CIBA_GRANT, { auth_req_id: started.auth_req_id });
    assert.equal(tokens.claims()?.sub, 'alice');
    assert.ok(tokens.refresh_token);
    assert.deepEqual(await states(request.id), ['AwaitDecision', 'Deliver']);

    const row = await getAuthRequest(request.id);
    assert.equal(row?.delivery_status, 'delivered');
    assert.equal(
      row?.delivery_secrets,
      undefined,
      'the sealed auth_req_id and notification token are gone once delivered',
    );
    assert.equal(receiver.received('/ping-rp').length, n + 1, 'one notification');
  });

  test('a ping client may also poll (§10.2), with authorization_pending and slow_down as for poll', async () => {
    const { config, started, bindingMessage } = await start('/ping-rp');
    await assert.rejects(
      oidc.genericGrantRequest(config, CIBA_GRANT, { auth_req_id: started.auth_req_id }),
      (e: { error?: string }) => e.error === 'authorization_pending',
    );
    const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
    await w.alice.decide(request.id, 'approve');
    const tokens = await oidc.pollBackchannelAuthenticationGrant(config, started);
    assert.ok(tokens.access_token);
    await states(request.id);
  });

  test('deny: pinged, then access_denied at the token endpoint', async () => {
    const { config, started, bindingMessage, before: n } = await start('/ping-rp');
    const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
    await w.alice.decide(request.id, 'deny');
    const [ping] = (await receiver.waitFor('/ping-rp', n + 1)).slice(n);
    assert.deepEqual(ping!.json, { auth_req_id: started.auth_req_id });
    await assert.rejects(
      oidc.genericGrantRequest(config, CIBA_GRANT, { auth_req_id: started.auth_req_id }),
      (e: { error?: string }) => e.error === 'access_denied',
    );
    assert.deepEqual(await states(request.id), ['AwaitDecision', 'Deliver']);
  });

  test('expire: pinged when the request expires, then expired_token', async () => {
    const { config, started, bindingMessage, before: n } = await start('/ping-rp', { requested_expiry: '2' });
    const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
    const [ping] = (await receiver.waitFor('/ping-rp', n + 1)).slice(n);
    assert.deepEqual(ping!.json, { auth_req_id: started.auth_req_id });
    await assert.rejects(
      oidc.genericGrantRequest(config, CIBA_GRANT, { auth_req_id: started.auth_req_id }),
      (e: { error?: string }) => e.error === 'expired_token',
    );
    assert.deepEqual(await states(request.id), ['AwaitDecision', 'Deliver']);
    assert.equal((await getAuthRequest(request.id))?.status, 'expired');
  });

  test('late ping: approved in time but pinged after expiry (the endpoint was failing): the client can still redeem', async () => {
    let failing = true;
    receiver.respond('/ping-rp', () => (failing ? 503 : 204));
    try {
      const { config, started, bindingMessage, before: n } = await start('/ping-rp', { requested_expiry: '2' });
      const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
      assert.equal((await w.alice.decide(request.id, 'approve')).status, 204);
      // Let the auth_req_id expire while the deliveries fail (state, then the clock the server itself uses).
      await receiver.waitFor('/ping-rp', n + 1);
      const row = await getAuthRequest(request.id);
      while (Date.now() <= row!.expires_at) await sleep(100);
      failing = false;
      const pings = await receiver.waitFor('/ping-rp', receiver.received('/ping-rp').length + 1, 60_000);
      assert.deepEqual(pings.at(-1)!.json, { auth_req_id: started.auth_req_id });
      const tokens = await oidc.genericGrantRequest(config, CIBA_GRANT, { auth_req_id: started.auth_req_id });
      assert.equal(tokens.claims()?.sub, 'alice', 'redeemable after a late ping');
      await assert.rejects(
        oidc.genericGrantRequest(config, CIBA_GRANT, { auth_req_id: started.auth_req_id }),
        (e: { error?: string }) => e.error === 'invalid_grant',
        'still single use',
      );
    } finally {
      receiver.respond('/ping-rp', () => 204);
    }
  });
});

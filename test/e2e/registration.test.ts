// Dynamic client registration (RFC 7591) and client management (RFC 7592) on the local stack: openid-client registers
// poll, ping and push clients that then run their flows; every invalid-metadata case of RFC 7591 §2 and CIBA Core §4
// is refused with its code; initial access tokens expire and single-use ones are used once; the registration access
// token reads, updates (rotating) and deletes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as oidc from 'openid-client';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { createInitialAccessToken } from '../../functions/usecases/registration.ts';
import { CIBA_GRANT, basic, startWorld, type World } from '../support/e2e.ts';
import { NotificationReceiver } from '../support/receiver.ts';

let w: World;
let receiver: NotificationReceiver;
before(async () => {
  w = await startWorld();
  receiver = await NotificationReceiver.start();
});
after(async () => {
  await receiver.down();
  await w.close();
});

const register = async (metadata: unknown, token?: string) => {
  const res = await fetch(`${w.issuer}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(metadata),
  });
  return {
    status: res.status,
    headers: res.headers,
    json: (await res.json().catch(() => ({}))) as Record<string, unknown>,
  };
};
const iat = async (singleUse = false, expiresIn = 600) => (await createInitialAccessToken(expiresIn, singleUse)).token;
const poll = { grant_types: [CIBA_GRANT], scope: 'openid email', backchannel_token_delivery_mode: 'poll' };

async function approveNext(authReqId: string) {
  const id = sha256b64u(authReqId);
  await w.alice.waitFor((r) => r.id === id);
  assert.equal((await w.alice.decide(id, 'approve')).status, 204);
}

describe('RFC 7591 registration', () => {
  test('discovery advertises the registration endpoint', async () => {
    const md = (await (await fetch(`${w.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.equal(md.registration_endpoint, `${w.issuer}/register`);
  });

  test('openid-client registers a poll client with an initial access token, which then runs a CIBA flow', async () => {
    const config = await oidc.dynamicClientRegistration(
      new URL(w.issuer),
      { ...poll, client_name: 'Kiosk 7', token_endpoint_auth_method: 'client_secret_post' },
      undefined,
      { initialAccessToken: await iat(), execute: [oidc.allowInsecureRequests] },
    );
    const meta = config.clientMetadata();
    assert.equal(meta.client_name, 'Kiosk 7');
    assert.equal(meta.token_endpoint_auth_method, 'client_secret_post');
    assert.ok(typeof meta.client_secret === 'string' && meta.client_secret.length >= 43);
    assert.equal(typeof meta.registration_access_token, 'string');
    assert.equal(
      meta.registration_client_uri,
      `${w.issuer}/register/${encodeURIComponent(config.clientMetadata().client_id)}`,
    );
    const started = await oidc.initiateBackchannelAuthentication(config, {
      scope: 'openid email',
      login_hint: 'alice',
    });
    await approveNext(started.auth_req_id);
    const tokens = await oidc.pollBackchannelAuthenticationGrant(config, { ...started, interval: 0.01 });
    assert.equal(tokens.claims()?.sub, 'alice');
  });

  test('ping and push clients register with their notification endpoint and are notified', async () => {
    const token = await iat();
    for (const mode of ['ping', 'push'] as const) {
      const res = await register(
        {
          ...poll,
          backchannel_token_delivery_mode: mode,
          backchannel_client_notification_endpoint: receiver.url(`/${mode}`),
        },
        token,
      );
      assert.equal(res.status, 201, JSON.stringify(res.json));
      const { client_id, client_secret } = res.json as { client_id: string; client_secret: string };
      const bc = await fetch(`${w.issuer}/bc-authorize`, {
        method: 'POST',
        headers: {
          authorization: basic(client_id, client_secret),
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({
          scope: 'openid',
          login_hint: 'alice',
          client_notification_token: `tok-${mode}-1234567890`,
        }),
      });
      assert.equal(bc.status, 200);
      await approveNext(((await bc.json()) as { auth_req_id: string }).auth_req_id);
      const [note] = await receiver.waitFor(`/${mode}`);
      assert.equal(note!.headers.authorization, `Bearer tok-${mode}-1234567890`);
      assert.ok(mode === 'ping' ? note!.json.auth_req_id : note!.json.access_token);
    }
  });

  test('RFC 7591 §2 / CIBA §4: invalid metadata → 400 invalid_client_metadata (invalid_redirect_uri for redirect_uris)', async () => {
    const token = await iat();
    const cases: [Record<string, unknown>, string][] = [
      [{ ...poll, backchannel_token_delivery_mode: 'carrier-pigeon' }, 'invalid_client_metadata'],
      [{ ...poll, backchannel_token_delivery_mode: 'ping' }, 'invalid_client_metadata'],
      [
        {
          ...poll,
          backchannel_token_delivery_mode: 'push',
          backchannel_client_notification_endpoint: 'ftp://x.example/cb',
        },
        'invalid_client_metadata',
      ],
      [
        {
          ...poll,
          backchannel_token_delivery_mode: 'ping',
          backchannel_client_notification_endpoint: 'https://x.example/cb#f',
        },
        'invalid_client_metadata',
      ],
      [{ ...poll, token_endpoint_auth_method: 'none' }, 'invalid_client_metadata'],
      [{ ...poll, token_endpoint_auth_method: 'private_key_jwt' }, 'invalid_client_metadata'],
      [{ ...poll, jwks: { keys: [] }, jwks_uri: 'https://x.example/jwks' }, 'invalid_client_metadata'],
      [{ ...poll, grant_types: ['authorization_code'] }, 'invalid_client_metadata'],
      [{ ...poll, grant_types: 'urn:openid:params:grant-type:ciba' }, 'invalid_client_metadata'],
      [{ ...poll, scope: 'email' }, 'invalid_client_metadata'],
      [{ ...poll, backchannel_user_code_parameter: 'yes' }, 'invalid_client_metadata'],
      [{ ...poll, id_token_signed_response_alg: 'none' }, 'invalid_client_metadata'],
      [{ ...poll, backchannel_authentication_request_signing_alg: 'HS256' }, 'invalid_client_metadata'],
      [{ ...poll, backchannel_authentication_request_signing_alg: 'PS256' }, 'invalid_client_metadata'],
      [{ ...poll, security_profile: 'fapi-ciba' }, 'invalid_client_metadata'],
      [{ ...poll, tls_client_certificate_bound_access_tokens: true }, 'invalid_client_metadata'],
      [{ ...poll, backchannel_rate_limit: 'lots' }, 'invalid_client_metadata'],
      [{ ...poll, client_name: '' }, 'invalid_client_metadata'],
      [{ ...poll, redirect_uris: ['not a url'] }, 'invalid_redirect_uri'],
      [{ ...poll, redirect_uris: ['https://rp.example/cb#frag'] }, 'invalid_redirect_uri'],
    ];
    for (const [metadata, error] of cases) {
      const res = await register(metadata, token);
      assert.equal(res.status, 400, JSON.stringify(metadata));
      assert.equal(res.json.error, error, JSON.stringify(metadata));
      assert.ok(typeof res.json.error_description === 'string');
    }
    const notJson = await fetch(`${w.issuer}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${token}` },
      body: 'client_name=x',
    });
    assert.equal(notJson.status, 400);
    // RFC 7591 §2: metadata the server does not understand is ignored.
    const unknown = await register({ ...poll, frobnicate: true }, token);
    assert.equal(unknown.status, 201);
    assert.equal('frobnicate' in unknown.json, false);
  });

  test('initial access tokens: required, expiring, single use consumed only by a successful registration', async () => {
    assert.equal((await register(poll)).status, 401);
    assert.match(String((await register(poll, 'not-a-token')).json.error), /invalid_token/);
    const expired = await iat(false, 1);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await register(poll, expired)).status, 401);
    const once = await iat(true);
    assert.equal((await register({ ...poll, scope: 'email' }, once)).status, 400, 'a refused registration');
    assert.equal((await register(poll, once)).status, 201, 'did not use the token up');
    assert.equal((await register(poll, once)).status, 401, 'used');
    const many = await iat(false);
    assert.equal((await register(poll, many)).status, 201);
    assert.equal((await register(poll, many)).status, 201);
  });
});

describe('RFC 7592 client management', () => {
  test('read, update (rotating the registration access token), delete', async () => {
    const created = (await register({ ...poll, client_name: 'Till 1' }, await iat())).json as Record<string, string>;
    const uri = created.registration_client_uri!;
    const call = (method: string, token: string, body?: unknown) =>
      fetch(uri, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
    assert.equal((await call('GET', 'wrong')).status, 401);
    const read = await call('GET', created.registration_access_token!);
    assert.equal(read.status, 200);
    const readBody = (await read.json()) as Record<string, string>;
    assert.equal(readBody.client_name, 'Till 1');
    assert.equal('client_secret' in readBody, false, 'stored hashed: never read back');
    assert.notEqual(readBody.registration_access_token, created.registration_access_token, 'rotated');
    assert.equal((await call('GET', created.registration_access_token!)).status, 401, 'the old token is gone');

    const update = await call('PUT', readBody.registration_access_token!, {
      ...poll,
      client_id: created.client_id,
      client_name: 'Till 2',
    });
    assert.equal(update.status, 200);
    const updated = (await update.json()) as Record<string, string>;
    assert.equal(updated.client_name, 'Till 2');
    assert.equal('client_secret' in updated, false, 'same method: the secret is kept');
    // The kept secret still authenticates.
    const bc = await fetch(`${w.issuer}/bc-authorize`, {
      method: 'POST',
      headers: {
        authorization: basic(created.client_id!, created.client_secret!),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ scope: 'openid', login_hint: 'bob' }),
    });
    assert.equal(bc.status, 200);
    const wrongId = await call('PUT', updated.registration_access_token!, { ...poll, client_id: 'someone-else' });
    assert.equal(wrongId.status, 400);

    assert.equal((await call('DELETE', updated.registration_access_token!)).status, 204);
    assert.equal((await call('GET', updated.registration_access_token!)).status, 401);
    const after = await fetch(`${w.issuer}/bc-authorize`, {
      method: 'POST',
      headers: {
        authorization: basic(created.client_id!, created.client_secret!),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ scope: 'openid', login_hint: 'bob' }),
    });
    assert.equal(after.status, 401, 'a deleted client cannot authenticate');
  });

  test('a seeded client has no registration access token: 401', async () => {
    const res = await fetch(`${w.issuer}/register/rp`, { headers: { authorization: 'Bearer anything' } });
    assert.equal(res.status, 401);
  });
});

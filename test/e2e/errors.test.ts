// Every rejection with the error code and HTTP status the spec names (CIBA Core §13 at the backchannel endpoint,
// §11 + RFC 6749 §5.2 at the token endpoint), as JSON, never a 5xx.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { basic, CIBA_GRANT, postForm, SECRET, startWorld, USER_CODE, type World } from '../support/e2e.ts';

let w: World;
before(async () => {
  w = await startWorld();
});
after(() => w.close());

const bc = (
  params: Record<string, string> | string,
  auth: Record<string, string> = { authorization: basic('rp', SECRET) },
) => postForm(`${w.issuer}/bc-authorize`, params, auth);
const ok = { scope: 'openid', login_hint: 'alice' };

async function expectError(res: Awaited<ReturnType<typeof postForm>>, status: number, error: string) {
  assert.equal(res.status, status, res.text);
  assert.equal(res.json.error, error, res.text);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  assert.deepEqual(
    Object.keys(res.json).filter((k) => k !== 'error' && k !== 'error_description'),
    [],
    '§13: error, error_description only',
  );
}

describe('backchannel authentication endpoint (§13)', () => {
  test('a valid request is acknowledged', async () => {
    const res = await bc(ok);
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(res.json).sort(), ['auth_req_id', 'expires_in', 'interval']);
    assert.equal(res.headers.get('cache-control'), 'no-store');
  });

  test('invalid_request (400)', async () => {
    await expectError(await bc({ login_hint: 'alice' }), 400, 'invalid_request'); // no scope
    await expectError(await bc({ scope: 'profile', login_hint: 'alice' }), 400, 'invalid_request'); // no openid
    await expectError(await bc({ scope: 'openid' }), 400, 'invalid_request'); // no hint
    await expectError(await bc({ ...ok, login_hint_token: 'x' }), 400, 'invalid_request'); // two hints
    await expectError(await bc({ ...ok, id_token_hint: 'a.b.c', login_hint_token: 'x' }), 400, 'invalid_request'); // three
    await expectError(await bc('scope=openid&login_hint=alice&login_hint=bob'), 400, 'invalid_request'); // duplicate
    await expectError(await bc({ ...ok, requested_expiry: '-5' }), 400, 'invalid_request');
    await expectError(await bc({ ...ok, requested_expiry: 'soon' }), 400, 'invalid_request');
    await expectError(await bc({ ...ok, request: 'eyJ.x.y' }), 400, 'invalid_request'); // signed requests: later
    await expectError(await bc({ ...ok, user_code: '1234' }), 400, 'invalid_request'); // not enabled for rp
    const json = await fetch(`${w.issuer}/bc-authorize`, {
      method: 'POST',
      headers: { authorization: basic('rp', SECRET), 'content-type': 'application/json' },
      body: JSON.stringify(ok),
    });
    assert.equal(json.status, 400);
    assert.equal(((await json.json()) as { error: string }).error, 'invalid_request');
  });

  test('requested_expiry as a string is honoured; beyond the maximum it is clamped', async () => {
    assert.equal((await bc({ ...ok, requested_expiry: '42' })).json.expires_in, 42);
    assert.equal((await bc({ ...ok, requested_expiry: '999999' })).json.expires_in, 1800);
  });

  test('invalid_scope (400)', async () => {
    await expectError(await bc({ scope: 'openid admin', login_hint: 'alice' }), 400, 'invalid_scope');
  });

  test('unknown_user_id (400)', async () => {
    await expectError(await bc({ scope: 'openid', login_hint: 'nobody@example.com' }), 400, 'unknown_user_id');
  });

  test('login_hint matches sub, e-mail (any case) and phone number', async () => {
    for (const hint of ['alice', 'ALICE@example.com', '+1 555 123 4567'])
      assert.equal((await bc({ scope: 'openid', login_hint: hint })).status, 200, hint);
  });

  test('unauthorized_client (400) for a client without the CIBA grant', async () => {
    await expectError(await bc(ok, { authorization: basic('no-ciba', SECRET) }), 400, 'unauthorized_client');
  });

  test('missing_user_code and invalid_user_code (400)', async () => {
    const auth = { authorization: basic('user-code', SECRET) };
    await expectError(await bc(ok, auth), 400, 'missing_user_code');
    await expectError(await bc({ ...ok, user_code: '000000' }, auth), 400, 'invalid_user_code');
    assert.equal((await bc({ ...ok, user_code: USER_CODE }, auth)).status, 200);
    await expectError(
      await bc({ scope: 'openid', login_hint: 'bob', user_code: USER_CODE }, auth),
      400,
      'invalid_user_code',
    ); // bob has none
  });

  test('invalid_binding_message (400)', async () => {
    await expectError(await bc({ ...ok, binding_message: 'x'.repeat(129) }), 400, 'invalid_binding_message');
    await expectError(await bc({ ...ok, binding_message: 'line\nbreak' }), 400, 'invalid_binding_message');
    await expectError(await bc({ ...ok, binding_message: 'abc\u202Edef' }), 400, 'invalid_binding_message');
    assert.equal((await bc({ ...ok, binding_message: 'Zahlung 42,00 € – Bäckerei' })).status, 200);
    // The demo seed's call-centre message (66 characters) is an ordinary sentence.
    const sentence = 'Please identify yourself for better help in our customer service.';
    assert.equal((await bc({ ...ok, binding_message: sentence })).status, 200);
  });

  test('invalid_client (401)', async () => {
    await expectError(await bc(ok, { authorization: basic('rp', 'wrong-secret-0123456789') }), 401, 'invalid_client');
    await expectError(await bc(ok, { authorization: basic('ghost', SECRET) }), 401, 'invalid_client');
    await expectError(await bc(ok, {}), 401, 'invalid_client'); // none
    await expectError(await bc({ ...ok, client_id: 'rp', client_secret: SECRET }, {}), 401, 'invalid_client'); // registered basic, used post
    const res = await bc(ok, { authorization: basic('rp', 'nope-nope-nope-nope') });
    assert.match(res.headers.get('www-authenticate') ?? '', /^Basic/);
    await expectError(
      await bc({ ...ok, client_secret: SECRET }, { authorization: basic('rp', SECRET) }),
      400,
      'invalid_request',
    ); // two methods
  });
});

describe('token endpoint (§11, RFC 6749 §5.2)', () => {
  const token = (
    params: Record<string, string>,
    auth: Record<string, string> = { authorization: basic('rp', SECRET) },
  ) => postForm(`${w.issuer}/token`, params, auth);

  test('invalid_request, unsupported_grant_type, invalid_grant, invalid_client, unauthorized_client', async () => {
    await expectError(await token({ grant_type: CIBA_GRANT }), 400, 'invalid_request');
    await expectError(await token({ auth_req_id: 'x' }), 400, 'invalid_request');
    await expectError(await token({ grant_type: 'authorization_code', code: 'x' }), 400, 'unsupported_grant_type');
    await expectError(await token({ grant_type: CIBA_GRANT, auth_req_id: 'nope' }), 400, 'invalid_grant');
    await expectError(
      await token(
        { grant_type: CIBA_GRANT, auth_req_id: 'x' },
        { authorization: basic('rp', 'bad-secret-0123456789') },
      ),
      401,
      'invalid_client',
    );
    await expectError(
      await token({ grant_type: CIBA_GRANT, auth_req_id: 'x' }, { authorization: basic('no-ciba', SECRET) }),
      400,
      'unauthorized_client',
    );
    await expectError(await token({ grant_type: 'refresh_token', refresh_token: 'nope' }), 400, 'invalid_grant');
    await expectError(
      await token(
        { grant_type: 'refresh_token', refresh_token: 'nope' },
        { authorization: basic('no-refresh', SECRET) },
      ),
      400,
      'unauthorized_client',
    );
  });

  test('userinfo rejects a missing or forged access token with 401', async () => {
    const none = await fetch(`${w.issuer}/userinfo`);
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    const forged = await fetch(`${w.issuer}/userinfo`, {
      headers: { authorization: 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.' },
    });
    assert.equal(forged.status, 401);
  });

  test('unknown routes are 404, never 5xx', async () => {
    assert.equal((await fetch(`${w.issuer}/nope`)).status, 404);
  });
});

describe('defaults', () => {
  test('without CIBA_ACR_VALUES the most preferred requested acr is carried to the ID token', async () => {
    const started = await bc({
      scope: 'openid',
      login_hint: 'alice',
      acr_values: 'urn:example:loa:3 urn:example:loa:2',
      binding_message: 'ACR-DEFAULT',
    });
    assert.equal(started.status, 200);
    const request = await w.alice.waitFor((r) => r.binding_message === 'ACR-DEFAULT');
    assert.equal((await w.alice.decide(request.id, 'approve')).status, 204);
    const tokens = await postForm(
      `${w.issuer}/token`,
      { grant_type: CIBA_GRANT, auth_req_id: String(started.json.auth_req_id) },
      { authorization: basic('rp', SECRET) },
    );
    assert.equal(tokens.status, 200, tokens.text);
    const idToken = String(tokens.json.id_token);
    const claims = JSON.parse(Buffer.from(idToken.split('.')[1]!, 'base64url').toString()) as { acr?: string };
    assert.equal(claims.acr, 'urn:example:loa:3');
  });
});

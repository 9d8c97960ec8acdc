// Rich authorization requests (RFC 9396) end to end, with openid-client as the RP: authorization_details at the
// backchannel endpoint (form parameter and signed request object), checked against the client's registered types
// (§10) and the server's configured ones (invalid_authorization_details otherwise); shown to the device, approved in
// part through the device API (§3: a subset of scope and entries), and what was granted in the token response, the
// access token, introspection, a refresh, and a push delivery.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { randomUUID } from 'node:crypto';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { basic, CIBA_GRANT, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';
import { NotificationReceiver } from '../support/receiver.ts';

const PAYMENT = {
  type: 'payment_initiation',
  actions: ['initiate', 'status'],
  locations: ['https://bank.example/payments'],
  instructedAmount: { currency: 'EUR', amount: '123.50' },
  creditorName: 'Merchant A',
};
const ACCOUNTS = { type: 'account_information', actions: ['read'], datatypes: ['balances'], identifier: 'acc-1' };
/** The same entry, keys in another order: the same JSON value (§3). */
const ACCOUNTS_REORDERED = {
  identifier: 'acc-1',
  datatypes: ['balances'],
  actions: ['read'],
  type: 'account_information',
};
const TYPES = ['payment_initiation', 'account_information'];

const signerKey = await generateKeyPair('PS256');
let w: World;
let receiver: NotificationReceiver;
before(async () => {
  receiver = await NotificationReceiver.start();
  const base = { client_secret: SECRET, scope: 'openid profile email', grant_types: [CIBA_GRANT, 'refresh_token'] };
  w = await startWorld({ CIBA_POLL_INTERVAL: '1', CIBA_AUTHORIZATION_DETAILS_TYPES: TYPES.join(' ') }, [
    {
      ...base,
      client_id: 'rar',
      // custom_type is registered by the client but not supported by the server.
      authorization_details_types: [...TYPES, 'custom_type'],
      jwks: { keys: [{ ...(await exportJWK(signerKey.publicKey)), kid: 'rar-1', alg: 'PS256', use: 'sig' }] },
    },
    {
      ...base,
      client_id: 'rar-push',
      authorization_details_types: TYPES,
      backchannel_token_delivery_mode: 'push',
      backchannel_client_notification_endpoint: receiver.url('/rar-push'),
    },
  ]);
});
after(async () => {
  await w.close();
  await receiver.down();
});

const backchannel = (form: Record<string, string>, clientId = 'rar') =>
  postForm(
    `${w.issuer}/bc-authorize`,
    { scope: 'openid email', login_hint: 'alice', ...form },
    { authorization: basic(clientId, SECRET) },
  );
const decide = (id: string, body: unknown) => w.alice.call('POST', `/device/requests/${id}`, body);
const redeem = (authReqId: string) =>
  postForm(
    `${w.issuer}/token`,
    { grant_type: CIBA_GRANT, auth_req_id: authReqId },
    { authorization: basic('rar', SECRET) },
  );

describe('openid-client as the RP', () => {
  test('the device sees the details, approves a subset; the subset is what the tokens carry', async () => {
    const rp = await w.rp('rar');
    const started = await oidc.initiateBackchannelAuthentication(rp, {
      scope: 'openid email profile',
      login_hint: 'alice',
      authorization_details: JSON.stringify([PAYMENT, ACCOUNTS]),
    });
    const id = sha256b64u(started.auth_req_id);
    const shown = await w.alice.waitFor((r) => r.id === id);
    assert.deepEqual(shown.authorization_details, [PAYMENT, ACCOUNTS]);
    assert.deepEqual((await w.alice.request(id)).json.authorization_details, [PAYMENT, ACCOUNTS]);

    const answer = await decide(id, {
      decision: 'approve',
      scope: 'openid email',
      authorization_details: [ACCOUNTS_REORDERED],
    });
    assert.equal(answer.status, 204, answer.text);
    const tokens = await oidc.pollBackchannelAuthenticationGrant(rp, { ...started, interval: 0.01 });
    assert.equal(tokens.scope, 'openid email');
    assert.deepEqual(tokens.authorization_details, [ACCOUNTS]);
    const claims = decodeJwt(tokens.access_token);
    assert.deepEqual(claims.authorization_details, [ACCOUNTS]);
    assert.equal(claims.scope, 'openid email');
    assert.equal(decodeJwt(tokens.id_token!).sub, 'alice');

    const introspected = await oidc.tokenIntrospection(rp, tokens.access_token);
    assert.deepEqual(introspected.authorization_details, [ACCOUNTS]);
    const refreshToken = await oidc.tokenIntrospection(rp, tokens.refresh_token!);
    assert.deepEqual(refreshToken.authorization_details, [ACCOUNTS]);

    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    assert.deepEqual(refreshed.authorization_details, [ACCOUNTS]);
    assert.deepEqual(decodeJwt(refreshed.access_token).authorization_details, [ACCOUNTS]);
  });

  test('an approval without narrowing grants everything requested', async () => {
    const rp = await w.rp('rar');
    const started = await oidc.initiateBackchannelAuthentication(rp, {
      scope: 'openid email',
      login_hint: 'alice',
      authorization_details: JSON.stringify([PAYMENT]),
    });
    const id = sha256b64u(started.auth_req_id);
    await w.alice.waitFor((r) => r.id === id);
    assert.equal((await w.alice.decide(id, 'approve')).status, 204);
    const tokens = await oidc.pollBackchannelAuthenticationGrant(rp, { ...started, interval: 0.01 });
    assert.deepEqual(tokens.authorization_details, [PAYMENT]);
    assert.equal(tokens.scope, 'openid email');
  });

  test('approving none of the entries: tokens without authorization_details', async () => {
    const res = await backchannel({ authorization_details: JSON.stringify([PAYMENT]) });
    const id = sha256b64u(String(res.json.auth_req_id));
    await w.alice.waitFor((r) => r.id === id);
    assert.equal((await decide(id, { decision: 'approve', authorization_details: [] })).status, 204);
    const tokens = await redeem(String(res.json.auth_req_id));
    assert.equal(tokens.status, 200, tokens.text);
    assert.equal('authorization_details' in tokens.json, false);
    assert.equal('authorization_details' in decodeJwt(String(tokens.json.access_token)), false);
  });
});

describe('device API narrowing (docs/device-api.md): anything but a subset is 400 and decides nothing', () => {
  test('each refused narrowing leaves the request pending; a valid one then succeeds', async () => {
    const res = await backchannel({
      scope: 'openid email profile',
      authorization_details: JSON.stringify([PAYMENT, ACCOUNTS]),
    });
    const id = sha256b64u(String(res.json.auth_req_id));
    await w.alice.waitFor((r) => r.id === id);
    const refused: [string, unknown][] = [
      ['scope without openid', { decision: 'approve', scope: 'email' }],
      ['scope not requested', { decision: 'approve', scope: 'openid phone' }],
      ['scope not a string', { decision: 'approve', scope: ['openid'] }],
      ['entry altered', { decision: 'approve', authorization_details: [{ ...PAYMENT, creditorName: 'Mallory' }] }],
      ['entry not requested', { decision: 'approve', authorization_details: [{ type: 'account_information' }] }],
      ['entry twice', { decision: 'approve', authorization_details: [ACCOUNTS, ACCOUNTS] }],
      ['not an array', { decision: 'approve', authorization_details: ACCOUNTS }],
      ['a denial that narrows', { decision: 'deny', scope: 'openid' }],
    ];
    for (const [what, body] of refused) {
      const answer = await decide(id, body);
      assert.equal(answer.status, 400, what);
      assert.equal(answer.json.error, 'invalid_request', what);
    }
    assert.equal((await w.alice.request(id)).status, 200, 'still pending');
    assert.equal((await decide(id, { decision: 'approve', scope: 'openid profile' })).status, 204);
    assert.equal((await decide(id, { decision: 'approve', scope: 'openid' })).status, 409, 'already decided');
    assert.equal((await decide('A'.repeat(43), { decision: 'approve', scope: 'openid' })).status, 404);
    const tokens = await redeem(String(res.json.auth_req_id));
    assert.equal(tokens.json.scope, 'openid profile');
    assert.deepEqual(tokens.json.authorization_details, [PAYMENT, ACCOUNTS]);
  });
});

describe('RFC 9396 §5 invalid_authorization_details at the backchannel endpoint (400, nothing started)', () => {
  test('structure, client types (§10) and server types', async () => {
    const cases: [string, string, string][] = [
      ['not JSON', '{', 'rar'],
      ['not an array', JSON.stringify(PAYMENT), 'rar'],
      ['empty', '[]', 'rar'],
      ['no type', JSON.stringify([{ actions: ['read'] }]), 'rar'],
      ['actions not strings', JSON.stringify([{ ...ACCOUNTS, actions: [1] }]), 'rar'],
      ['identifier not a string', JSON.stringify([{ ...ACCOUNTS, identifier: 7 }]), 'rar'],
      ['type the server does not support', JSON.stringify([{ type: 'custom_type' }]), 'rar'],
      ['type the client did not register', JSON.stringify([{ type: 'account_information' }]), 'rp'],
    ];
    for (const [what, value, clientId] of cases) {
      const before = w.stack.stepFunctions.executions().length;
      const res = await backchannel({ authorization_details: value }, clientId);
      assert.equal(res.status, 400, what);
      assert.equal(res.json.error, 'invalid_authorization_details', `${what}: ${res.text}`);
      assert.equal(w.stack.stepFunctions.executions().length, before, `${what}: nothing started`);
    }
  });

  test('discovery advertises the configured types', async () => {
    const md = (await (await fetch(`${w.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.deepEqual(md.authorization_details_types_supported, TYPES);
  });
});

describe('a signed request object carries authorization_details (an array claim) and resource', () => {
  test('accepted, shown to the device, granted', async () => {
    const now = Math.floor(Date.now() / 1000);
    const request = await new SignJWT({
      iss: 'rar',
      aud: w.issuer,
      iat: now,
      nbf: now,
      exp: now + 300,
      jti: randomUUID(),
      scope: 'openid',
      login_hint: 'alice',
      authorization_details: [PAYMENT],
      resource: ['https://api.bank.example/', w.issuer],
    })
      .setProtectedHeader({ alg: 'PS256', kid: 'rar-1' })
      .sign(signerKey.privateKey);
    const res = await postForm(`${w.issuer}/bc-authorize`, { request }, { authorization: basic('rar', SECRET) });
    assert.equal(res.status, 200, res.text);
    const id = sha256b64u(String(res.json.auth_req_id));
    assert.deepEqual((await w.alice.waitFor((r) => r.id === id)).authorization_details, [PAYMENT]);
    await w.alice.decide(id, 'approve');
    const tokens = await redeem(String(res.json.auth_req_id));
    assert.deepEqual(tokens.json.authorization_details, [PAYMENT]);
    assert.deepEqual(decodeJwt(String(tokens.json.access_token)).aud, ['https://api.bank.example/', w.issuer]);
  });
});

describe('push delivery (CIBA §10.3.1) carries what was granted', () => {
  test('the narrowed scope and the approved entries in the POSTed token set', async () => {
    const res = await backchannel(
      {
        authorization_details: JSON.stringify([PAYMENT, ACCOUNTS]),
        client_notification_token: 'rar-push-token-0123456789',
      },
      'rar-push',
    );
    assert.equal(res.status, 200, res.text);
    const id = sha256b64u(String(res.json.auth_req_id));
    await w.alice.waitFor((r) => r.id === id);
    const n = receiver.received('/rar-push').length;
    assert.equal(
      (await decide(id, { decision: 'approve', scope: 'openid', authorization_details: [PAYMENT] })).status,
      204,
    );
    const [push] = (await receiver.waitFor('/rar-push', n + 1)).slice(n);
    assert.equal(push!.json.scope, 'openid');
    assert.deepEqual(push!.json.authorization_details, [PAYMENT]);
    assert.deepEqual(decodeJwt(String(push!.json.access_token)).authorization_details, [PAYMENT]);
  });
});

// Poll mode end to end (CIBA Core §7, §10.1, §11): openid-client as the RP, a device signing real assertions,
// the real handlers, the real ASL on the local Step Functions, dynalite as DynamoDB.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { basic, CIBA_GRANT, OTHER_SECRET, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';
import { db, key, table } from '../../functions/adapters/store/table.ts';
import { sha256b64u } from '../../functions/core/crypto.ts';

let w: World;
before(async () => {
  w = await startWorld({ CIBA_POLL_INTERVAL: '1', CIBA_ACR_VALUES: 'urn:example:pin urn:example:mfa' });
});
after(() => w.close());

const tokenUrl = () => `${w.issuer}/token`;
const poll = (authReqId: string, clientId = 'rp', secret = SECRET) =>
  postForm(tokenUrl(), { grant_type: CIBA_GRANT, auth_req_id: authReqId }, { authorization: basic(clientId, secret) });

async function start(params: Record<string, string> = {}, clientId = 'rp') {
  const config = await w.rp(clientId);
  const bindingMessage = params.binding_message ?? `T-${Math.random().toString(36).slice(2, 8)}`;
  const started = await oidc.initiateBackchannelAuthentication(config, {
    scope: 'openid profile email',
    login_hint: 'alice@example.com',
    binding_message: bindingMessage,
    ...params,
  });
  return { config, started, bindingMessage };
}

async function approve(bindingMessage: string, decision: 'approve' | 'deny' = 'approve') {
  const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
  const res = await w.alice.decide(request.id, decision);
  assert.equal(res.status, 204, res.body);
  return request;
}

describe('approve', () => {
  test('§7.3 acknowledgement, §10.1.1 tokens after approval, userinfo, refresh rotation', async () => {
    const { config, started, bindingMessage } = await start({ acr_values: 'urn:example:any urn:example:pin' });
    assert.match(started.auth_req_id, /^[A-Za-z0-9_-]{43,}$/, '≥ 256 bits, URL-safe characters only (§7.3)');
    assert.equal(started.expires_in, 300);
    assert.equal(started.interval, 1);

    const request = await approve(bindingMessage);
    assert.equal(request.client_name, 'Store POS');
    assert.equal(request.scope, 'openid profile email');
    assert.equal(request.acr_values, 'urn:example:any urn:example:pin');
    assert.ok(request.expires_at > request.created_at);

    const tokens = await oidc.pollBackchannelAuthenticationGrant(config, started);
    const claims = tokens.claims()!; // openid-client verified signature, iss, aud, exp
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.acr, 'urn:example:pin');
    assert.equal(typeof claims.auth_time, 'number');
    assert.deepEqual(claims.amr, ['hwk']);
    assert.equal(decodeProtectedHeader(tokens.id_token!).alg, 'RS256');
    assert.equal(tokens.token_type, 'bearer');
    assert.ok(tokens.refresh_token);

    // RFC 9068 access token, verifiable with the published JWKS
    const jwks = createRemoteJWKSet(new URL(`${w.issuer}/jwks`));
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, {
      issuer: w.issuer,
      audience: w.issuer,
      typ: 'at+jwt',
    });
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(payload.client_id, 'rp');
    assert.equal(payload.scope, 'openid profile email');
    assert.equal(payload.sub, 'alice');
    assert.ok(payload.jti);

    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, 'alice');
    assert.equal(userinfo.email, 'alice@example.com');
    assert.equal(userinfo.name, 'Alice Example');
    assert.equal(userinfo.phone_number, undefined, 'phone scope was not granted');

    // A refused refresh request (a wider scope; another client) neither uses the token up nor revokes its family.
    await assert.rejects(
      oidc.refreshTokenGrant(config, tokens.refresh_token!, { scope: 'openid phone' }),
      (e: { error?: string }) => e.error === 'invalid_scope',
    );
    await assert.rejects(
      oidc.refreshTokenGrant(await w.rp('other', OTHER_SECRET), tokens.refresh_token!),
      (e: { error?: string }) => e.error === 'invalid_grant',
    );
    // Refresh: rotated; the old one is single use and its reuse revokes the family.
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    assert.ok(refreshed.access_token);
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
    await assert.rejects(
      oidc.refreshTokenGrant(config, tokens.refresh_token!),
      (e: { error?: string }) => e.error === 'invalid_grant',
    );
    await assert.rejects(
      oidc.refreshTokenGrant(config, refreshed.refresh_token!),
      (e: { error?: string }) => e.error === 'invalid_grant',
    );

    // The workflow ended with the approval in its one billed transition (the wait), the outcome in its output.
    const execution = await w.stack.stepFunctions.waitForStatus(request.id, 'SUCCEEDED');
    const entered = w.stack.stepFunctions.history(execution.executionArn).filter((e) => e.type === 'StateEntered');
    assert.deepEqual(
      entered.map((e) => e.stateName),
      ['AwaitDecision'],
    );
    assert.equal(JSON.parse(execution.output!).decision.outcome, 'approved');
  });

  test('id_token_signed_response_alg ES256 and PS256 are honoured; client_secret_post works', async () => {
    for (const [clientId, alg, post] of [
      ['rp-post', 'ES256', true],
      ['rp-ps256', 'PS256', false],
    ] as const) {
      const config = await oidc.discovery(
        new URL(w.issuer),
        clientId,
        { id_token_signed_response_alg: alg },
        post ? oidc.ClientSecretPost(SECRET) : oidc.ClientSecretBasic(SECRET),
        { execute: [oidc.allowInsecureRequests] },
      );
      const bindingMessage = `ALG-${alg}`;
      const started = await oidc.initiateBackchannelAuthentication(config, {
        scope: 'openid',
        login_hint: '+15551234567',
        binding_message: bindingMessage,
      });
      await approve(bindingMessage);
      const tokens = await oidc.pollBackchannelAuthenticationGrant(config, started);
      assert.equal(decodeProtectedHeader(tokens.id_token!).alg, alg);
      assert.equal(tokens.claims()!.sub, 'alice');
    }
  });

  test('a client without the refresh_token grant gets no refresh token', async () => {
    const { config, started, bindingMessage } = await start({ login_hint: 'alice' }, 'no-refresh');
    await approve(bindingMessage);
    const tokens = await oidc.pollBackchannelAuthenticationGrant(config, started);
    assert.equal(tokens.refresh_token, undefined);
  });
});

describe('deny and expire', () => {
  test('§11 access_denied after the user denies; the execution succeeds with the outcome denied', async () => {
    const { config, started, bindingMessage } = await start();
    const request = await approve(bindingMessage, 'deny');
    await assert.rejects(
      oidc.pollBackchannelAuthenticationGrant(config, started),
      (e: { error?: string }) => e.error === 'access_denied',
    );
    const execution = await w.stack.stepFunctions.waitForStatus(request.id, 'SUCCEEDED');
    const entered = w.stack.stepFunctions.history(execution.executionArn).filter((e) => e.type === 'StateEntered');
    // A denial is an outcome (succeeded, 1 transition), not a failed execution.
    assert.deepEqual(
      entered.map((e) => e.stateName),
      ['AwaitDecision'],
    );
    assert.equal(JSON.parse(execution.output!).decision.outcome, 'denied');
    const again = await w.alice.decide(request.id, 'approve');
    assert.equal(again.status, 409);
    assert.deepEqual(JSON.parse(again.body), { error: 'already_decided' });
  });

  test('§11 expired_token with requested_expiry=10, honoured exactly; the workflow shows the expiry', async () => {
    const { started, bindingMessage } = await start({ requested_expiry: '10' });
    assert.equal(started.expires_in, 10);
    const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
    assert.equal(request.expires_at - request.created_at, 10);
    const pending = await poll(started.auth_req_id);
    assert.equal(pending.json.error, 'authorization_pending');

    const execution = await w.stack.stepFunctions.waitForStatus(request.id, 'SUCCEEDED', 20_000);
    const entered = w.stack.stepFunctions.history(execution.executionArn).filter((e) => e.type === 'StateEntered');
    // 2 transitions: the wait timed out, then the Pass state that records the outcome in the output.
    assert.deepEqual(
      entered.map((e) => e.stateName),
      ['AwaitDecision', 'Expired'],
    );
    assert.equal(JSON.parse(execution.output!).decision.outcome, 'expired');
    const expired = await poll(started.auth_req_id);
    assert.equal(expired.status, 400);
    assert.equal(expired.json.error, 'expired_token');
    assert.equal(
      (await w.alice.list()).some((r) => r.id === request.id),
      false,
      'expired requests are not listed',
    );
    const late = await w.alice.decide(request.id, 'approve');
    assert.equal(late.status, 409);
    assert.deepEqual(JSON.parse(late.body), { error: 'expired' });
  });
});

describe('polling rules', () => {
  test('§11 slow_down raises the interval by 5 s for all later polls', async () => {
    const { started } = await start();
    // Two polls at once: exactly one is on time, the other is too early, however slow the machine is.
    const both = await Promise.all([poll(started.auth_req_id), poll(started.auth_req_id)]);
    const errors = both.map((r) => r.json.error).sort();
    assert.deepEqual(errors, ['authorization_pending', 'slow_down']);
    for (const r of both) {
      assert.equal(r.status, 400);
      assert.equal(r.headers.get('cache-control'), 'no-store');
    }
    // The interval is now 1 + 5 = 6 s: a poll 1.5 s later is still too early.
    await new Promise((r) => setTimeout(r, 1500));
    const third = await poll(started.auth_req_id);
    assert.equal(third.json.error, 'slow_down');
  });

  test('§10.1.1 one-time redemption: 50 concurrent redemptions, exactly one succeeds', async () => {
    const { started, bindingMessage } = await start();
    await approve(bindingMessage);
    const results = await Promise.all(Array.from({ length: 50 }, () => poll(started.auth_req_id)));
    const ok = results.filter((r) => r.status === 200);
    assert.equal(ok.length, 1, `statuses: ${results.map((r) => r.status).join(',')}`);
    assert.ok(ok[0]!.json.access_token);
    for (const r of results.filter((r) => r.status !== 200)) {
      assert.equal(r.status, 400);
      assert.equal(r.json.error, 'invalid_grant');
    }
    const replay = await poll(started.auth_req_id);
    assert.equal(replay.json.error, 'invalid_grant');
    // The winner's refresh token is the one its poll recorded: no poll after it was counted, none replaced it.
    const refreshed = await postForm(
      tokenUrl(),
      { grant_type: 'refresh_token', refresh_token: String(ok[0]!.json.refresh_token) },
      { authorization: basic('rp', SECRET) },
    );
    assert.equal(refreshed.status, 200, refreshed.text);
  });

  test("the redemption's refresh token lives on the request row: it outlives the request, and a candidate is never valid", async () => {
    const { started, bindingMessage } = await start();
    const refresh = (token: string) =>
      postForm(
        tokenUrl(),
        { grant_type: 'refresh_token', refresh_token: token },
        { authorization: basic('rp', SECRET) },
      );
    // A pending poll wrote a candidate token's hash; a token of that shape is refused before the redemption.
    assert.equal((await poll(started.auth_req_id)).json.error, 'authorization_pending');
    const request = await approve(bindingMessage);
    assert.equal((await refresh(`${request.id}.${'A'.repeat(43)}`)).json.error, 'invalid_grant');
    await new Promise((r) => setTimeout(r, 1100));
    const redeemed = await poll(started.auth_req_id);
    assert.equal(redeemed.status, 200, redeemed.text);
    const first = String(redeemed.json.refresh_token);
    assert.ok(first.startsWith(`${request.id}.`), 'the first refresh token names its request');
    assert.equal((await refresh(`${request.id}.${'A'.repeat(43)}`)).json.error, 'invalid_grant', 'a guess is refused');

    // The approval kept the row for the refresh token's lifetime (REFRESH_TOKEN_TTL, 30 days), beyond the request's.
    const raw = await db().send(new GetCommand({ TableName: table(), Key: key.request(request.id) }));
    assert.ok(Number(raw.Item?.ttl) * 1000 > Date.now() + 29 * 86_400_000, `ttl ${raw.Item?.ttl}`);
    assert.equal(raw.Item?.refresh_token_hash, sha256b64u(first), 'stored as its SHA-256 only');
    assert.ok(!JSON.stringify(raw.Item).includes(first.split('.')[1]!));

    // Introspection sees it; it rotates once; used again, its whole grant is revoked (RFC 9700 §4.14.2).
    const introspected = await postForm(
      `${w.issuer}/introspect`,
      { token: first },
      { authorization: basic('rp', SECRET) },
    );
    assert.equal(introspected.json.active, true, introspected.text);
    assert.equal(introspected.json.token_type, 'refresh_token');
    const rotated = await refresh(first);
    assert.equal(rotated.status, 200, rotated.text);
    assert.equal((await refresh(first)).json.error, 'invalid_grant');
    assert.equal((await refresh(String(rotated.json.refresh_token))).json.error, 'invalid_grant', 'family revoked');
    const after = await postForm(`${w.issuer}/introspect`, { token: first }, { authorization: basic('rp', SECRET) });
    assert.equal(after.json.active, false);
  });

  test("§11 invalid_grant for another client's auth_req_id, which stays redeemable by its own client", async () => {
    const { started, bindingMessage } = await start();
    await approve(bindingMessage);
    const stolen = await poll(started.auth_req_id, 'other', OTHER_SECRET);
    assert.equal(stolen.status, 400);
    assert.equal(stolen.json.error, 'invalid_grant');
    const own = await poll(started.auth_req_id);
    assert.equal(own.status, 200);
    assert.ok(own.json.id_token);
    assert.equal(decodeJwt(String(own.json.id_token)).aud, 'rp');
  });

  test('§11 invalid_grant for an unknown auth_req_id', async () => {
    const res = await poll('x'.repeat(43));
    assert.equal(res.status, 400);
    assert.equal(res.json.error, 'invalid_grant');
  });
});

describe('device API', () => {
  test("lists only the device user's pending requests; another user's request is 404", async () => {
    const { bindingMessage } = await start();
    const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
    assert.equal(
      (await w.bob.list()).some((r) => r.id === request.id),
      false,
    );
    const res = await w.bob.decide(request.id, 'approve');
    assert.equal(res.status, 404);
    assert.equal((await w.alice.decide('A'.repeat(43), 'approve')).status, 404);
  });

  test('malformed decision body is 400', async () => {
    const { bindingMessage } = await start();
    const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
    const url = `${w.issuer}/device/requests/${request.id}`;
    for (const body of ['{"decision":"maybe"}', 'not json', '{}']) {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await w.alice.assertion('POST', url)}`,
          'content-type': 'application/json',
        },
        body,
      });
      assert.equal(res.status, 400, body);
    }
  });

  test('bad, expired, replayed or unbound device assertions are 401', async () => {
    const url = `${w.issuer}/device/requests`;
    const get = (auth?: string) => fetch(url, auth ? { headers: { authorization: auth } } : {});
    assert.equal((await get()).status, 401, 'missing');
    assert.equal((await get('Bearer not.a.jwt')).status, 401, 'garbage');
    const once = await w.alice.assertion('GET', url);
    assert.equal((await get(`Bearer ${once}`)).status, 200);
    assert.equal((await get(`Bearer ${once}`)).status, 401, 'replayed jti');
    assert.equal((await get(`Bearer ${await w.alice.assertion('POST', url)}`)).status, 401, 'htm mismatch');
    assert.equal(
      (await get(`Bearer ${await w.alice.assertion('GET', `${w.issuer}/device/requests/x`)}`)).status,
      401,
      'htu mismatch',
    );
    assert.equal(
      (await get(`Bearer ${await w.alice.assertion('GET', url, { aud: 'https://elsewhere' })}`)).status,
      401,
      'aud',
    );
    assert.equal((await get(`Bearer ${await w.alice.assertion('GET', url, {}, 600)}`)).status, 401, 'lifetime > 120 s');
    const past = Math.floor(Date.now() / 1000) - 300;
    assert.equal(
      (await get(`Bearer ${await w.alice.assertion('GET', url, { iat: past, exp: past + 60 })}`)).status,
      401,
      'expired',
    );
    assert.equal(
      (await get(`Bearer ${await w.alice.assertion('GET', url, { iss: 'bob-phone' })}`)).status,
      401,
      'signed by another device key',
    );
  });
});

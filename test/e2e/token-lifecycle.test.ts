// Token lifecycle with openid-client as the RP: revocation (RFC 7009) of access and refresh tokens, introspection
// (RFC 7662) and its signed JWT response (RFC 9701), a client learning only about its own tokens, revoked tokens
// refused at userinfo, and userinfo's RFC 6750 §3.1 answers.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { basic, OTHER_SECRET, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';

let w: World;
before(async () => {
  w = await startWorld();
});
after(() => w.close());

async function tokensFor(config: oidc.Configuration) {
  const started = await oidc.initiateBackchannelAuthentication(config, { scope: 'openid email', login_hint: 'alice' });
  const id = sha256b64u(started.auth_req_id);
  await w.alice.waitFor((r) => r.id === id);
  assert.equal((await w.alice.decide(id, 'approve')).status, 204);
  return oidc.pollBackchannelAuthenticationGrant(config, { ...started, interval: 0.01 });
}

const userinfo = (token?: string) =>
  fetch(`${w.issuer}/userinfo`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

test('discovery advertises revocation and introspection; offline_access is not advertised', async () => {
  const md = (await (await fetch(`${w.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
  assert.equal(md.revocation_endpoint, `${w.issuer}/revoke`);
  assert.equal(md.introspection_endpoint, `${w.issuer}/introspect`);
  assert.ok((md.introspection_endpoint_auth_methods_supported as string[]).includes('client_secret_basic'));
  assert.equal((md.scopes_supported as string[]).includes('offline_access'), false);
});

test('RFC 7662: a client introspects its own access and refresh tokens; other clients and junk get active:false', async () => {
  const rp = await w.rp();
  const tokens = await tokensFor(rp);
  const at = await oidc.tokenIntrospection(rp, tokens.access_token);
  assert.equal(at.active, true);
  assert.equal(at.client_id, 'rp');
  assert.equal(at.sub, 'alice');
  assert.equal(at.scope, 'openid email');
  assert.equal('grant_id' in at, false);
  const rt = await oidc.tokenIntrospection(rp, tokens.refresh_token!, { token_type_hint: 'refresh_token' });
  assert.equal(rt.active, true);
  assert.equal(rt.token_type, 'refresh_token');
  const other = await w.rp('other', OTHER_SECRET);
  assert.deepEqual(await oidc.tokenIntrospection(other, tokens.access_token), { active: false });
  assert.deepEqual(await oidc.tokenIntrospection(other, tokens.refresh_token!), { active: false });
  assert.deepEqual(await oidc.tokenIntrospection(rp, 'not-a-token'), { active: false });
  const unauthenticated = await postForm(`${w.issuer}/introspect`, { token: tokens.access_token });
  assert.equal(unauthenticated.status, 401);
  assert.equal(unauthenticated.json.error, 'invalid_client');
});

test('RFC 9701: the signed introspection response, for the client that asked', async () => {
  const tokens = await tokensFor(await w.rp());
  const res = await fetch(`${w.issuer}/introspect`, {
    method: 'POST',
    headers: {
      authorization: basic('rp', SECRET),
      accept: 'application/token-introspection+jwt',
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token: tokens.access_token }),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/token-introspection+jwt');
  const { payload, protectedHeader } = await jwtVerify(
    await res.text(),
    createRemoteJWKSet(new URL(`${w.issuer}/jwks`)),
    {
      issuer: w.issuer,
      audience: 'rp',
      typ: 'token-introspection+jwt',
    },
  );
  assert.equal(protectedHeader.typ, 'token-introspection+jwt');
  assert.equal((payload.token_introspection as { active: boolean }).active, true);
});

test('RFC 7009: revoking an access token ends it at userinfo and introspection; the grant lives on', async () => {
  const rp = await w.rp();
  const tokens = await tokensFor(rp);
  assert.equal((await userinfo(tokens.access_token)).status, 200);
  // Another client's attempt is answered 200 and revokes nothing.
  await oidc.tokenRevocation(await w.rp('other', OTHER_SECRET), tokens.access_token);
  assert.equal((await userinfo(tokens.access_token)).status, 200);
  await oidc.tokenRevocation(rp, tokens.access_token);
  const refused = await userinfo(tokens.access_token);
  assert.equal(refused.status, 401);
  assert.match(String(refused.headers.get('www-authenticate')), /error="invalid_token"/);
  assert.deepEqual(await oidc.tokenIntrospection(rp, tokens.access_token), { active: false });
  const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
  assert.equal((await userinfo(refreshed.access_token)).status, 200);
  // Unknown tokens: still 200 (RFC 7009 §2.2).
  await oidc.tokenRevocation(rp, 'nothing-like-a-token');
});

test('RFC 7009: revoking a refresh token ends its family and the access tokens issued under it', async () => {
  const rp = await w.rp();
  const tokens = await tokensFor(rp);
  const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
  await oidc.tokenRevocation(await w.rp('other', OTHER_SECRET), refreshed.refresh_token!);
  assert.equal((await oidc.tokenIntrospection(rp, refreshed.refresh_token!)).active, true, 'not by another client');
  await oidc.tokenRevocation(rp, refreshed.refresh_token!, { token_type_hint: 'refresh_token' });
  await assert.rejects(
    oidc.refreshTokenGrant(rp, refreshed.refresh_token!),
    (e: { error?: string }) => e.error === 'invalid_grant',
  );
  assert.equal((await userinfo(tokens.access_token)).status, 401, 'the first access token of the grant');
  assert.equal((await userinfo(refreshed.access_token)).status, 401, 'the refreshed one');
  assert.equal((await oidc.tokenIntrospection(rp, refreshed.access_token)).active, false);
});

test('RFC 6750 §3.1: userinfo without a token → 401 with a bare challenge and no error code', async () => {
  const res = await userinfo();
  assert.equal(res.status, 401);
  assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="ciba"');
  assert.equal(await res.text(), '');
  const bad = await userinfo('junk');
  assert.equal(bad.status, 401);
  assert.match(String(bad.headers.get('www-authenticate')), /error="invalid_token"/);
});

// DPoP server nonces (RFC 9449 §8 token endpoint, §9 resource server) with CIBA_DPOP_NONCE=on: use_dpop_nonce with a
// DPoP-Nonce header (400 at the token endpoint, 401 DPoP challenge at userinfo), a fresh nonce on every answer,
// openid-client retrying on its own, oauth4webapi keeping the nonce, and the one nonce key in the table.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { generateKeyPairSync } from 'node:crypto';
import { exportJWK, SignJWT, type JWK } from 'jose';
import * as oidc from 'openid-client';
import * as oauth from 'oauth4webapi';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { getDpopNonceKey } from '../../functions/adapters/store.ts';
import { basic, CIBA_GRANT, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';

let w: World;
before(async () => {
  w = await startWorld({ CIBA_DPOP_NONCE: 'on' });
});
after(() => w.close());

const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
async function proof(htm: string, htu: string, claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ jti: crypto.randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000), ...claims })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: (await exportJWK(pair.publicKey)) as JWK })
    .sign(pair.privateKey);
}

async function approved(): Promise<string> {
  const res = await postForm(
    `${w.issuer}/bc-authorize`,
    { scope: 'openid email', login_hint: 'alice' },
    { authorization: basic('rp', SECRET) },
  );
  const authReqId = String(res.json.auth_req_id);
  const id = sha256b64u(authReqId);
  await w.alice.waitFor((r) => r.id === id);
  assert.equal((await w.alice.decide(id, 'approve')).status, 204);
  return authReqId;
}
const redeem = (authReqId: string, dpop: string) =>
  postForm(
    `${w.issuer}/token`,
    { grant_type: CIBA_GRANT, auth_req_id: authReqId },
    { authorization: basic('rp', SECRET), dpop },
  );

test('§8 token endpoint: without a nonce → 400 use_dpop_nonce and DPoP-Nonce; the same proof with it → 200', async () => {
  const authReqId = await approved();
  const jti = crypto.randomUUID();
  const refused = await redeem(authReqId, await proof('POST', `${w.issuer}/token`, { jti }));
  assert.equal(refused.status, 400);
  assert.equal(refused.json.error, 'use_dpop_nonce');
  const nonce = refused.headers.get('dpop-nonce');
  assert.ok(nonce, 'DPoP-Nonce header');
  const forged = await redeem(
    authReqId,
    await proof('POST', `${w.issuer}/token`, { nonce: `${nonce!.split('.')[0]}.AAAAAAAAAAAAAAAAAAAAAA` }),
  );
  assert.equal(forged.json.error, 'use_dpop_nonce');
  // The refused proofs used nothing: not the auth_req_id, not the jti.
  const ok = await redeem(authReqId, await proof('POST', `${w.issuer}/token`, { jti, nonce: nonce! }));
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.token_type, 'DPoP');
  assert.ok(ok.headers.get('dpop-nonce'), 'a nonce on success too (§8.2)');
});

test('§9 userinfo: without a nonce → 401 DPoP error="use_dpop_nonce" with DPoP-Nonce; with it → 200', async () => {
  const first = await redeem(await approved(), await proof('POST', `${w.issuer}/token`));
  const nonce = first.headers.get('dpop-nonce')!;
  const token = String(
    (await redeem(await approved(), await proof('POST', `${w.issuer}/token`, { nonce }))).json.access_token,
  );
  const ath = sha256b64u(token);
  const refused = await fetch(`${w.issuer}/userinfo`, {
    headers: { authorization: `DPoP ${token}`, dpop: await proof('GET', `${w.issuer}/userinfo`, { ath }) },
  });
  assert.equal(refused.status, 401);
  assert.match(String(refused.headers.get('www-authenticate')), /^DPoP .*error="use_dpop_nonce"/);
  const fresh = refused.headers.get('dpop-nonce');
  assert.ok(fresh);
  const ok = await fetch(`${w.issuer}/userinfo`, {
    headers: {
      authorization: `DPoP ${token}`,
      dpop: await proof('GET', `${w.issuer}/userinfo`, { ath, nonce: fresh }),
    },
  });
  assert.equal(ok.status, 200);
});

test('openid-client retries on use_dpop_nonce by itself; oauth4webapi keeps the nonce for its next request', async () => {
  const rp = await w.rp();
  const DPoP = oidc.getDPoPHandle(rp, await oidc.randomDPoPKeyPair('ES256'));
  const started = await oidc.initiateBackchannelAuthentication(rp, { scope: 'openid email', login_hint: 'alice' });
  const id = sha256b64u(started.auth_req_id);
  await w.alice.waitFor((r) => r.id === id);
  await w.alice.decide(id, 'approve');
  const tokens = await oidc.pollBackchannelAuthenticationGrant(rp, { ...started, interval: 0.01 }, undefined, { DPoP });
  assert.equal(tokens.token_type, 'dpop');
  assert.equal((await oidc.fetchUserInfo(rp, tokens.access_token, 'alice', { DPoP })).sub, 'alice');

  const issuer = new URL(w.issuer);
  const insecure = { [oauth.allowInsecureRequests]: true };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
  const client: oauth.Client = { client_id: 'rp' };
  const handle = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
  const refresh = () =>
    oauth.refreshTokenGrantRequest(as, client, oauth.ClientSecretBasic(SECRET), tokens.refresh_token!, {
      DPoP: handle,
      ...insecure,
    });
  // A new key has no nonce yet: the first answer is use_dpop_nonce (oauth4webapi keeps the nonce it carries)...
  await assert.rejects(oauth.processRefreshTokenResponse(as, client, await refresh()), (e: unknown) =>
    oauth.isDPoPNonceError(e),
  );
  // ... but the grant is bound to openid-client's key: with this one the retry is invalid_grant, and nothing was used.
  await assert.rejects(
    oauth.processRefreshTokenResponse(as, client, await refresh()),
    (e: { error?: string }) => e.error === 'invalid_grant',
  );
  assert.equal((await oidc.refreshTokenGrant(rp, tokens.refresh_token!, undefined, { DPoP })).token_type, 'dpop');
});

test('one nonce key for the server, 256 bits, in the table', async () => {
  assert.equal(Buffer.from(String(await getDpopNonceKey()), 'base64url').length, 32);
});

// DPoP (RFC 9449) end to end: openid-client (getDPoPHandle) and oauth4webapi (DPoP) as the RP at the token endpoint
// (CIBA grant, refresh) and userinfo; DPoP-bound access tokens (token_type DPoP, cnf.jkt), introspection, a refresh
// bound to its key, dpop_bound_access_tokens, and raw negative cases for each proof rule (invalid_dpop_proof, 400 at
// the token endpoint, 401 with a DPoP challenge at userinfo), where a refused request consumes nothing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, decodeJwt, exportJWK, SignJWT, type JWK } from 'jose';
import * as oidc from 'openid-client';
import * as oauth from 'oauth4webapi';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { basic, CIBA_GRANT, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';

let w: World;
before(async () => {
  w = await startWorld({ CIBA_OPEN_REGISTRATION: 'true', CIBA_POLL_INTERVAL: '1' }, [
    {
      client_id: 'dpop-only',
      client_secret: SECRET,
      grant_types: [CIBA_GRANT, 'refresh_token'],
      scope: 'openid email',
      dpop_bound_access_tokens: true,
    },
  ]);
});
after(() => w.close());

/** A DPoP key of the test's own, with a proof maker for raw requests. */
class ProofKey {
  readonly #pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  get privateKey(): KeyObject {
    return this.#pair.privateKey;
  }
  async jwk(): Promise<JWK> {
    return (await exportJWK(this.#pair.publicKey)) as JWK;
  }
  async jkt(): Promise<string> {
    return calculateJwkThumbprint(await this.jwk(), 'sha256');
  }
  async proof(
    htm: string,
    htu: string,
    claims: Record<string, unknown> = {},
    header: Record<string, unknown> = {},
  ): Promise<string> {
    return new SignJWT({
      jti: crypto.randomUUID(),
      htm,
      htu,
      iat: Math.floor(Date.now() / 1000),
      ...claims,
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await this.jwk(), ...header } as never)
      .sign(this.#pair.privateKey);
  }
}

/** A backchannel request for alice; returns the auth_req_id. */
async function requested(clientId = 'rp', scope = 'openid email'): Promise<string> {
  const res = await postForm(
    `${w.issuer}/bc-authorize`,
    { scope, login_hint: 'alice' },
    { authorization: basic(clientId, SECRET) },
  );
  assert.equal(res.status, 200, res.text);
  return String(res.json.auth_req_id);
}

/** Alice approves the request on her device. */
async function approve(authReqId: string): Promise<void> {
  const id = sha256b64u(authReqId);
  await w.alice.waitFor((r) => r.id === id);
  assert.equal((await w.alice.decide(id, 'approve')).status, 204);
}

/** A backchannel request for alice, approved on her device; returns the auth_req_id. */
async function approved(clientId = 'rp', scope = 'openid email'): Promise<string> {
  const authReqId = await requested(clientId, scope);
  await approve(authReqId);
  return authReqId;
}

/** The client's poll interval in these tests (CIBA_POLL_INTERVAL=1): a poll sooner after the last gets slow_down. */
const pollInterval = () => new Promise((r) => setTimeout(r, 1_100));

const tokenRequest = (params: Record<string, string>, proof?: string, clientId = 'rp') =>
  postForm(`${w.issuer}/token`, params, {
    authorization: basic(clientId, SECRET),
    ...(proof !== undefined ? { dpop: proof } : {}),
  });
const redeem = (authReqId: string, proof?: string, clientId = 'rp') =>
  tokenRequest({ grant_type: CIBA_GRANT, auth_req_id: authReqId }, proof, clientId);
const userinfo = (headers: Record<string, string>) => fetch(`${w.issuer}/userinfo`, { headers });

describe('openid-client as the RP (getDPoPHandle)', () => {
  test('CIBA grant, userinfo, refresh and introspection with DPoP-bound tokens', async () => {
    const rp = await w.rp();
    const keyPair = await oidc.randomDPoPKeyPair('ES256');
    const DPoP = oidc.getDPoPHandle(rp, keyPair);
    const started = await oidc.initiateBackchannelAuthentication(rp, { scope: 'openid email', login_hint: 'alice' });
    await approve(started.auth_req_id);
    const tokens = await oidc.pollBackchannelAuthenticationGrant(rp, { ...started, interval: 0.01 }, undefined, {
      DPoP,
    });
    assert.equal(tokens.token_type, 'dpop');
    const jkt = await calculateJwkThumbprint(keyPair.publicKey, 'sha256');
    assert.deepEqual(decodeJwt(tokens.access_token).cnf, { jkt });

    const claims = await oidc.fetchUserInfo(rp, tokens.access_token, 'alice', { DPoP });
    assert.equal(claims.email, 'alice@example.com');

    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!, undefined, { DPoP });
    assert.equal(refreshed.token_type, 'dpop');
    assert.deepEqual(decodeJwt(refreshed.access_token).cnf, { jkt });

    const introspected = await oidc.tokenIntrospection(rp, refreshed.access_token);
    assert.equal(introspected.active, true);
    assert.equal(introspected.token_type, 'DPoP');
    assert.deepEqual(introspected.cnf, { jkt });
  });

  test('a DPoP-bound refresh with another key is refused (invalid_grant) and uses nothing up', async () => {
    const rp = await w.rp();
    const DPoP = oidc.getDPoPHandle(rp, await oidc.randomDPoPKeyPair('ES256'));
    const started = await oidc.initiateBackchannelAuthentication(rp, { scope: 'openid', login_hint: 'alice' });
    await approve(started.auth_req_id);
    const tokens = await oidc.pollBackchannelAuthenticationGrant(rp, { ...started, interval: 0.01 }, undefined, {
      DPoP,
    });

    const stranger = oidc.getDPoPHandle(rp, await oidc.randomDPoPKeyPair('ES256'));
    await assert.rejects(
      oidc.refreshTokenGrant(rp, tokens.refresh_token!, undefined, { DPoP: stranger }),
      (e: { error?: string }) => e.error === 'invalid_grant',
    );
    await assert.rejects(
      oidc.refreshTokenGrant(rp, tokens.refresh_token!),
      (e: { error?: string }) => e.error === 'invalid_dpop_proof',
    );
    // Neither refusal used the refresh token up (nor took it for reuse): the right key still refreshes.
    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!, undefined, { DPoP });
    assert.equal(refreshed.token_type, 'dpop');
  });

  test('a Bearer grant refreshed with a proof becomes bound to that key', async () => {
    const rp = await w.rp();
    const started = await oidc.initiateBackchannelAuthentication(rp, { scope: 'openid', login_hint: 'alice' });
    await approve(started.auth_req_id);
    const tokens = await oidc.pollBackchannelAuthenticationGrant(rp, { ...started, interval: 0.01 });
    assert.equal(tokens.token_type, 'bearer');
    const keyPair = await oidc.randomDPoPKeyPair('ES256');
    const DPoP = oidc.getDPoPHandle(rp, keyPair);
    const bound = await oidc.refreshTokenGrant(rp, tokens.refresh_token!, undefined, { DPoP });
    assert.equal(bound.token_type, 'dpop');
    await assert.rejects(
      oidc.refreshTokenGrant(rp, bound.refresh_token!),
      (e: { error?: string }) => e.error === 'invalid_dpop_proof',
    );
  });
});

describe('oauth4webapi as the RP (DPoP)', () => {
  test('backchannel request, DPoP token request and DPoP userinfo', async () => {
    const issuer = new URL(w.issuer);
    const insecure = { [oauth.allowInsecureRequests]: true };
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
    assert.deepEqual(as.dpop_signing_alg_values_supported, ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA']);
    const client: oauth.Client = { client_id: 'rp' };
    const auth = oauth.ClientSecretBasic(SECRET);
    const keyPair = await oauth.generateKeyPair('PS256');
    const DPoP = oauth.DPoP(client, keyPair);
    const bc = await oauth.processBackchannelAuthenticationResponse(
      as,
      client,
      await oauth.backchannelAuthenticationRequest(
        as,
        client,
        auth,
        { scope: 'openid email', login_hint: 'alice' },
        insecure,
      ),
    );
    await approve(bc.auth_req_id);
    const result = await oauth.processBackchannelAuthenticationGrantResponse(
      as,
      client,
      await oauth.backchannelAuthenticationGrantRequest(as, client, auth, bc.auth_req_id, { DPoP, ...insecure }),
    );
    assert.equal(result.token_type, 'dpop');
    const info = await oauth.processUserInfoResponse(
      as,
      client,
      'alice',
      await oauth.userInfoRequest(as, client, result.access_token, { DPoP, ...insecure }),
    );
    assert.equal(info.email, 'alice@example.com');
  });
});

describe('RFC 9449 §4.3 at the token endpoint: invalid_dpop_proof (400), nothing consumed', () => {
  const key = new ProofKey();
  const htu = () => `${w.issuer}/token`;

  test('each rule refuses the redemption; the approved request then still redeems with a good proof', async () => {
    const authReqId = await approved();
    const cases: [string, Promise<string>][] = [
      ['typ', key.proof('POST', htu(), {}, { typ: 'JWT' })],
      ['htm', key.proof('GET', htu())],
      ['htu', key.proof('POST', `${w.issuer}/userinfo`)],
      ['iat too old', key.proof('POST', htu(), { iat: Math.floor(Date.now() / 1000) - 300 })],
      ['iat ahead', key.proof('POST', htu(), { iat: Math.floor(Date.now() / 1000) + 300 })],
      ['no jti', key.proof('POST', htu(), { jti: undefined })],
      ['private key in jwk', (async () => key.proof('POST', htu(), {}, { jwk: await exportJWK(key.privateKey) }))()],
      ['not a JWT', Promise.resolve('not-a-jwt')],
      [
        'HS256',
        new SignJWT({ jti: 'h', htm: 'POST', htu: htu(), iat: Math.floor(Date.now() / 1000) })
          .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt' })
          .sign(new Uint8Array(32)),
      ],
    ];
    for (const [what, proof] of cases) {
      const res = await redeem(authReqId, await proof);
      assert.equal(res.status, 400, what);
      assert.equal(res.json.error, 'invalid_dpop_proof', `${what}: ${res.text}`);
    }
    const two = await key.proof('POST', htu());
    assert.equal((await redeem(authReqId, `${two}, ${two}`)).json.error, 'invalid_dpop_proof', 'two DPoP headers');
    const ok = await redeem(authReqId, await key.proof('POST', htu()));
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.token_type, 'DPoP');
    assert.deepEqual(decodeJwt(String(ok.json.access_token)).cnf, { jkt: await key.jkt() });
  });

  test('§11.1 jti replay: a proof is used once; the replayed request consumes nothing', async () => {
    const proof = await key.proof('POST', htu());
    const first = await redeem(await approved(), proof);
    assert.equal(first.status, 200, first.text);
    const second = await approved();
    const replayed = await redeem(second, proof);
    assert.equal(replayed.status, 400);
    assert.equal(replayed.json.error, 'invalid_dpop_proof');
    assert.match(String(replayed.json.error_description), /used before/);
    // The request was not redeemed by the refused attempt.
    assert.equal((await redeem(second, await key.proof('POST', htu()))).status, 200);
  });

  test('a pending poll does not use the proof: the same proof redeems once approved', async () => {
    const authReqId = await requested('rp', 'openid');
    const proof = await key.proof('POST', htu());
    assert.equal((await redeem(authReqId, proof)).json.error, 'authorization_pending');
    await approve(authReqId);
    await pollInterval();
    assert.equal((await redeem(authReqId, proof)).status, 200);
  });

  test("the grant's refresh token is bound to the redeeming poll's key, not to an earlier pending poll's", async () => {
    const authReqId = await requested('rp', 'openid');
    const [early, redeemer] = [new ProofKey(), new ProofKey()];
    assert.equal((await redeem(authReqId, await early.proof('POST', htu()))).json.error, 'authorization_pending');
    await approve(authReqId);
    await pollInterval();
    const redeemed = await redeem(authReqId, await redeemer.proof('POST', htu()));
    assert.equal(redeemed.status, 200, JSON.stringify(redeemed.json));
    const refreshToken = String(redeemed.json.refresh_token);
    const refresh = async (k: ProofKey) =>
      tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshToken }, await k.proof('POST', htu()));
    assert.equal((await refresh(early)).json.error, 'invalid_grant', "the pending poll's key does not refresh");
    const refreshed = await refresh(redeemer);
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.json));
    assert.equal(refreshed.json.token_type, 'DPoP');
    assert.deepEqual(decodeJwt(String(refreshed.json.access_token)).cnf, { jkt: await redeemer.jkt() });
  });

  test('§5.2 dpop_bound_access_tokens: a token request without a proof is refused, with one it succeeds', async () => {
    const authReqId = await approved('dpop-only');
    const refused = await redeem(authReqId, undefined, 'dpop-only');
    assert.equal(refused.status, 400);
    assert.equal(refused.json.error, 'invalid_dpop_proof');
    const ok = await redeem(authReqId, await key.proof('POST', htu()), 'dpop-only');
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.token_type, 'DPoP');
    const refresh = await tokenRequest(
      { grant_type: 'refresh_token', refresh_token: String(ok.json.refresh_token) },
      undefined,
      'dpop-only',
    );
    assert.equal(refresh.json.error, 'invalid_dpop_proof');
  });

  test('RFC 7591: a push client cannot register for DPoP-bound tokens', async () => {
    const res = await fetch(`${w.issuer}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        client_name: 'push dpop',
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: [CIBA_GRANT],
        backchannel_token_delivery_mode: 'push',
        backchannel_client_notification_endpoint: 'http://127.0.0.1:9/cb',
        dpop_bound_access_tokens: true,
      }),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: string; error_description: string };
    assert.equal(body.error, 'invalid_client_metadata');
    assert.match(body.error_description, /push/);
  });
});

describe('RFC 9449 §7 at userinfo: 401 with a DPoP challenge', () => {
  const key = new ProofKey();
  const htu = () => `${w.issuer}/userinfo`;
  let token = '';
  before(async () => {
    const res = await redeem(await approved(), await key.proof('POST', `${w.issuer}/token`));
    token = String(res.json.access_token);
  });
  const ath = () => sha256b64u(token);

  test('the token with the DPoP scheme and a proof naming it (ath): 200; the same proof again: invalid_dpop_proof', async () => {
    const proof = await key.proof('GET', htu(), { ath: ath() });
    const ok = await userinfo({ authorization: `DPoP ${token}`, dpop: proof });
    assert.equal(ok.status, 200);
    const again = await userinfo({ authorization: `DPoP ${token}`, dpop: proof });
    assert.equal(again.status, 401);
    assert.match(String(again.headers.get('www-authenticate')), /^DPoP .*error="invalid_dpop_proof"/);
  });

  test('a DPoP-bound token as a Bearer token: 401 invalid_token with the DPoP challenge and its algs', async () => {
    const res = await userinfo({ authorization: `Bearer ${token}` });
    assert.equal(res.status, 401);
    assert.match(
      String(res.headers.get('www-authenticate')),
      /^DPoP .*error="invalid_token".*algs="ES256 ES384 PS256 RS256 EdDSA"/,
    );
  });

  test('each proof rule, and a proof of another key', async () => {
    const stranger = new ProofKey();
    const cases: [string, Record<string, string>, string][] = [
      ['no proof', { authorization: `DPoP ${token}` }, 'invalid_dpop_proof'],
      ['no ath', { authorization: `DPoP ${token}`, dpop: await key.proof('GET', htu()) }, 'invalid_dpop_proof'],
      [
        'wrong ath',
        { authorization: `DPoP ${token}`, dpop: await key.proof('GET', htu(), { ath: sha256b64u('x') }) },
        'invalid_dpop_proof',
      ],
      [
        'htm',
        { authorization: `DPoP ${token}`, dpop: await key.proof('POST', htu(), { ath: ath() }) },
        'invalid_dpop_proof',
      ],
      [
        'htu',
        { authorization: `DPoP ${token}`, dpop: await key.proof('GET', `${w.issuer}/token`, { ath: ath() }) },
        'invalid_dpop_proof',
      ],
      [
        'another key',
        { authorization: `DPoP ${token}`, dpop: await stranger.proof('GET', htu(), { ath: ath() }) },
        'invalid_token',
      ],
    ];
    for (const [what, headers, error] of cases) {
      const res = await userinfo(headers);
      assert.equal(res.status, 401, what);
      assert.match(String(res.headers.get('www-authenticate')), new RegExp(`^DPoP .*error="${error}"`), what);
    }
    // None of them used the good proof's jti: a fresh good proof still works.
    assert.equal(
      (await userinfo({ authorization: `DPoP ${token}`, dpop: await key.proof('GET', htu(), { ath: ath() }) })).status,
      200,
    );
  });

  test('a Bearer token sent with the DPoP scheme: 401 invalid_token', async () => {
    const bearer = await redeem(await approved());
    const res = await userinfo({
      authorization: `DPoP ${String(bearer.json.access_token)}`,
      dpop: await key.proof('GET', htu()),
    });
    assert.equal(res.status, 401);
    assert.match(String(res.headers.get('www-authenticate')), /error="invalid_token"/);
  });
});

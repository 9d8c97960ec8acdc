// Resource indicators (RFC 8707) end to end: `resource` (repeated) at the backchannel endpoint makes the access
// token's aud those resources (userinfo then refuses it unless the issuer is among them); the token endpoint may
// narrow them (§2.2, CIBA grant and refresh); bad values are 400 invalid_target and consume nothing.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { basic, CIBA_GRANT, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';

const API = 'https://api.example.com/';
const LEDGER = 'https://ledger.example.com/v1';

let w: World;
before(async () => {
  w = await startWorld({ CIBA_POLL_INTERVAL: '1' });
});
after(() => w.close());

const form = (pairs: [string, string][]) => new URLSearchParams(pairs).toString();

async function approved(resources: string[]): Promise<string> {
  const res = await postForm(
    `${w.issuer}/bc-authorize`,
    form([['scope', 'openid'], ['login_hint', 'alice'], ...resources.map((r): [string, string] => ['resource', r])]),
    { authorization: basic('rp', SECRET) },
  );
  assert.equal(res.status, 200, res.text);
  const authReqId = String(res.json.auth_req_id);
  const id = sha256b64u(authReqId);
  await w.alice.waitFor((r) => r.id === id);
  assert.equal((await w.alice.decide(id, 'approve')).status, 204);
  return authReqId;
}
const token = (pairs: [string, string][]) =>
  postForm(`${w.issuer}/token`, form(pairs), { authorization: basic('rp', SECRET) });
const userinfo = (accessToken: string) =>
  fetch(`${w.issuer}/userinfo`, { headers: { authorization: `Bearer ${accessToken}` } });

test('openid-client: repeated resource → aud is those resources; userinfo refuses the token; introspection knows it', async () => {
  const rp = await w.rp();
  const started = await oidc.initiateBackchannelAuthentication(
    rp,
    new URLSearchParams([
      ['scope', 'openid'],
      ['login_hint', 'alice'],
      ['resource', API],
      ['resource', LEDGER],
    ]),
  );
  const id = sha256b64u(started.auth_req_id);
  await w.alice.waitFor((r) => r.id === id);
  await w.alice.decide(id, 'approve');
  const tokens = await oidc.pollBackchannelAuthenticationGrant(rp, { ...started, interval: 0.01 });
  assert.deepEqual(decodeJwt(tokens.access_token).aud, [API, LEDGER]);
  const refused = await userinfo(tokens.access_token);
  assert.equal(refused.status, 401);
  assert.match(String(refused.headers.get('www-authenticate')), /error="invalid_token".*aud/);
  const introspected = await oidc.tokenIntrospection(rp, tokens.access_token);
  assert.equal(introspected.active, true);
  assert.deepEqual(introspected.aud, [API, LEDGER]);
});

test('with the issuer among the resources, userinfo accepts the token', async () => {
  const res = await token([
    ['grant_type', CIBA_GRANT],
    ['auth_req_id', await approved([API, w.issuer])],
  ]);
  assert.equal((await userinfo(String(res.json.access_token))).status, 200);
});

test('§2 invalid_target (400) for a fragment, a relative or a malformed URI; nothing is started', async () => {
  for (const bad of [`${API}#section`, '/relative/path', 'api.example.com', 'https://exa mple.com']) {
    const before = w.stack.stepFunctions.executions().length;
    const res = await postForm(
      `${w.issuer}/bc-authorize`,
      form([
        ['scope', 'openid'],
        ['login_hint', 'alice'],
        ['resource', API],
        ['resource', bad],
      ]),
      { authorization: basic('rp', SECRET) },
    );
    assert.equal(res.status, 400, bad);
    assert.equal(res.json.error, 'invalid_target', bad);
    assert.equal(w.stack.stepFunctions.executions().length, before);
  }
});

test('§2.2 the token endpoint narrows; a resource not granted is invalid_target and redeems nothing', async () => {
  const authReqId = await approved([API, LEDGER]);
  const foreign = await token([
    ['grant_type', CIBA_GRANT],
    ['auth_req_id', authReqId],
    ['resource', 'https://evil.example/'],
  ]);
  assert.equal(foreign.status, 400);
  assert.equal(foreign.json.error, 'invalid_target');
  const narrowed = await token([
    ['grant_type', CIBA_GRANT],
    ['auth_req_id', authReqId],
    ['resource', LEDGER],
  ]);
  assert.equal(narrowed.status, 200, narrowed.text);
  assert.equal(decodeJwt(String(narrowed.json.access_token)).aud, LEDGER);

  // A refresh keeps the grant's resources, may narrow them, and a refused one does not use the token.
  const refreshToken = String(narrowed.json.refresh_token);
  const refused = await token([
    ['grant_type', 'refresh_token'],
    ['refresh_token', refreshToken],
    ['resource', 'https://evil.example/'],
  ]);
  assert.equal(refused.json.error, 'invalid_target');
  const refreshed = await token([
    ['grant_type', 'refresh_token'],
    ['refresh_token', refreshToken],
    ['resource', API],
  ]);
  assert.equal(refreshed.status, 200, refreshed.text);
  assert.equal(decodeJwt(String(refreshed.json.access_token)).aud, API);
  const again = await token([
    ['grant_type', 'refresh_token'],
    ['refresh_token', String(refreshed.json.refresh_token)],
  ]);
  assert.deepEqual(decodeJwt(String(again.json.access_token)).aud, [API, LEDGER], 'the grant keeps all its resources');
});

test('a grant that named no resource cannot be pointed at one at the token endpoint', async () => {
  const res = await token([
    ['grant_type', CIBA_GRANT],
    ['auth_req_id', await approved([])],
    ['resource', API],
  ]);
  assert.equal(res.status, 400);
  assert.equal(res.json.error, 'invalid_target');
});

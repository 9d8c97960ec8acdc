// The user's gate (adapters/store/limits.ts): one conditional write per backchannel request checks the user and
// reserves their limits. A user stored before gates existed gets one on first use; a removed user is unknown at once,
// even to an instance that remembers their login name, and their approval not yet redeemed is withdrawn.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DeleteCommand, GetCommand } from '@aws-sdk/lib-dynamodb';
import { basic, CIBA_GRANT, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { db, key, table } from '../../functions/adapters/store/table.ts';
import { claimDeviceSlot, decideAuthRequest, putUser } from '../../functions/adapters/store.ts';
import { removeUser } from '../../functions/admin/operations.ts';

let w: World;
before(async () => {
  w = await startWorld();
});
after(() => w.close());

const ask = (login: string, bindingMessage: string) =>
  postForm(
    `${w.issuer}/bc-authorize`,
    { scope: 'openid', login_hint: login, binding_message: bindingMessage },
    { authorization: basic('rp', SECRET) },
  );
const token = (params: Record<string, string>) =>
  postForm(`${w.issuer}/token`, params, { authorization: basic('rp', SECRET) });
/** A new user `sub` with one request started for them: its auth_req_id. */
async function userWithRequest(sub: string, tag: string): Promise<string> {
  await putUser({ sub, email: `${sub}@example.com` });
  const started = await ask(`${sub}@example.com`, tag);
  assert.equal(started.status, 200, started.text);
  return String(started.json.auth_req_id);
}
const gateOf = async (sub: string) =>
  (await db().send(new GetCommand({ TableName: table(), Key: key.gate(sub), ConsistentRead: true }))).Item;

test('a user without a gate (stored before gates existed) gets one on the first request', async () => {
  await db().send(new DeleteCommand({ TableName: table(), Key: key.gate('bob') }));
  assert.equal(await gateOf('bob'), undefined);
  const res = await ask('bob@example.com', 'GATE-1');
  assert.equal(res.status, 200, res.text);
  const gate = await gateOf('bob');
  assert.ok(gate);
  assert.deepEqual([...(gate.logins as Set<string>)].sort(), ['bob', 'bob@example.com']);
  assert.ok(Object.values(gate.rate as Record<string, number>).includes(1), 'the request was counted');
});

test('a removed user is unknown at once, though this instance remembers the login name', async () => {
  await putUser({ sub: 'carl', email: 'carl@example.com' });
  assert.equal((await ask('carl@example.com', 'GATE-2')).status, 200); // remembered from now on
  await removeUser('carl');
  const res = await ask('carl@example.com', 'GATE-3');
  assert.equal(res.status, 400);
  assert.equal(res.json.error, 'unknown_user_id');
});

test('removing a user withdraws their approval not yet redeemed: the token endpoint answers access_denied', async () => {
  const authReqId = await userWithRequest('dora', 'GATE-4');
  const id = sha256b64u(authReqId);
  assert.equal((await decideAuthRequest(id, 'dora', 'approved', Date.now(), ['hwk'])).ok, true);
  await removeUser('dora');
  const res = await token({ grant_type: CIBA_GRANT, auth_req_id: authReqId });
  assert.equal(res.status, 400, res.text);
  assert.equal(res.json.error, 'access_denied');
  assert.equal(res.json.access_token, undefined);
});

test('removing a user denies their pending requests, also against a decision whose device was checked just before', async () => {
  const authReqId = await userWithRequest('finn', 'GATE-7');
  await removeUser('finn');
  // The write of an approval whose device assertion was verified before the removal: too late.
  const late = await decideAuthRequest(sha256b64u(authReqId), 'finn', 'approved', Date.now(), ['hwk']);
  assert.deepEqual(late, { ok: false, reason: 'already_decided' });
  const res = await token({ grant_type: CIBA_GRANT, auth_req_id: authReqId });
  assert.equal(res.status, 400, res.text);
  assert.equal(res.json.error, 'access_denied');
});

test("removing a user ends their grants' refresh tokens: the first, kept on the request row, and rotated ones", async () => {
  await putUser({ sub: 'emil', email: 'emil@example.com' });
  assert.equal(await claimDeviceSlot('emil', 'dev-emil', 5, Date.now()), true); // a slot map item exists
  const redeemed: string[] = [];
  for (const tag of ['GATE-5', 'GATE-6']) {
    const started = await ask('emil@example.com', tag);
    const authReqId = String(started.json.auth_req_id);
    assert.equal((await decideAuthRequest(sha256b64u(authReqId), 'emil', 'approved', Date.now(), ['hwk'])).ok, true);
    const tokens = await token({ grant_type: CIBA_GRANT, auth_req_id: authReqId });
    assert.equal(tokens.status, 200, tokens.text);
    redeemed.push(String(tokens.json.refresh_token));
  }
  // One grant's first token is rotated (a row of its own now); the other's is still the first.
  const rotated = await token({ grant_type: 'refresh_token', refresh_token: redeemed[0]! });
  assert.equal(rotated.status, 200, rotated.text);
  const live = [String(rotated.json.refresh_token), redeemed[1]!];

  assert.deepEqual(await removeUser('emil'), { devices: 0, refreshTokens: 2 });
  for (const sk of ['PROFILE', 'GATE', 'DEVICES']) {
    const left = await db().send(new GetCommand({ TableName: table(), Key: { pk: 'USER#emil', sk } }));
    assert.equal(left.Item, undefined, `USER#emil / ${sk} is gone`);
  }
  for (const t of live) {
    const introspected = await postForm(`${w.issuer}/introspect`, { token: t }, { authorization: basic('rp', SECRET) });
    assert.equal(introspected.json.active, false, t);
    assert.equal((await token({ grant_type: 'refresh_token', refresh_token: t })).json.error, 'invalid_grant');
  }
});

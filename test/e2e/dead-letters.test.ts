// Dead letters end to end (docs/operations.md "Dead letters"): a ping and a push client whose endpoint answers 401
// get one attempt each; the execution fails at Deliver; the deliver function writes one dead letter without secrets;
// `npm run admin -- dead-letters list` shows them without consuming them; once the endpoint answers 204,
// `dead-letters redrive <id>` delivers each exactly once with the right body (the push with a fresh, valid token set:
// the first one had expired, and its refresh token no longer works), the same execution succeeds with redrive count
// 1 and the message is gone. Unknown ids, --all, --json, usage errors and a row gone after its TTL too. The CLI runs
// as a child process (asynchronously: the stack runs in this process) against the stack's data dir.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteCommand, GetCommand } from '@aws-sdk/lib-dynamodb';
import {
  basic,
  CIBA_GRANT,
  type NodeRun,
  postForm,
  runNode,
  SECRET,
  sleep,
  startWorld,
  type World,
} from '../support/e2e.ts';
import { NotificationReceiver } from '../support/receiver.ts';
import { getAuthRequest } from '../../functions/adapters/store.ts';
import { db, key, table } from '../../functions/adapters/store/table.ts';

const ADMIN = new URL('../../scripts/admin.ts', import.meta.url).pathname;
const CLIENTS = ['dl-ping', 'dl-push', 'dl-all', 'dl-gone'] as const;

let w: World;
let receiver: NotificationReceiver;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ciba-dead-letters-'));
  receiver = await NotificationReceiver.start();
  for (const c of CLIENTS) receiver.respond(`/${c}`, () => 401);
  const base = { grant_types: [CIBA_GRANT, 'refresh_token'], scope: 'openid profile', client_secret: SECRET };
  // Access tokens live 60 s, so a push token set is stale (less than a minute left) when it is redriven.
  w = await startWorld(
    { CIBA_POLL_INTERVAL: '1', ACCESS_TOKEN_TTL: '60' },
    CLIENTS.map((c) => ({
      ...base,
      client_id: c,
      backchannel_token_delivery_mode: c === 'dl-push' ? 'push' : 'ping',
      backchannel_client_notification_endpoint: receiver.url(`/${c}`),
    })),
    [],
    { dataDir: join(dir, 'data') },
  );
});
after(async () => {
  await w?.close();
  await receiver?.down();
  rmSync(dir, { recursive: true, force: true });
});

type Run = NodeRun;

/** `npm run admin -- …` on this stack's data dir, without blocking this process (the stack runs in it). */
const admin = (args: string[]): Promise<Run> =>
  runNode([ADMIN, ...args], { ...process.env, CIBA_DATA_DIR: join(dir, 'data'), PORT: '' });

const audits = (r: Run) =>
  r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** A request of `clientId`, approved by alice; its delivery fails (401) and the execution ends FAILED. */
async function deadLettered(clientId: string): Promise<{ id: string; authReqId: string; arn: string }> {
  const bindingMessage = `DL-${clientId}-${Math.random().toString(36).slice(2, 6)}`;
  const res = await postForm(
    `${w.issuer}/bc-authorize`,
    {
      scope: 'openid profile',
      login_hint: 'alice',
      binding_message: bindingMessage,
      client_notification_token: `cnt-${clientId}-0123456789`,
    },
    { authorization: basic(clientId, SECRET) },
  );
  assert.equal(res.status, 200, res.text);
  const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
  assert.equal((await w.alice.decide(request.id, 'approve')).status, 204);
  const execution = await w.stack.stepFunctions.waitForStatus(request.id, 'FAILED', 20_000);
  return { id: request.id, authReqId: String(res.json.auth_req_id), arn: execution.executionArn };
}

const letters = () =>
  w.stack.sqs.deadLetters().map((m) => ({ ...m, letter: JSON.parse(m.body) as Record<string, unknown> }));
const lettersOf = (id: string) => letters().filter((m) => m.letter.requestId === id);
const entered = (arn: string) =>
  w.stack.stepFunctions
    .history(arn)
    .filter((e) => e.type === 'StateEntered')
    .map((e) => e.stateName);

let ping: { id: string; authReqId: string; arn: string };
let push: { id: string; authReqId: string; arn: string };

test('a 401 fails the execution at Deliver and leaves one dead letter without secrets; the row keeps them sealed', async () => {
  ping = await deadLettered('dl-ping');
  push = await deadLettered('dl-push');
  for (const [r, clientId, mode] of [
    [ping, 'dl-ping', 'ping'],
    [push, 'dl-push', 'push'],
  ] as const) {
    assert.deepEqual(entered(r.arn), ['AwaitDecision', 'Deliver']);
    const execution = w.stack.stepFunctions.describe(r.arn)!;
    assert.equal(execution.error, 'Delivery.Rejected');
    assert.equal(receiver.received(`/${clientId}`).length, 1, 'one attempt');

    const [message, ...more] = lettersOf(r.id);
    assert.ok(message, 'dead-lettered');
    assert.equal(more.length, 0, 'one dead letter');
    const { letter } = message;
    assert.equal(letter.clientId, clientId);
    assert.equal(letter.mode, mode);
    assert.equal(letter.error, 'Delivery.Rejected');
    assert.match(String(letter.cause), /HTTP 401/);
    assert.equal(letter.attempts, 1);
    assert.equal(letter.executionName, r.id);
    assert.equal(letter.execution, r.arn);
    assert.ok(!Number.isNaN(Date.parse(String(letter.at))));
    const text = JSON.stringify(message);
    for (const secret of [r.authReqId, `cnt-${clientId}-0123456789`, 'auth_req_id', 'client_notification_token'])
      assert.ok(!text.includes(secret), `no ${secret} in the dead letter`);
    if (mode === 'push') {
      const sent = receiver.received('/dl-push')[0]!.json;
      assert.ok(sent.access_token);
      assert.ok(!text.includes(String(sent.access_token)) && !text.includes('access_token'), 'no token in it');
    }

    const row = await getAuthRequest(r.id);
    assert.equal(row?.delivery_status, 'failed');
    assert.ok(row?.delivery_secrets, 'the sealed secrets are kept for a redrive');
    if (mode === 'push') assert.ok(row?.push_tokens, 'the sealed token set is kept too');
    const raw = await db().send(new GetCommand({ TableName: table(), Key: key.request(r.id) }));
    const ttl = Number(raw.Item?.ttl);
    assert.ok(ttl * 1000 > Date.now() + 13.9 * 86_400_000, 'kept until the redrive horizon (14 days)');
  }
});

test('dead-letters list (table and --json) shows them and consumes nothing', async () => {
  const human = await admin(['dead-letters', 'list']);
  assert.equal(human.status, 0, human.stderr);
  const [header, ...lines] = human.stdout.trimEnd().split('\n');
  assert.match(header!, /^REQUEST_ID\s+CLIENT\s+MODE\s+ERROR\s+AGE\s+CAUSE$/);
  const pingLine = lines.find((l) => l.startsWith(ping.id));
  assert.match(pingLine ?? '', /dl-ping\s+ping\s+Delivery\.Rejected\s+\d+s\s+HTTP 401/);
  assert.ok(lines.some((l) => l.startsWith(push.id) && /dl-push\s+push/.test(l)));

  const json = await admin(['dead-letters', 'list', '--json']);
  assert.equal(json.status, 0, json.stderr);
  const listed = JSON.parse(json.stdout) as Record<string, unknown>[];
  const entry = listed.find((l) => l.request_id === ping.id);
  assert.equal(entry?.client_id, 'dl-ping');
  assert.equal(entry?.error, 'Delivery.Rejected');
  assert.equal(entry?.execution, ping.arn);
  assert.equal(entry?.attempts, 1);
  assert.equal(typeof entry?.age_seconds, 'number');
  assert.ok(listed.some((l) => l.request_id === push.id));

  // Nothing consumed: both still there, visible at once.
  for (const r of [ping, push]) {
    const [message] = lettersOf(r.id);
    assert.equal(message?.state, 'visible');
  }
});

test('redrive <ping id> once the endpoint is fixed: delivered exactly once, same execution SUCCEEDED, redrive count 1, message gone', async () => {
  receiver.respond('/dl-ping', () => 204);
  const r = await admin(['dead-letters', 'redrive', ping.id]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^redrove ${ping.id} \\(redrive 1; execution ${ping.arn}\\)`));
  const [line, ...more] = audits(r);
  assert.equal(more.length, 0);
  assert.equal(line?.action, 'dead-letters.redrive');
  assert.equal(line?.request_id, ping.id);
  assert.equal(line?.outcome, 'done');

  const execution = await w.stack.stepFunctions.waitForStatus(ping.arn, 'SUCCEEDED', 20_000);
  assert.equal(execution.executionArn, ping.arn, 'the same execution');
  assert.equal(execution.redriveCount, 1);
  assert.deepEqual(entered(ping.arn), ['AwaitDecision', 'Deliver', 'Deliver']);
  await sleep(300);
  const got = receiver.received('/dl-ping');
  assert.equal(got.length, 2, 'the failed attempt, then exactly one delivery');
  assert.deepEqual(got[1]!.json, { auth_req_id: ping.authReqId });
  assert.equal(got[1]!.headers.authorization, 'Bearer cnt-dl-ping-0123456789');
  assert.equal(lettersOf(ping.id).length, 0, 'the dead letter is gone');
  const row = await getAuthRequest(ping.id);
  assert.equal(row?.delivery_status, 'delivered');
  assert.equal(row?.delivery_redrives, 1);
  assert.equal(row?.delivery_secrets, undefined, 'secrets dropped once delivered');
  // The ping client redeems its auth_req_id.
  const token = await postForm(
    `${w.issuer}/token`,
    { grant_type: CIBA_GRANT, auth_req_id: ping.authReqId },
    { authorization: basic('dl-ping', SECRET) },
  );
  assert.equal(token.status, 200, token.text);
  // Not dead-lettered any more: nothing to redrive.
  const again = await admin(['dead-letters', 'redrive', ping.id]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, new RegExp(`request ${ping.id}: no dead letter for this request`));
});

test('redrive --json of the push: a fresh token set that works; the stale set is revoked', async () => {
  receiver.respond('/dl-push', () => 204);
  const stale = receiver.received('/dl-push')[0]!.json;
  const r = await admin(['dead-letters', 'redrive', push.id, '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [
    { request_id: push.id, outcome: 'redriven', execution: push.arn, redrive_count: 1, messages: 1 },
  ]);
  const execution = await w.stack.stepFunctions.waitForStatus(push.arn, 'SUCCEEDED', 20_000);
  assert.equal(execution.redriveCount, 1);
  await sleep(300);
  const got = receiver.received('/dl-push');
  assert.equal(got.length, 2, 'exactly one delivery after the redrive');
  const fresh = got[1]!.json;
  assert.equal(fresh.auth_req_id, push.authReqId);
  assert.ok(fresh.access_token && fresh.id_token && fresh.refresh_token);
  assert.notEqual(fresh.access_token, stale.access_token, 'the expired set was replaced');
  const userinfo = await fetch(`${w.issuer}/userinfo`, { headers: { authorization: `Bearer ${fresh.access_token}` } });
  assert.equal(userinfo.status, 200);
  const refresh = (token: unknown) =>
    postForm(
      `${w.issuer}/token`,
      { grant_type: 'refresh_token', refresh_token: String(token) },
      { authorization: basic('dl-push', SECRET) },
    );
  assert.equal((await refresh(stale.refresh_token)).json.error, 'invalid_grant', 'the stale family is revoked');
  assert.equal((await refresh(fresh.refresh_token)).status, 200);
  assert.equal(lettersOf(push.id).length, 0);
});

test('redrive --all: every dead-lettered request; an unknown id and usage errors', async () => {
  const [a, b] = [await deadLettered('dl-all'), await deadLettered('dl-all')];
  assert.equal(letters().length, 2);
  receiver.respond('/dl-all', () => 204);
  const r = await admin(['dead-letters', 'redrive', '--all']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(audits(r).length, 2);
  for (const x of [a, b]) {
    assert.match(r.stdout, new RegExp(`redrove ${x.id}`));
    assert.equal((await w.stack.stepFunctions.waitForStatus(x.arn, 'SUCCEEDED', 20_000)).redriveCount, 1);
  }
  assert.equal(letters().length, 0);
  const none = await admin(['dead-letters', 'redrive', '--all']);
  assert.equal(none.status, 0, none.stderr);
  assert.equal(none.stdout.trim(), 'no dead letters');
  assert.equal((await admin(['dead-letters', 'list'])).stdout.trim(), '(none)');

  const unknown = await admin(['dead-letters', 'redrive', 'no-such-request']);
  assert.equal(unknown.status, 1);
  assert.equal(unknown.stderr.split('\n').filter((l) => l.startsWith('npm run admin:')).length, 1);
  assert.match(unknown.stderr, /npm run admin: request no-such-request: no dead letter for this request/);
  assert.equal(audits(unknown)[0]?.outcome, 'not_found');
  const usage = await admin(['dead-letters', 'redrive']);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /name the request ids to redrive, or --all/);
  assert.equal((await admin(['dead-letters', 'redrive', 'x', '--all'])).status, 2);
  assert.equal((await admin(['dead-letters', 'list', '--all'])).status, 2);
});

test('a request whose row is gone (its TTL passed) cannot be redriven: a clear error, its dead letter kept', async () => {
  const gone = await deadLettered('dl-gone');
  await db().send(new DeleteCommand({ TableName: table(), Key: key.request(gone.id) }));
  receiver.respond('/dl-gone', () => 204);
  const r = await admin(['dead-letters', 'redrive', gone.id]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`request ${gone.id}: the request is gone`));
  assert.equal(audits(r)[0]?.outcome, 'not_found');
  assert.equal(lettersOf(gone.id).length, 1, 'kept');
  assert.equal(lettersOf(gone.id)[0]?.state, 'visible', 'and handed back');
  assert.equal(w.stack.stepFunctions.describe(gone.arn)?.status, 'FAILED', 'not redriven');
  assert.equal(receiver.received('/dl-gone').length, 1);
});

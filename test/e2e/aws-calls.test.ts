// What a complete poll flow costs in AWS calls, pinned (docs/architecture.md, "Few round trips"): every call the
// handlers make on the local stack is observed and grouped by the invocation that made it (its function and request
// id); each endpoint's calls and critical-path depth (round trips one after another) are checked, warm (the
// functions already hold the client's registration, the login name's user and the device's key) and cold.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { basic, CIBA_GRANT, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';
import type { AwsCall } from '../../functions/adapters/aws.ts';

let w: World;
before(async () => {
  // The server's defaults for the client quota (none) and the rate per user; the pending cap as the e2e world sets it.
  w = await startWorld({ CIBA_POLL_INTERVAL: '1', CIBA_RATE_LIMIT_CLIENT: '', CIBA_RATE_LIMIT_USER: '' });
  w.stack.awsCalls.record();
});
after(() => w.close());

/** The longest chain of calls each starting after the previous one ended. */
function depth(calls: readonly AwsCall[]): number {
  const sorted = [...calls].sort((a, b) => a.start - b.start);
  const d: number[] = [];
  sorted.forEach((c, i) => {
    d.push(1 + Math.max(0, ...sorted.slice(0, i).flatMap((p, j) => (p.end <= c.start ? [d[j]!] : []))));
  });
  return Math.max(0, ...d);
}

/** The calls of each invocation since the last reset, by function (in the order the invocations first called). */
function byInvocation(): Map<string, AwsCall[][]> {
  const invocations = new Map<string, { fn: string; calls: AwsCall[] }>();
  for (const call of w.stack.awsCalls.calls()) {
    assert.ok(call.invocation, `${call.service}.${call.operation} was made outside any handler invocation`);
    const entry = invocations.get(call.invocation.awsRequestId) ?? { fn: call.invocation.function, calls: [] };
    entry.calls.push(call);
    invocations.set(call.invocation.awsRequestId, entry);
  }
  const out = new Map<string, AwsCall[][]>();
  for (const { fn, calls } of invocations.values()) out.set(fn, [...(out.get(fn) ?? []), calls]);
  return out;
}

const ops = (calls: readonly AwsCall[]) => calls.map((c) => `${c.service}.${c.operation}`).sort();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One complete poll flow: request, one pending poll, device list, approval, redemption; the device notified. */
async function flow(tag: string): Promise<Map<string, AwsCall[][]>> {
  w.stack.awsCalls.reset();
  const poll = (authReqId: string) =>
    postForm(
      `${w.issuer}/token`,
      { grant_type: CIBA_GRANT, auth_req_id: authReqId },
      { authorization: basic('rp', SECRET) },
    );
  const started = await postForm(
    `${w.issuer}/bc-authorize`,
    { scope: 'openid', login_hint: 'alice@example.com', binding_message: tag },
    { authorization: basic('rp', SECRET) },
  );
  assert.equal(started.status, 200, started.text);
  const authReqId = String(started.json.auth_req_id);
  assert.equal((await poll(authReqId)).json.error, 'authorization_pending');
  const request = await w.alice.waitFor((r) => r.binding_message === tag);
  // The workflow has stored its task token and the dispatcher has read the user's devices.
  for (let i = 0; i < 100 && (byInvocation().get('dispatch-notifications') ?? []).length === 0; i++) await sleep(20);
  assert.equal((await w.alice.decide(request.id, 'approve')).status, 204);
  await sleep(1_050); // the poll interval
  const redeemed = await poll(authReqId);
  assert.equal(redeemed.status, 200, redeemed.text);
  await w.stack.stepFunctions.waitForStatus(request.id, 'SUCCEEDED');
  return byInvocation();
}

test('a complete poll flow: each endpoint makes its expected calls, within the depth budgets', async () => {
  const cold = await flow('CALLS-COLD');
  const warm = await flow('CALLS-WARM');

  const [bc] = warm.get('bc-authorize')!;
  assert.deepEqual(ops(bc!), [
    'DynamoDB.PutItem', // the request row …
    'DynamoDB.UpdateItem', // … the user's gate (exists, enabled, rate, pending cap) …
    'StepFunctions.StartExecution', // … and the workflow (a client with a quota adds one write beside the gate's)
  ]);
  assert.equal(depth(bc!), 2, 'bc-authorize: gate → [row ‖ execution]');
  // Cold: the login name's user is read first.
  const [bcCold] = cold.get('bc-authorize')!;
  assert.deepEqual(ops(bcCold!).filter((o) => o === 'DynamoDB.GetItem').length, 2, 'client and login name, once');

  const [pending, redemption] = warm.get('token')!;
  assert.deepEqual(ops(pending!), ['DynamoDB.UpdateItem'], 'a pending poll is one write');
  // The counted poll is the redemption, and the same write recorded the grant's first refresh token.
  assert.deepEqual(ops(redemption!), ['DynamoDB.UpdateItem'], 'a redemption is one write');
  assert.equal(depth(redemption!), 1);

  const lists = warm.get('device-list')!;
  for (const list of lists) {
    assert.deepEqual(ops(list), ['DynamoDB.Query', 'DynamoDB.UpdateItem'], 'device row write ‖ the query');
    assert.equal(depth(list), 1);
  }
  const [decide] = warm.get('device-decide')!;
  assert.deepEqual(ops(decide!), ['DynamoDB.UpdateItem', 'DynamoDB.UpdateItem', 'StepFunctions.SendTaskSuccess']);
  assert.ok(depth(decide!) <= 3);
  // Cold: the device's key is read once (the local stack runs both device functions in one process).
  const deviceCold = [...cold.get('device-list')!, ...cold.get('device-decide')!].flat();
  assert.equal(ops(deviceCold).filter((o) => o === 'DynamoDB.GetItem').length, 1, "the device's key, once");

  const [notify] = warm.get('notify-device')!;
  assert.deepEqual(ops(notify!), ['DynamoDB.UpdateItem', 'SNS.Publish']);
  const [dispatch] = warm.get('dispatch-notifications')!;
  assert.deepEqual(ops(dispatch!), ['DynamoDB.Query'], "alice's device polls: the dispatcher only reads the devices");

  // The whole flow with one device list (the device app lists once, then decides): to the device topic 12 calls,
  // 10 of them one after another; the dispatcher's read of the user's devices makes it 13 and 11.
  const steps = [bc!, pending!, redemption!, lists[0]!, decide!, notify!];
  const calls = (s: AwsCall[][]) => s.reduce((n, c) => n + c.length, 0);
  const sequential = (s: AwsCall[][]) => s.reduce((n, c) => n + depth(c), 0);
  const listing = steps.map((c) => ops(c).join(' ')).join('\n');
  assert.equal(calls(steps), 12, listing);
  assert.equal(sequential(steps), 10, 'sequential round trips');
  assert.equal(calls([...steps, dispatch!]), 13);
  assert.equal(sequential([...steps, dispatch!]), 11);
});

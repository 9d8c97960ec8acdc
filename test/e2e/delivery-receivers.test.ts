// How the delivery treats what the client's notification endpoint answers (CIBA §10.2, §10.3; docs/architecture.md):
// 2xx is delivered (any body), 3xx is never followed and final, other 4xx are final, 5xx and a missing endpoint are
// retried with backoff until they succeed. Final failures end the execution FAILED at Deliver (redrivable: see
// dead-letters.test.ts) and land in the dead-letter queue; the row keeps its sealed secrets for the redrive.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { basic, CIBA_GRANT, postForm, SECRET, sleep, startWorld, type World } from '../support/e2e.ts';
import { NotificationReceiver } from '../support/receiver.ts';
import { getAuthRequest } from '../../functions/adapters/store.ts';

let w: World;
let receiver: NotificationReceiver;
let flaky: NotificationReceiver;
const PATHS = ['ok-200-body', 'ok-204', 'no-401', 'no-403', 'moved-301', 'busy-503', 'push-503'] as const;

before(async () => {
  receiver = await NotificationReceiver.start();
  flaky = await NotificationReceiver.start();
  const base = { grant_types: [CIBA_GRANT, 'refresh_token'], scope: 'openid profile', client_secret: SECRET };
  w = await startWorld({ CIBA_POLL_INTERVAL: '1' }, [
    ...PATHS.map((p) => ({
      ...base,
      client_id: p,
      backchannel_token_delivery_mode: p.startsWith('push') ? 'push' : 'ping',
      backchannel_client_notification_endpoint: receiver.url(`/${p}`),
    })),
    {
      ...base,
      client_id: 'flaky',
      backchannel_token_delivery_mode: 'push',
      backchannel_client_notification_endpoint: flaky.url('/flaky'),
    },
  ]);
});
after(async () => {
  await w.close();
  await receiver.down();
  await flaky.down();
});

/** Starts a request for `clientId` and approves it; returns the public request id. */
async function approved(clientId: string): Promise<{ id: string; authReqId: string }> {
  const bindingMessage = `R-${clientId}-${Math.random().toString(36).slice(2, 6)}`;
  const res = await postForm(
    `${w.issuer}/bc-authorize`,
    {
      scope: 'openid',
      login_hint: 'alice',
      binding_message: bindingMessage,
      client_notification_token: `token-for-${clientId}`,
    },
    { authorization: basic(clientId, SECRET) },
  );
  assert.equal(res.status, 200, res.text);
  const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
  assert.equal((await w.alice.decide(request.id, 'approve')).status, 204);
  return { id: request.id, authReqId: String(res.json.auth_req_id) };
}

const enteredStates = (arn: string) =>
  w.stack.stepFunctions
    .history(arn)
    .filter((e) => e.type === 'StateEntered')
    .map((e) => e.stateName);

describe('accepted answers', () => {
  for (const [path, reply] of [
    ['ok-200-body', { status: 200, body: '<html>thanks</html>', headers: { 'content-type': 'text/html' } }],
    ['ok-204', 204],
  ] as const) {
    test(`${path}: delivered once, execution succeeded after 2 states`, async () => {
      receiver.respond(`/${path}`, () => reply);
      const { id, authReqId } = await approved(path);
      const execution = await w.stack.stepFunctions.waitForStatus(id, 'SUCCEEDED', 20_000);
      assert.deepEqual(enteredStates(execution.executionArn), ['AwaitDecision', 'Deliver']);
      const got = receiver.received(`/${path}`);
      assert.equal(got.length, 1);
      assert.deepEqual(got[0]!.json, { auth_req_id: authReqId });
      assert.equal((await getAuthRequest(id))?.delivery_status, 'delivered');
    });
  }
});

describe('final answers: not retried, dead-lettered', () => {
  for (const [path, status] of [
    ['no-401', 401],
    ['no-403', 403],
    ['moved-301', 301],
  ] as const) {
    test(`${path}: one attempt, execution FAILED at Deliver, a dead letter without secrets`, async () => {
      receiver.respond(`/${path}`, () => ({
        status,
        ...(status === 301 ? { headers: { location: receiver.url('/redirect-target') } } : {}),
      }));
      const { id, authReqId } = await approved(path);
      const execution = await w.stack.stepFunctions.waitForStatus(id, 'FAILED', 20_000);
      assert.deepEqual(enteredStates(execution.executionArn), ['AwaitDecision', 'Deliver']);
      assert.equal(execution.error, 'Delivery.Rejected');
      assert.equal(receiver.received(`/${path}`).length, 1, 'not retried');
      if (status === 301)
        assert.equal(receiver.received('/redirect-target').length, 0, 'the redirect was not followed');

      const letter = w.stack.sqs
        .deadLetters()
        .map((m) => JSON.parse(m.body) as Record<string, string>)
        .find((m) => m.requestId === id);
      assert.ok(letter, 'the failed delivery is in the dead-letter queue');
      assert.equal(letter.clientId, path);
      assert.equal(letter.mode, 'ping');
      assert.equal(letter.error, 'Delivery.Rejected');
      assert.match(String(letter.cause), new RegExp(`HTTP ${status}`));
      assert.equal(letter.execution, execution.executionArn);
      assert.equal(letter.executionName, id);
      assert.equal(letter.attempts, 1);
      assert.ok(
        !JSON.stringify(letter).includes(authReqId) && !JSON.stringify(letter).includes(`token-for-${path}`),
        'no secrets in the dead letter',
      );
      const row = await getAuthRequest(id);
      assert.equal(row?.delivery_status, 'failed');
      assert.ok(row?.delivery_secrets, 'the sealed secrets are kept for a redrive');
      // The ping client can still redeem by polling: the approval is not lost.
      const token = await postForm(
        `${w.issuer}/token`,
        { grant_type: CIBA_GRANT, auth_req_id: authReqId },
        { authorization: basic(path, SECRET) },
      );
      assert.equal(token.status, 200);
    });
  }
});

describe('retried answers', () => {
  test('503 then 200: retried, delivered once', async () => {
    receiver.respond('/busy-503', (n) => (n === 0 ? 503 : 200));
    const { id } = await approved('busy-503');
    const execution = await w.stack.stepFunctions.waitForStatus(id, 'SUCCEEDED', 30_000);
    assert.equal(receiver.received('/busy-503').length, 2);
    assert.deepEqual(
      enteredStates(execution.executionArn),
      ['AwaitDecision', 'Deliver'],
      'the retry is inside the Deliver state',
    );
    assert.equal((await getAuthRequest(id))?.delivery_attempts, 2);
  });

  test('push 503 then 200: the retry re-sends the same token set (minted once)', async () => {
    receiver.respond('/push-503', (n) => (n === 0 ? 503 : 204));
    const { id } = await approved('push-503');
    await w.stack.stepFunctions.waitForStatus(id, 'SUCCEEDED', 30_000);
    const [first, second] = receiver.received('/push-503');
    assert.ok(first && second);
    assert.ok(first.json.access_token);
    assert.deepEqual(second.json, first.json, 'identical token set');
  });

  test('endpoint down for a while, then up: delivered after recovery, once', async () => {
    await flaky.down();
    const { id, authReqId } = await approved('flaky');
    // Wait until at least two attempts have failed against the closed port (state, not time).
    for (let i = 0; ; i++) {
      const attempts = (await getAuthRequest(id))?.delivery_attempts;
      if (attempts === undefined || attempts >= 3) break;
      assert.ok(i < 300, 'attempts continue while the endpoint is down');
      await sleep(100);
    }
    assert.equal(flaky.received('/flaky').length, 0);
    await flaky.up();
    const execution = await w.stack.stepFunctions.waitForStatus(id, 'SUCCEEDED', 60_000);
    const got = flaky.received('/flaky');
    assert.equal(got.length, 1, 'delivered once');
    assert.equal(got[0]!.json.auth_req_id, authReqId);
    assert.ok(got[0]!.json.access_token);
    assert.deepEqual(enteredStates(execution.executionArn), ['AwaitDecision', 'Deliver']);
  });
});

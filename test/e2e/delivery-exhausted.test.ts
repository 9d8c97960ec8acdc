// A delivery window that closes (CIBA_DELIVERY_WINDOW, here 3 s): retries stop, the execution fails at Deliver
// (redrivable) and the notification lands in the dead-letter queue, inspectable with the AWS SDK at the local AWS
// endpoint; the row keeps its sealed secrets and token set for a redrive.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { basic, CIBA_GRANT, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';
import { NotificationReceiver } from '../support/receiver.ts';
import { getAuthRequest } from '../../functions/adapters/store.ts';

let w: World;
let receiver: NotificationReceiver;

before(async () => {
  receiver = await NotificationReceiver.start();
  w = await startWorld({ CIBA_DELIVERY_WINDOW: '3' }, [
    {
      client_id: 'always-busy',
      client_secret: SECRET,
      grant_types: [CIBA_GRANT],
      scope: 'openid',
      backchannel_token_delivery_mode: 'push',
      backchannel_client_notification_endpoint: receiver.url('/busy'),
    },
  ]);
});
after(async () => {
  await w.close();
  await receiver.down();
});

test('503 until the window closes: Delivery.Exhausted, dead-lettered, secrets kept sealed for a redrive', async () => {
  receiver.respond('/busy', () => 503);
  const res = await postForm(
    `${w.issuer}/bc-authorize`,
    { scope: 'openid', login_hint: 'alice', binding_message: 'EXHAUST', client_notification_token: 'busy-token' },
    { authorization: basic('always-busy', SECRET) },
  );
  assert.equal(res.status, 200);
  const request = await w.alice.waitFor((r) => r.binding_message === 'EXHAUST');
  await w.alice.decide(request.id, 'approve');
  const execution = await w.stack.stepFunctions.waitForStatus(request.id, 'FAILED', 60_000);

  const attempts = receiver.received('/busy');
  assert.ok(attempts.length >= 2, `retried (${attempts.length} attempts)`);
  // The window counts from when the delivery began, a moment before the first POST left: the last attempt is the first
  // to find it closed, so it comes (almost) 3 s after the first.
  assert.ok(attempts.at(-1)!.at - attempts[0]!.at >= 2500, 'until the window closed');
  assert.deepEqual(attempts.at(-1)!.json, attempts[0]!.json, 'every attempt carried the same token set');
  assert.equal(execution.error, 'Delivery.Exhausted');
  const entered = w.stack.stepFunctions
    .history(execution.executionArn)
    .filter((e) => e.type === 'StateEntered')
    .map((e) => e.stateName);
  assert.deepEqual(entered, ['AwaitDecision', 'Deliver'], 'failed at Deliver, where a redrive resumes it');
  const row = await getAuthRequest(request.id);
  assert.equal(row?.delivery_status, 'failed');
  assert.equal(row?.delivery_error, 'Delivery.Exhausted');
  assert.ok(row?.push_tokens, 'the sealed token set is kept for a redrive');
  assert.ok(row?.delivery_secrets, 'the sealed secrets are kept for a redrive');

  // Ops read the dead-letter queue with the real SDK, as on AWS.
  const sqs = new SQSClient({
    endpoint: w.stack.awsEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const out = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: w.stack.sqs.deadLetterQueueUrl, MaxNumberOfMessages: 10 }),
  );
  const letter = (out.Messages ?? [])
    .map((m) => JSON.parse(m.Body!) as Record<string, string>)
    .find((m) => m.requestId === request.id);
  assert.ok(letter);
  assert.equal(letter.error, 'Delivery.Exhausted');
  assert.match(String(letter.cause), /HTTP 503.*not delivered within 3 s/);
  assert.equal(letter.execution, execution.executionArn);
  assert.ok(Number(letter.attempts) >= 2);
  assert.ok(!JSON.stringify(out.Messages).includes('busy-token'), 'no secret in the dead letter');
  assert.ok(!JSON.stringify(out.Messages).includes(String(res.json.auth_req_id)), 'no secret in the dead letter');
  assert.ok(!JSON.stringify(out.Messages).includes(String(attempts[0]!.json.access_token)), 'no token in it');
});

// The local Step Functions and SNS services, driven through the real AWS SDK clients over HTTP, with a small test
// workflow (test/fixtures/local/callback.asl.json) and a fixture function standing in for a Lambda.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  SFNClient,
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { SNSEvent } from 'aws-lambda';
import { LOCAL_CREDENTIALS, LOCAL_REGION, startLocalDynamoDb } from '../../infra/local/dynamodb.ts';
import type { LocalDynamoDb } from '../../infra/local/dynamodb.ts';
import { LocalStepFunctions } from '../../infra/local/stepfunctions.ts';
import { LocalSns, formatDeviceNotification } from '../../infra/local/sns.ts';
import { startAwsEndpoint } from '../../infra/local/aws-endpoint.ts';
import type { AwsEndpoint } from '../../infra/local/aws-endpoint.ts';
import { handler as fixtureFunction, hooks, invocation } from '../fixtures/local/workflow-function.ts';

const ASL = await readFile(new URL('../fixtures/local/callback.asl.json', import.meta.url), 'utf8');
const TABLE = 'local-sfn-test';
const SUBSTITUTIONS = { FixtureFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:fixture', TableName: TABLE };

let dynamo: LocalDynamoDb;
let sns: LocalSns;
let sfn: LocalStepFunctions;
let endpoint: AwsEndpoint;
let client: SFNClient;
let ddb: DynamoDBClient;
let machineArn: string;
let counter = 0;

before(async () => {
  dynamo = await startLocalDynamoDb({ tableName: TABLE });
  sns = new LocalSns({ log: () => {} });
  sfn = new LocalStepFunctions({ dynamoDbEndpoint: dynamo.endpoint, sns, log: () => {} });
  sfn.registerFunction('fixture', (event) => fixtureFunction(event as Parameters<typeof fixtureFunction>[0]));
  machineArn = sfn.addStateMachine('callback-test', ASL, SUBSTITUTIONS);
  endpoint = await startAwsEndpoint({ stepFunctions: sfn, sns });
  client = new SFNClient({ endpoint: endpoint.url, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  ddb = new DynamoDBClient({ endpoint: dynamo.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
});

after(async () => {
  client.destroy();
  ddb.destroy();
  await sfn.close();
  await endpoint.close();
  await dynamo.close();
});

/** Starts an execution of the test workflow; returns its name, ARN and the task token the fixture function got. */
async function startWaiting(mode: 'wait' | 'self-approve' = 'wait', timeout = 30) {
  const id = `req-${++counter}-${Date.now()}`;
  const out = await client.send(new StartExecutionCommand({ stateMachineArn: machineArn, name: id, input: JSON.stringify({ id, mode, timeout }) }));
  const { taskToken } = await invocation(id);
  return { id, arn: out.executionArn!, taskToken };
}

async function rejectsWith(promise: Promise<unknown>, name: string): Promise<void> {
  await assert.rejects(promise, (err: Error) => {
    assert.equal(err.name, name, err.message);
    return true;
  });
}

describe('local Step Functions over the SFN SDK', () => {
  test('callback success: SendTaskSuccess output becomes the task result', async () => {
    const { id, arn, taskToken } = await startWaiting();
    assert.match(taskToken, /^[A-Za-z0-9_-]{64}$/);
    const running = await client.send(new DescribeExecutionCommand({ executionArn: arn }));
    assert.equal(running.status, 'RUNNING');
    assert.equal(running.name, id);
    assert.ok(running.startDate instanceof Date);

    await client.send(new SendTaskHeartbeatCommand({ taskToken }));
    await client.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify({ decision: 'approved' }) }));
    await sfn.waitForStatus(id, 'SUCCEEDED', 5000);
    const done = await client.send(new DescribeExecutionCommand({ executionArn: arn }));
    assert.equal(done.status, 'SUCCEEDED');
    assert.deepEqual(JSON.parse(done.output!), { id, mode: 'wait', timeout: 30, decision: { decision: 'approved' } });
    assert.ok(done.stopDate instanceof Date);

    // The token never shows in the execution's input, output or history.
    const all = JSON.stringify([sfn.executions(), sfn.history(arn)]);
    assert.ok(!all.includes(taskToken));
    // A used token of a finished execution is gone.
    await rejectsWith(client.send(new SendTaskSuccessCommand({ taskToken, output: '{}' })), 'TaskDoesNotExist');
  });

  test('callback failure is caught by error name', async () => {
    const { id, arn, taskToken } = await startWaiting();
    await client.send(new SendTaskFailureCommand({ taskToken, error: 'access_denied', cause: 'The end-user denied the request.' }));
    const rec = await sfn.waitForStatus(id, 'SUCCEEDED', 5000);
    assert.deepEqual(JSON.parse(rec.output!).denial, { Error: 'access_denied', Cause: 'The end-user denied the request.' });
    const entered = sfn.history(arn).filter((e) => e.type === 'StateEntered').map((e) => e.stateName);
    assert.deepEqual(entered, ['Notify', 'Denied']);
  });

  test('a function error fails the task with the function error name', async () => {
    const id = `req-throw-${Date.now()}`;
    const { executionArn } = await client.send(
      new StartExecutionCommand({ stateMachineArn: machineArn, name: id, input: JSON.stringify({ id, mode: 'throw', timeout: 30 }) }),
    );
    const rec = await sfn.waitForStatus(id, 'FAILED', 5000);
    assert.equal(rec.error, 'NotificationFailed');
    const failed = sfn.history(executionArn!).find((e) => e.type === 'StateFailed' && e.stateName === 'Notify');
    assert.equal(failed?.error, 'NotifyFailed');
    assert.deepEqual(JSON.parse(failed?.cause ?? ''), { errorType: 'NotifyFailed', errorMessage: 'cannot reach the device' });
  });

  test('the callback may arrive before the invoked function returns', async () => {
    hooks.selfApprove = async (taskToken) => {
      await client.send(new SendTaskSuccessCommand({ taskToken, output: '{"early":true}' }));
    };
    try {
      const { id } = await startWaiting('self-approve');
      const rec = await sfn.waitForStatus(id, 'SUCCEEDED', 5000);
      assert.deepEqual(JSON.parse(rec.output!).decision, { early: true });
    } finally {
      delete hooks.selfApprove;
    }
  });

  test('timeout from TimeoutSecondsPath, conditional DynamoDB update, late callback → TaskTimedOut', async () => {
    const t0 = Date.now();
    const [pending, missing] = await Promise.all([startWaiting('wait', 1), startWaiting('wait', 1)]);
    // Only the first has a pending row: its RecordExpiry update succeeds, the other's condition fails.
    await ddb.send(new PutItemCommand({ TableName: TABLE, Item: { pk: { S: `REQ#${pending.id}` }, sk: { S: 'REQ' }, status: { S: 'pending' } } }));
    const [recorded, notRecorded] = await Promise.all([
      sfn.waitForStatus(pending.id, 'SUCCEEDED', 5000),
      sfn.waitForStatus(missing.id, 'SUCCEEDED', 5000),
    ]);
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 950 && elapsed < 3000, `timed out after ${elapsed} ms`);

    const entered = (arn: string) => sfn.history(arn).filter((e) => e.type === 'StateEntered').map((e) => e.stateName);
    assert.deepEqual(entered(recorded.executionArn), ['Notify', 'RecordExpiry', 'Expired']);
    assert.deepEqual(entered(notRecorded.executionArn), ['Notify', 'RecordExpiry', 'NotRecorded']);
    assert.equal(JSON.parse(notRecorded.output!).recordError.Error, 'DynamoDB.ConditionalCheckFailedException');
    const row = await ddb.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: `REQ#${pending.id}` }, sk: { S: 'REQ' } } }));
    assert.equal(row.Item?.status?.S, 'expired');

    await rejectsWith(client.send(new SendTaskSuccessCommand({ taskToken: pending.taskToken, output: '{}' })), 'TaskTimedOut');
    await rejectsWith(client.send(new SendTaskFailureCommand({ taskToken: missing.taskToken, error: 'access_denied' })), 'TaskTimedOut');

    const history = await client.send(new GetExecutionHistoryCommand({ executionArn: recorded.executionArn }));
    assert.ok(history.events?.some((e) => e.type === 'TaskTimedOut'));
  });

  test('unknown and malformed tokens', async () => {
    await rejectsWith(client.send(new SendTaskSuccessCommand({ taskToken: 'A'.repeat(64), output: '{}' })), 'TaskDoesNotExist');
    await rejectsWith(client.send(new SendTaskFailureCommand({ taskToken: 'A'.repeat(64) })), 'TaskDoesNotExist');
    await rejectsWith(client.send(new SendTaskSuccessCommand({ taskToken: 'not a token', output: '{}' })), 'InvalidToken');
    const { id, taskToken } = await startWaiting();
    await rejectsWith(client.send(new SendTaskSuccessCommand({ taskToken, output: 'not json' })), 'InvalidOutput');
    await client.send(new SendTaskSuccessCommand({ taskToken, output: '{}' }));
    await sfn.waitForStatus(id, 'SUCCEEDED', 5000);
  });

  test('StartExecution name rules', async () => {
    const { id, arn, taskToken } = await startWaiting();
    const input = JSON.stringify({ id, mode: 'wait', timeout: 30 });
    // Same name and input while running: idempotent.
    const again = await client.send(new StartExecutionCommand({ stateMachineArn: machineArn, name: id, input }));
    assert.equal(again.executionArn, arn);
    // Same name, other input: taken.
    await rejectsWith(
      client.send(new StartExecutionCommand({ stateMachineArn: machineArn, name: id, input: JSON.stringify({ id, mode: 'wait', timeout: 31 }) })),
      'ExecutionAlreadyExists',
    );
    await client.send(new SendTaskSuccessCommand({ taskToken, output: '{}' }));
    await sfn.waitForStatus(id, 'SUCCEEDED', 5000);
    // Closed: the name stays taken, even with the same input.
    await rejectsWith(client.send(new StartExecutionCommand({ stateMachineArn: machineArn, name: id, input })), 'ExecutionAlreadyExists');

    await rejectsWith(client.send(new StartExecutionCommand({ stateMachineArn: machineArn, name: 'x'.repeat(81) })), 'InvalidName');
    await rejectsWith(client.send(new StartExecutionCommand({ stateMachineArn: machineArn, name: 'a b' })), 'InvalidName');
    await rejectsWith(client.send(new StartExecutionCommand({ stateMachineArn: machineArn, input: '{nope' })), 'InvalidExecutionInput');
    await rejectsWith(
      client.send(new StartExecutionCommand({ stateMachineArn: `${machineArn}-missing`, input: '{}' })),
      'StateMachineDoesNotExist',
    );
    await rejectsWith(client.send(new DescribeExecutionCommand({ executionArn: `${arn}-missing` })), 'ExecutionDoesNotExist');
  });

  test('StopExecution aborts and drops the pending token', async () => {
    const { id, arn, taskToken } = await startWaiting();
    const stopped = await client.send(new StopExecutionCommand({ executionArn: arn, error: 'Ops', cause: 'stopped by test' }));
    assert.ok(stopped.stopDate instanceof Date);
    const rec = await client.send(new DescribeExecutionCommand({ executionArn: arn }));
    assert.equal(rec.status, 'ABORTED');
    assert.equal(rec.error, 'Ops');
    await rejectsWith(client.send(new SendTaskSuccessCommand({ taskToken, output: '{}' })), 'TaskDoesNotExist');
    // Nothing ran after the stop.
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(sfn.history(arn).map((e) => e.type), ['ExecutionStarted', 'StateEntered', 'ExecutionAborted']);
    assert.equal(sfn.describe(id)?.status, 'ABORTED');
  });

  test('history: GetExecutionHistory (AWS names), in-process events, ListExecutions', async () => {
    const { id, arn, taskToken } = await startWaiting();
    await client.send(new SendTaskSuccessCommand({ taskToken, output: '{"ok":true}' }));
    await sfn.waitForStatus(id, 'SUCCEEDED', 5000);
    const { events = [] } = await client.send(new GetExecutionHistoryCommand({ executionArn: arn }));
    assert.deepEqual(
      events.map((e) => e.type),
      ['ExecutionStarted', 'TaskStateEntered', 'TaskStateExited', 'SucceedStateEntered', 'SucceedStateExited', 'ExecutionSucceeded'],
    );
    assert.equal(events[1]?.stateEnteredEventDetails?.name, 'Notify');
    assert.deepEqual(JSON.parse(events[2]?.stateExitedEventDetails?.output ?? ''), { id, mode: 'wait', timeout: 30, decision: { ok: true } });
    assert.ok(events[0]?.timestamp instanceof Date);

    const reversed = await client.send(new GetExecutionHistoryCommand({ executionArn: arn, reverseOrder: true, maxResults: 2 }));
    assert.deepEqual(reversed.events?.map((e) => e.type), ['ExecutionSucceeded', 'SucceedStateExited']);
    assert.ok(reversed.nextToken);

    const local = sfn.history(arn);
    assert.equal(local.filter((e) => e.type === 'StateEntered').length, 2);
    assert.deepEqual(local.at(-1)?.output, { id, mode: 'wait', timeout: 30, decision: { ok: true } });

    const listed = await client.send(new ListExecutionsCommand({ stateMachineArn: machineArn, statusFilter: 'SUCCEEDED' }));
    assert.ok(listed.executions?.some((e) => e.executionArn === arn));
  });
});

describe('local Step Functions definitions', () => {
  test('refuses a TimeoutSecondsPath it cannot translate', () => {
    const definition = JSON.parse(ASL) as { States: { Notify: { Parameters: { Payload: Record<string, string> } } } };
    delete definition.States.Notify.Parameters.Payload['timeout.$'];
    const local = new LocalStepFunctions({ dynamoDbEndpoint: dynamo.endpoint, sns });
    assert.throws(() => local.addStateMachine('bad', definition, SUBSTITUTIONS), /TimeoutSecondsPath/);
  });

  test('refuses unsubstituted placeholders and callback tasks without a timeout', () => {
    const local = new LocalStepFunctions({ dynamoDbEndpoint: dynamo.endpoint, sns });
    assert.throws(() => local.addStateMachine('bad', ASL, { TableName: TABLE }), /\$\{FixtureFunctionArn\}/);
    const definition = JSON.parse(ASL) as { States: { Notify: Record<string, unknown> } };
    delete definition.States.Notify.TimeoutSecondsPath;
    assert.throws(() => local.addStateMachine('bad', definition, SUBSTITUTIONS), /needs TimeoutSeconds/);
  });

  test('with a data dir, executions still running at shutdown are ABORTED on the next start', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'local-sfn-'));
    try {
      const first = new LocalStepFunctions({ dynamoDbEndpoint: dynamo.endpoint, sns, dataDir });
      first.registerFunction('fixture', (event) => fixtureFunction(event as Parameters<typeof fixtureFunction>[0]));
      const arn = first.addStateMachine('persisted', ASL, SUBSTITUTIONS);
      const id = `persisted-${Date.now()}`;
      await first.call('StartExecution', { stateMachineArn: arn, name: id, input: JSON.stringify({ id, mode: 'wait', timeout: 30 }) });
      await invocation(id);
      await first.close();

      const second = new LocalStepFunctions({ dynamoDbEndpoint: dynamo.endpoint, sns, dataDir });
      second.addStateMachine('persisted', ASL, SUBSTITUTIONS);
      const rec = second.describe(id);
      assert.equal(rec?.status, 'ABORTED');
      assert.equal(second.history(rec.executionArn).at(-1)?.type, 'ExecutionAborted');
      // The name stays taken.
      await assert.rejects(second.call('StartExecution', { stateMachineArn: arn, name: id, input: '{}' }), { code: 'ExecutionAlreadyExists' });
      await second.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('local SNS over the SNS SDK', () => {
  test('Publish reaches a subscriber with an SNSEvent; unknown topic → NotFound', async () => {
    const topicArn = sns.createTopic('local-sns-test');
    const received = new Promise<SNSEvent>((resolve) => sns.subscribe(topicArn, async (event) => resolve(event)));
    const client = new SNSClient({ endpoint: endpoint.url, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    try {
      const out = await client.send(
        new PublishCommand({
          TopicArn: topicArn,
          Subject: 'Sign-in request',
          Message: '{"hello":"world"}',
          MessageAttributes: { sub: { DataType: 'String', StringValue: 'alice' } },
        }),
      );
      assert.match(out.MessageId ?? '', /^[0-9a-f-]{36}$/);
      const event = await received;
      const record = event.Records[0]?.Sns;
      assert.equal(record?.Type, 'Notification');
      assert.equal(record?.MessageId, out.MessageId);
      assert.equal(record?.TopicArn, topicArn);
      assert.equal(record?.Subject, 'Sign-in request');
      assert.equal(record?.Message, '{"hello":"world"}');
      assert.deepEqual(record?.MessageAttributes, { sub: { Type: 'String', Value: 'alice' } });
      assert.equal(sns.messages().at(-1)?.messageId, out.MessageId);

      await assert.rejects(
        client.send(new PublishCommand({ TopicArn: 'arn:aws:sns:us-east-1:000000000000:missing', Message: 'x' })),
        { name: 'NotFoundException' },
      );
    } finally {
      client.destroy();
    }
  });

  test('device notification console line', () => {
    const line = formatDeviceNotification(
      JSON.stringify({ type: 'ciba.authentication_request', requestId: 'r1', sub: 'alice', clientId: 'pos', clientName: 'Store POS', bindingMessage: 'X7-42', scope: 'openid', expiresAt: 1300 }),
      1_000_000,
    );
    assert.equal(line, '📱 alice: "Store POS" asks to sign you in — binding message: "X7-42", scope: openid (expires in 300 s) → approve with: npm run demo -- approve r1');
    assert.equal(formatDeviceNotification('not json'), undefined);
  });
});

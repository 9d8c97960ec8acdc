// The local Step Functions and SNS services, driven through the real AWS SDK clients over HTTP, with a small test
// workflow (test/fixtures/local/callback.asl.json) and a fixture function standing in for a Lambda; restarts on a
// data dir (executions resume).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  RedriveExecutionCommand,
  SFNClient,
  SendTaskFailureCommand,
  SendTaskSuccessCommand,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { SNSEvent } from 'aws-lambda';
import { LOCAL_CREDENTIALS, LOCAL_REGION, startLocalDynamoDb } from '../../local/dynamodb.ts';
import type { LocalDynamoDb } from '../../local/dynamodb.ts';
import { LocalStepFunctions } from '../../local/stepfunctions.ts';
import { LocalSns, formatDeviceNotification } from '../../local/sns.ts';
import { startAwsEndpoint } from '../../local/aws-endpoint.ts';
import type { AwsEndpoint } from '../../local/aws-endpoint.ts';
import { handler as fixtureFunction, hooks, invocation, invocations } from '../fixtures/local/workflow-function.ts';
import type { FixtureEvent } from '../fixtures/local/workflow-function.ts';

const ASL = await readFile(new URL('../fixtures/local/callback.asl.json', import.meta.url), 'utf8');
const TABLE = 'local-sfn-test';
const SUBSTITUTIONS = {
  FixtureFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:fixture',
  TableName: TABLE,
};

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
  sfn = new LocalStepFunctions({ dynamoDbEndpoint: dynamo.endpoint, log: () => {} });
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
  const out = await client.send(
    new StartExecutionCommand({ stateMachineArn: machineArn, name: id, input: JSON.stringify({ id, mode, timeout }) }),
  );
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
    await client.send(
      new SendTaskFailureCommand({ taskToken, error: 'access_denied', cause: 'The end-user denied the request.' }),
    );
    const rec = await sfn.waitForStatus(id, 'SUCCEEDED', 5000);
    assert.deepEqual(JSON.parse(rec.output!).denial, {
      Error: 'access_denied',
      Cause: 'The end-user denied the request.',
    });
    const entered = sfn
      .history(arn)
      .filter((e) => e.type === 'StateEntered')
      .map((e) => e.stateName);
    assert.deepEqual(entered, ['Notify', 'Denied']);
  });

  test('a function error fails the task with the function error name', async () => {
    const id = `req-throw-${Date.now()}`;
    const { executionArn } = await client.send(
      new StartExecutionCommand({
        stateMachineArn: machineArn,
        name: id,
        input: JSON.stringify({ id, mode: 'throw', timeout: 30 }),
      }),
    );
    const rec = await sfn.waitForStatus(id, 'FAILED', 5000);
    assert.equal(rec.error, 'NotificationFailed');
    const failed = sfn.history(executionArn!).find((e) => e.type === 'StateFailed' && e.stateName === 'Notify');
    assert.equal(failed?.error, 'NotifyFailed');
    assert.deepEqual(JSON.parse(failed?.cause ?? ''), {
      errorType: 'NotifyFailed',
      errorMessage: 'cannot reach the device',
    });
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
    await ddb.send(
      new PutItemCommand({
        TableName: TABLE,
        Item: { pk: { S: `REQ#${pending.id}` }, sk: { S: 'REQ' }, status: { S: 'pending' } },
      }),
    );
    const [recorded, notRecorded] = await Promise.all([
      sfn.waitForStatus(pending.id, 'SUCCEEDED', 5000),
      sfn.waitForStatus(missing.id, 'SUCCEEDED', 5000),
    ]);
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 950 && elapsed < 3000, `timed out after ${elapsed} ms`);

    const entered = (arn: string) =>
      sfn
        .history(arn)
        .filter((e) => e.type === 'StateEntered')
        .map((e) => e.stateName);
    assert.deepEqual(entered(recorded.executionArn), ['Notify', 'RecordExpiry', 'Expired']);
    assert.deepEqual(entered(notRecorded.executionArn), ['Notify', 'RecordExpiry', 'NotRecorded']);
    assert.equal(JSON.parse(notRecorded.output!).recordError.Error, 'DynamoDB.ConditionalCheckFailedException');
    const row = await ddb.send(
      new GetItemCommand({ TableName: TABLE, Key: { pk: { S: `REQ#${pending.id}` }, sk: { S: 'REQ' } } }),
    );
    assert.equal(row.Item?.status?.S, 'expired');

    await rejectsWith(
      client.send(new SendTaskSuccessCommand({ taskToken: pending.taskToken, output: '{}' })),
      'TaskTimedOut',
    );
    await rejectsWith(
      client.send(new SendTaskFailureCommand({ taskToken: missing.taskToken, error: 'access_denied' })),
      'TaskTimedOut',
    );

    const history = await client.send(new GetExecutionHistoryCommand({ executionArn: recorded.executionArn }));
    assert.ok(history.events?.some((e) => e.type === 'TaskTimedOut'));
  });

  test('unknown and malformed tokens', async () => {
    await rejectsWith(
      client.send(new SendTaskSuccessCommand({ taskToken: 'A'.repeat(64), output: '{}' })),
      'TaskDoesNotExist',
    );
    await rejectsWith(client.send(new SendTaskFailureCommand({ taskToken: 'A'.repeat(64) })), 'TaskDoesNotExist');
    await rejectsWith(
      client.send(new SendTaskSuccessCommand({ taskToken: 'not a token', output: '{}' })),
      'InvalidToken',
    );
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
      client.send(
        new StartExecutionCommand({
          stateMachineArn: machineArn,
          name: id,
          input: JSON.stringify({ id, mode: 'wait', timeout: 31 }),
        }),
      ),
      'ExecutionAlreadyExists',
    );
    await client.send(new SendTaskSuccessCommand({ taskToken, output: '{}' }));
    await sfn.waitForStatus(id, 'SUCCEEDED', 5000);
    // Closed: the name stays taken, even with the same input.
    await rejectsWith(
      client.send(new StartExecutionCommand({ stateMachineArn: machineArn, name: id, input })),
      'ExecutionAlreadyExists',
    );

    await rejectsWith(
      client.send(new StartExecutionCommand({ stateMachineArn: machineArn, name: 'x'.repeat(81) })),
      'InvalidName',
    );
    await rejectsWith(
      client.send(new StartExecutionCommand({ stateMachineArn: machineArn, name: 'a b' })),
      'InvalidName',
    );
    await rejectsWith(
      client.send(new StartExecutionCommand({ stateMachineArn: machineArn, input: '{nope' })),
      'InvalidExecutionInput',
    );
    await rejectsWith(
      client.send(new StartExecutionCommand({ stateMachineArn: `${machineArn}-missing`, input: '{}' })),
      'StateMachineDoesNotExist',
    );
    await rejectsWith(
      client.send(new DescribeExecutionCommand({ executionArn: `${arn}-missing` })),
      'ExecutionDoesNotExist',
    );
  });

  test('history: GetExecutionHistory (AWS names), in-process events', async () => {
    const { id, arn, taskToken } = await startWaiting();
    await client.send(new SendTaskSuccessCommand({ taskToken, output: '{"ok":true}' }));
    await sfn.waitForStatus(id, 'SUCCEEDED', 5000);
    const { events = [] } = await client.send(new GetExecutionHistoryCommand({ executionArn: arn }));
    assert.deepEqual(
      events.map((e) => e.type),
      [
        'ExecutionStarted',
        'TaskStateEntered',
        'TaskStateExited',
        'SucceedStateEntered',
        'SucceedStateExited',
        'ExecutionSucceeded',
      ],
    );
    assert.equal(events[1]?.stateEnteredEventDetails?.name, 'Notify');
    assert.deepEqual(JSON.parse(events[2]?.stateExitedEventDetails?.output ?? ''), {
      id,
      mode: 'wait',
      timeout: 30,
      decision: { ok: true },
    });
    assert.ok(events[0]?.timestamp instanceof Date);

    const reversed = await client.send(
      new GetExecutionHistoryCommand({ executionArn: arn, reverseOrder: true, maxResults: 2 }),
    );
    assert.deepEqual(
      reversed.events?.map((e) => e.type),
      ['ExecutionSucceeded', 'SucceedStateExited'],
    );
    assert.ok(reversed.nextToken);

    const local = sfn.history(arn);
    assert.equal(local.filter((e) => e.type === 'StateEntered').length, 2);
    assert.deepEqual(local.at(-1)?.output, { id, mode: 'wait', timeout: 30, decision: { ok: true } });
  });

  test('TimeoutSecondsPath is read from the state input, as on AWS (not from the Parameters)', async () => {
    const definition = JSON.parse(ASL) as { States: { Notify: { Parameters: { Payload: Record<string, string> } } } };
    delete definition.States.Notify.Parameters.Payload['timeout.$'];
    const arn = sfn.addStateMachine('path-from-input', definition, SUBSTITUTIONS);
    const id = `path-${Date.now()}`;
    await sfn.call('StartExecution', {
      stateMachineArn: arn,
      name: id,
      input: JSON.stringify({ id, mode: 'wait', timeout: 1 }),
    });
    const rec = await sfn.waitForStatus(id, 'SUCCEEDED', 5000);
    const entered = sfn
      .history(rec.executionArn)
      .filter((e) => e.type === 'StateEntered')
      .map((e) => e.stateName);
    assert.deepEqual(entered, ['Notify', 'RecordExpiry', 'NotRecorded']);
  });

  test('operations the product does not use are unknown', async () => {
    const reply = await sfn.handleHttp('AWSStepFunctions.StopExecution', JSON.stringify({ executionArn: 'x' }));
    assert.equal(reply.status, 400);
    assert.equal(JSON.parse(reply.body).__type, 'UnknownOperationException');
  });
});

/** The test workflow without Notify's Catch: a failed callback fails the execution in Notify (redrivable there). */
function uncaughtDefinition(): object {
  const definition = JSON.parse(ASL) as {
    States: Record<string, unknown> & { Notify: { Catch?: unknown; Parameters: { Payload: Record<string, string> } } };
  };
  delete definition.States.Notify.Catch;
  for (const unreachable of ['Denied', 'RecordExpiry', 'Expired', 'NotRecorded', 'Failed'])
    delete definition.States[unreachable];
  definition.States.Notify.Parameters.Payload['redriveCount.$'] = '$$.Execution.RedriveCount';
  return definition;
}

/** Resolves when the fixture function has been invoked `n` times for `id`. */
async function nthInvocation(id: string, n: number): Promise<FixtureEvent & { redriveCount?: number }> {
  for (let i = 0; invocations(id).length < n; i++) {
    assert.ok(i < 500, `invocation ${n} of ${id}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return invocations(id)[n - 1]!;
}

describe('local Step Functions RedriveExecution', () => {
  test('a failed execution runs again from the state it failed in, with its input, under the same ARN', async () => {
    const arn = sfn.addStateMachine('redrive-test', uncaughtDefinition(), SUBSTITUTIONS);
    const id = `redrive-${Date.now()}`;
    const { executionArn } = await client.send(
      new StartExecutionCommand({
        stateMachineArn: arn,
        name: id,
        input: JSON.stringify({ id, mode: 'wait', timeout: 30 }),
      }),
    );
    const first = await nthInvocation(id, 1);
    assert.equal(first.redriveCount, 0);
    // Redriving a running execution is refused.
    await rejectsWith(client.send(new RedriveExecutionCommand({ executionArn })), 'ExecutionNotRedrivable');
    await client.send(
      new SendTaskFailureCommand({ taskToken: first.taskToken, error: 'Delivery.Rejected', cause: 'HTTP 401' }),
    );
    const failed = await sfn.waitForStatus(id, 'FAILED', 5000);
    assert.equal(failed.error, 'Delivery.Rejected');
    const before = await client.send(new DescribeExecutionCommand({ executionArn }));
    assert.equal(before.redriveStatus, 'REDRIVABLE');
    assert.equal(before.redriveCount, 0);

    const t0 = Date.now();
    const redriven = await client.send(new RedriveExecutionCommand({ executionArn }));
    assert.ok(redriven.redriveDate instanceof Date && redriven.redriveDate.getTime() >= t0 - 1000);
    const running = await client.send(new DescribeExecutionCommand({ executionArn }));
    assert.equal(running.status, 'RUNNING');
    assert.equal(running.redriveCount, 1);
    assert.equal(running.stopDate, undefined);
    assert.equal(running.error, undefined);
    assert.equal(running.redriveStatus, 'NOT_REDRIVABLE');
    assert.equal(running.redriveStatusReason, 'Execution is RUNNING and cannot be redriven.');

    // The failed state runs again (a new invocation, a new token), with the same input; $$.Execution.RedriveCount is 1.
    const second = await nthInvocation(id, 2);
    assert.notEqual(second.taskToken, first.taskToken);
    assert.deepEqual({ ...second, taskToken: '' }, { ...first, taskToken: '', redriveCount: 1 });
    await rejectsWith(
      client.send(new SendTaskSuccessCommand({ taskToken: first.taskToken, output: '{}' })),
      'TaskDoesNotExist',
    );
    await client.send(new SendTaskSuccessCommand({ taskToken: second.taskToken, output: '{"decision":"approved"}' }));
    const done = await sfn.waitForStatus(id, 'SUCCEEDED', 5000);
    assert.equal(done.executionArn, executionArn);
    assert.deepEqual(JSON.parse(done.output!).decision, { decision: 'approved' });

    const described = await client.send(new DescribeExecutionCommand({ executionArn }));
    assert.equal(described.redriveCount, 1);
    assert.ok(described.redriveDate instanceof Date);
    assert.equal(described.redriveStatusReason, 'Execution is SUCCEEDED and cannot be redriven.');
    const { events = [] } = await client.send(new GetExecutionHistoryCommand({ executionArn }));
    assert.deepEqual(
      events.map((e) => e.type),
      [
        'ExecutionStarted',
        'TaskStateEntered',
        'TaskFailed',
        'ExecutionFailed',
        'ExecutionRedriven',
        'TaskStateEntered',
        'TaskStateExited',
        'SucceedStateEntered',
        'SucceedStateExited',
        'ExecutionSucceeded',
      ],
    );
    assert.equal(events[4]?.executionRedrivenEventDetails?.redriveCount, 1);
    assert.deepEqual(
      events.map((e) => e.id),
      events.map((_e, i) => i + 1),
    );
    await rejectsWith(client.send(new RedriveExecutionCommand({ executionArn })), 'ExecutionNotRedrivable');
  });

  test('validation: unknown and malformed ARNs, a missing ARN', async () => {
    await rejectsWith(
      client.send(
        new RedriveExecutionCommand({ executionArn: 'arn:aws:states:us-east-1:000000000000:execution:nope:nope' }),
      ),
      'ExecutionDoesNotExist',
    );
    await rejectsWith(client.send(new RedriveExecutionCommand({ executionArn: 'not-an-arn' })), 'InvalidArn');
    await assert.rejects(sfn.call('RedriveExecution', {}), { code: 'ValidationException' });
  });
});

describe('local Step Functions definitions', () => {
  test('refuses what it cannot run faithfully, with the reason', () => {
    const local = new LocalStepFunctions({ dynamoDbEndpoint: dynamo.endpoint });
    const variant = (change: (states: Record<string, Record<string, unknown>>) => void) => {
      const definition = JSON.parse(ASL) as { States: Record<string, Record<string, unknown>> };
      change(definition.States);
      return () => local.addStateMachine('bad', definition, SUBSTITUTIONS);
    };
    const send = {
      Type: 'Task',
      Resource: 'arn:aws:states:::sqs:sendMessage',
      Parameters: { QueueUrl: 'https://q/000000000000/q', MessageBody: 'x' },
      End: true,
    };
    const cases: [(states: Record<string, Record<string, unknown>>) => void, RegExp][] = [
      [(s) => Object.assign(s, { Approved: { Type: 'Wait', Seconds: 1, End: true } }), /Wait states/],
      [
        (s) => Object.assign(s.Notify!, { Resource: 'arn:aws:states:::sns:publish' }),
        /Resource arn:aws:states:::sns:publish/,
      ],
      [(s) => Object.assign(s.Notify!, { HeartbeatSeconds: 10 }), /HeartbeatSeconds/],
      [(s) => Object.assign(s.Notify!.Parameters as object, { InvocationType: 'Event' }), /parameter InvocationType/],
      [(s) => Object.assign(s.Notify!, { Retry: [{ ErrorEquals: ['States.TaskFailed'] }] }), /States\.TaskFailed/],
      // Without a local SQS, sqs:sendMessage cannot run.
      [(s) => Object.assign(s, { Expired: send }), /needs the local SQS/],
    ];
    for (const [change, reason] of cases) assert.throws(variant(change), reason);
  });

  test('refuses unsubstituted placeholders and callback tasks without a timeout', () => {
    const local = new LocalStepFunctions({ dynamoDbEndpoint: dynamo.endpoint });
    assert.throws(() => local.addStateMachine('bad', ASL, { TableName: TABLE }), /\$\{FixtureFunctionArn\}/);
    const definition = JSON.parse(ASL) as { States: { Notify: Record<string, unknown> } };
    delete definition.States.Notify.TimeoutSecondsPath;
    assert.throws(() => local.addStateMachine('bad', definition, SUBSTITUTIONS), /needs TimeoutSeconds/);
  });
});

describe('local Step Functions restarts on a data dir: running executions resume', () => {
  /** A service on `dataDir` with the test workflow; `fixture` stands in for the Lambda function. */
  function service(
    dataDir: string,
    fixture: (event: FixtureEvent) => Promise<unknown> = fixtureFunction,
    retain?: number,
  ) {
    const local = new LocalStepFunctions({
      dynamoDbEndpoint: dynamo.endpoint,
      dataDir,
      log: () => {},
      ...(retain ? { retainExecutions: retain } : {}),
    });
    local.registerFunction('fixture', (event) => fixture(event as FixtureEvent));
    const arn = local.addStateMachine('restart', ASL, SUBSTITUTIONS);
    return { local, arn };
  }
  async function withDataDir(fn: (dataDir: string) => Promise<void>): Promise<void> {
    const dataDir = await mkdtemp(join(tmpdir(), 'local-sfn-'));
    try {
      await fn(dataDir);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }
  const start = (local: LocalStepFunctions, arn: string, id: string, timeout: number) =>
    local.call('StartExecution', {
      stateMachineArn: arn,
      name: id,
      input: JSON.stringify({ id, mode: 'wait', timeout }),
    });
  /** One turn of the event loop: the task's work after the function returned (journaling the wait) is done. */
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  const entered = (local: LocalStepFunctions, arn: string) =>
    local
      .history(arn)
      .filter((e) => e.type === 'StateEntered')
      .map((e) => e.stateName);

  test('a waiting callback waits on with the same task token; a later SendTaskSuccess drives it on', async () => {
    await withDataDir(async (dataDir) => {
      const first = service(dataDir);
      const id = `resume-wait-${Date.now()}`;
      const { executionArn, startDate } = await start(first.local, first.arn, id, 30);
      const { taskToken } = await invocation(id);
      await settle();
      await first.local.close();

      const second = service(dataDir);
      const running = second.local.describe(id);
      assert.equal(running?.status, 'RUNNING');
      assert.equal(running.executionArn, executionArn);
      assert.equal(running.startDate, (startDate as number) * 1000);
      await second.local.call('SendTaskSuccess', { taskToken, output: '{"decision":"approved"}' });
      const rec = await second.local.waitForStatus(id, 'SUCCEEDED', 5000);
      assert.deepEqual(JSON.parse(rec.output!).decision, { decision: 'approved' });
      assert.equal(invocations(id).length, 1, 'the function was not invoked again');
      const history = second.local.history(executionArn as string);
      assert.deepEqual(
        history.map((e) => e.type),
        ['ExecutionStarted', 'StateEntered', 'StateExited', 'StateEntered', 'StateExited', 'ExecutionSucceeded'],
      );
      assert.deepEqual(
        history.map((e) => e.id),
        [1, 2, 3, 4, 5, 6],
      );
      await second.local.close();
      const third = service(dataDir);
      assert.equal(third.local.describe(id)?.status, 'SUCCEEDED', 'the end is journaled too');
      assert.equal(third.local.history(executionArn as string).length, 6);
      await third.local.close();
    });
  });

  test('a timeout that elapsed while stopped fires at once: the Catch path for States.Timeout runs', async () => {
    await withDataDir(async (dataDir) => {
      const first = service(dataDir);
      const id = `resume-expired-${Date.now()}`;
      const key = { pk: { S: `REQ#${id}` }, sk: { S: 'REQ' } };
      await ddb.send(new PutItemCommand({ TableName: TABLE, Item: { ...key, status: { S: 'pending' } } }));
      await start(first.local, first.arn, id, 1);
      const { taskToken } = await invocation(id);
      await settle();
      await first.local.close();
      await new Promise((resolve) => setTimeout(resolve, 1100)); // the service is down while the timeout passes

      const second = service(dataDir);
      const rec = await second.local.waitForStatus(id, 'SUCCEEDED', 5000);
      assert.deepEqual(entered(second.local, rec.executionArn), ['Notify', 'RecordExpiry', 'Expired']);
      assert.equal((await ddb.send(new GetItemCommand({ TableName: TABLE, Key: key }))).Item?.status?.S, 'expired');
      assert.ok(
        second.local.history(rec.executionArn).some((e) => e.type === 'StateFailed' && e.error === 'States.Timeout'),
      );
      await assert.rejects(second.local.call('SendTaskSuccess', { taskToken, output: '{}' }), { code: 'TaskTimedOut' });
      await second.local.close();
    });
  });

  test('a task interrupted mid-call runs again (at least once), with a new token', async () => {
    await withDataDir(async (dataDir) => {
      let firstToken = '';
      // The first process's function never returns: the service stops while it runs.
      const first = service(dataDir, (event) => {
        firstToken = event.taskToken;
        return new Promise(() => {});
      });
      const id = `resume-rerun-${Date.now()}`;
      await start(first.local, first.arn, id, 30);
      while (!firstToken) await settle();
      await first.local.close(10);

      const second = service(dataDir);
      const { taskToken } = await invocation(id);
      assert.notEqual(taskToken, firstToken);
      await assert.rejects(second.local.call('SendTaskSuccess', { taskToken: firstToken, output: '{}' }), {
        code: 'TaskDoesNotExist',
      });
      await second.local.call('SendTaskSuccess', { taskToken, output: '{}' });
      const rec = await second.local.waitForStatus(id, 'SUCCEEDED', 5000);
      assert.deepEqual(entered(second.local, rec.executionArn), ['Notify', 'Approved']);
      await second.local.close();
    });
  });

  test('a redriven execution is journaled: after a restart it waits on in the state it was redriven into', async () => {
    await withDataDir(async (dataDir) => {
      const make = () => {
        const local = new LocalStepFunctions({ dynamoDbEndpoint: dynamo.endpoint, dataDir, log: () => {} });
        local.registerFunction('fixture', (event) => fixtureFunction(event as FixtureEvent));
        return { local, arn: local.addStateMachine('redrive-restart', uncaughtDefinition(), SUBSTITUTIONS) };
      };
      const first = make();
      const id = `redrive-restart-${Date.now()}`;
      const { executionArn } = await start(first.local, first.arn, id, 30);
      const failing = await nthInvocation(id, 1);
      await first.local.call('SendTaskFailure', { taskToken: failing.taskToken, error: 'Delivery.Exhausted' });
      await first.local.waitForStatus(id, 'FAILED', 5000);
      await first.local.call('RedriveExecution', { executionArn });
      const waiting = await nthInvocation(id, 2);
      await settle();
      await first.local.close();

      const second = make();
      const running = second.local.describe(id);
      assert.equal(running?.status, 'RUNNING');
      assert.equal(running.redriveCount, 1);
      await second.local.call('SendTaskSuccess', { taskToken: waiting.taskToken, output: '{}' });
      await second.local.waitForStatus(id, 'SUCCEEDED', 5000);
      assert.equal(invocations(id).length, 2, 'the redriven task was not run a third time');
      assert.deepEqual(entered(second.local, executionArn as string), ['Notify', 'Notify', 'Approved']);
      assert.equal(
        second.local.history(executionArn as string).filter((e) => e.type === 'ExecutionRedriven').length,
        1,
      );
      await second.local.close();
    });
  });

  test('the journal is compacted on start; the newest `retainExecutions` terminal executions are kept', async () => {
    await withDataDir(async (dataDir) => {
      const first = service(dataDir, fixtureFunction, 2);
      const ids = [1, 2, 3].map((n) => `retain-${n}-${Date.now()}`);
      for (const id of ids) {
        await start(first.local, first.arn, id, 30);
        await first.local.call('SendTaskSuccess', { taskToken: (await invocation(id)).taskToken, output: '{}' });
        await first.local.waitForStatus(id, 'SUCCEEDED', 5000);
      }
      const running = `retain-running-${Date.now()}`;
      await start(first.local, first.arn, running, 30);
      await invocation(running);
      await settle();
      assert.equal(first.local.describe(ids[0]!), undefined, 'the oldest terminal execution is forgotten');
      await first.local.close();

      const second = service(dataDir, fixtureFunction, 2);
      assert.deepEqual(
        second.local.executions().map((e) => [e.name, e.status]),
        [
          [ids[1], 'SUCCEEDED'],
          [ids[2], 'SUCCEEDED'],
          [running, 'RUNNING'],
        ],
      );
      const lines = readFileSync(join(dataDir, 'stepfunctions.jsonl'), 'utf8').trim().split('\n');
      assert.equal(lines.length, 3, 'one snapshot line per execution');
      assert.equal(
        second.local.history(second.local.describe(ids[2]!)!.executionArn).at(-1)?.type,
        'ExecutionSucceeded',
      );
      await second.local.close();
    });
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
      JSON.stringify({
        type: 'ciba.authentication_request',
        requestId: 'r1',
        sub: 'alice',
        clientId: 'pos',
        clientName: 'Store POS',
        bindingMessage: 'X7-42',
        scope: 'openid',
        expiresAt: 1300,
      }),
      1_000_000,
    );
    assert.equal(
      line,
      '📱 alice: "Store POS" asks to sign you in — binding message: "X7-42", scope: openid (expires in 300 s) → approve with: npm run demo -- approve r1',
    );
    assert.equal(formatDeviceNotification('not json'), undefined);
    // On another port the printed command names it, so it works as written.
    const onPort = formatDeviceNotification(
      JSON.stringify({ requestId: 'r2', sub: 'bob' }),
      0,
      'PORT=9123 npm run demo',
    );
    assert.match(String(onPort), /→ approve with: PORT=9123 npm run demo -- approve r2$/);
  });
});

// The local SQS service driven through the real @aws-sdk/client-sqs over the local AWS endpoint, its persistence,
// and the Step Functions `sqs:sendMessage` integration.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  MessageNotInflight,
  QueueDoesNotExist,
  ReceiptHandleIsInvalid,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/dynamodb.ts';
import { LocalSqs, SqsError } from '../../local/sqs.ts';
import { LocalStepFunctions } from '../../local/stepfunctions.ts';
import { startAwsEndpoint } from '../../local/aws-endpoint.ts';
import type { AwsEndpoint } from '../../local/aws-endpoint.ts';

let sqs: LocalSqs;
let endpoint: AwsEndpoint;
let client: SQSClient;
let counter = 0;

before(async () => {
  sqs = new LocalSqs({ dataDir: null, log: () => {} });
  endpoint = await startAwsEndpoint({ sqs, log: () => {} });
  client = new SQSClient({ endpoint: endpoint.url, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
});

after(async () => {
  client.destroy();
  await endpoint.close();
});

/** A fresh queue for one test; returns its URL. */
function freshQueue(): string {
  return sqs.createQueue(`q-${++counter}`).url;
}

/** Visible and in-flight messages, peeked in-process. */
function counts(queueUrl: string): { visible: number; inFlight: number } {
  const states = sqs.messages(queueUrl).map((m) => m.state);
  return {
    visible: states.filter((s) => s === 'visible').length,
    inFlight: states.filter((s) => s === 'in-flight').length,
  };
}

describe('local SQS over the SQS SDK', () => {
  test('queue URLs are on the endpoint; createQueue is idempotent', () => {
    const created = sqs.createQueue('listed-queue');
    assert.deepEqual(sqs.createQueue('listed-queue'), created);
    assert.equal(created.url, `${endpoint.url}/000000000000/listed-queue`);
    assert.equal(created.arn, 'arn:aws:sqs:us-east-1:000000000000:listed-queue');
  });

  test('send, receive (the MD5s match), invisible while in flight', async () => {
    const queueUrl = freshQueue();
    const body = 'héllo wörld ✓';
    const sent = await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
    assert.equal(sent.MD5OfMessageBody, createHash('md5').update(body, 'utf8').digest('hex'));
    assert.deepEqual(counts(queueUrl), { visible: 1, inFlight: 0 });

    const first = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        VisibilityTimeout: 60,
        AttributeNames: ['All'],
        MaxNumberOfMessages: 10,
      }),
    );
    assert.equal(first.Messages?.length, 1);
    const message = first.Messages![0]!;
    assert.equal(message.MessageId, sent.MessageId);
    assert.equal(message.Body, body);
    assert.equal(message.MD5OfBody, sent.MD5OfMessageBody);
    assert.equal(message.Attributes?.ApproximateReceiveCount, '1');
    assert.match(message.Attributes?.SentTimestamp ?? '', /^\d{13}$/);
    assert.match(message.Attributes?.ApproximateFirstReceiveTimestamp ?? '', /^\d{13}$/);

    // In flight for 60 s: not received again.
    assert.equal((await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl }))).Messages, undefined);
    assert.deepEqual(counts(queueUrl), { visible: 0, inFlight: 1 });
    assert.equal(sqs.messages(queueUrl)[0]?.state, 'in-flight');
  });

  test('message attributes round trip with the MD5 SQS computes', async () => {
    const queueUrl = freshQueue();
    const attributes = {
      kind: { DataType: 'String', StringValue: 'dead-letter' },
      attempts: { DataType: 'Number', StringValue: '3' },
      raw: { DataType: 'Binary', BinaryValue: new Uint8Array([1, 2, 3, 250]) },
    };
    const sent = await client.send(
      new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: '{}', MessageAttributes: attributes }),
    );
    assert.equal(
      sent.MD5OfMessageAttributes,
      expectedMd5([
        ['attempts', 'Number', 1, Buffer.from('3')],
        ['kind', 'String', 1, Buffer.from('dead-letter')],
        ['raw', 'Binary', 2, Buffer.from([1, 2, 3, 250])],
      ]),
    );
    const none = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, VisibilityTimeout: 0 }));
    assert.equal(none.Messages?.[0]?.MessageAttributes, undefined, 'attributes only when asked for');
    const { Messages } = await client.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MessageAttributeNames: ['All'] }),
    );
    const got = Messages![0]!;
    assert.equal(got.MD5OfMessageAttributes, sent.MD5OfMessageAttributes);
    assert.deepEqual(got.MessageAttributes?.kind, { DataType: 'String', StringValue: 'dead-letter' });
    assert.deepEqual(got.MessageAttributes?.attempts, { DataType: 'Number', StringValue: '3' });
    assert.deepEqual([...(got.MessageAttributes?.raw?.BinaryValue ?? [])], [1, 2, 3, 250]);
  });

  test('errors: unknown queue, too-long message, invalid parameter, unsupported operation', async () => {
    const queueUrl = freshQueue();
    const missing = `${endpoint.url}/000000000000/no-such-queue`;
    await assert.rejects(client.send(new SendMessageCommand({ QueueUrl: missing, MessageBody: 'x' })), (err: Error) => {
      assert.ok(err instanceof QueueDoesNotExist, err.name);
      assert.equal(err.name, 'QueueDoesNotExist');
      assert.equal((err as Error & { Code?: string }).Code, 'AWS.SimpleQueueService.NonExistentQueue');
      return true;
    });
    await assert.rejects(
      client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'x'.repeat(256 * 1024 + 1) })),
      {
        name: 'InvalidParameterValue',
        message: /shorter than 262144 bytes/,
      },
    );
    await assert.rejects(client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 11 })), {
      name: 'InvalidParameterValue',
    });
    const reply = sqs.handleHttp('AmazonSQS.DeleteQueue', JSON.stringify({ QueueUrl: queueUrl }));
    assert.equal(reply.status, 400);
    assert.equal(JSON.parse(reply.body).__type, 'com.amazonaws.sqs#UnsupportedOperation');
    // In-process: the ARN addresses the queue too.
    assert.throws(
      () => sqs.sendMessage('arn:aws:sqs:us-east-1:000000000000:no-such-queue', 'x'),
      (err: Error) => err instanceof SqsError && err.code === 'QueueDoesNotExist',
    );
    sqs.sendMessage(sqs.queueArn(`q-${counter}`), 'by arn');
    assert.equal(sqs.messages(`q-${counter}`).at(-1)?.body, 'by arn');
  });

  test('DeleteMessage: the latest receipt handle deletes; an older one and a repeat are accepted and delete nothing', async () => {
    const queueUrl = freshQueue();
    await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'dead letter' }));
    const receive = async () =>
      (await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, VisibilityTimeout: 60 }))).Messages?.[0];
    const first = await receive();
    assert.ok(first?.ReceiptHandle);
    // Visible again, received again: a new handle, and the first one no longer deletes (as on AWS).
    await client.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queueUrl,
        ReceiptHandle: first.ReceiptHandle,
        VisibilityTimeout: 0,
      }),
    );
    const second = await receive();
    assert.ok(second?.ReceiptHandle);
    assert.notEqual(second.ReceiptHandle, first.ReceiptHandle);
    assert.equal(second.MessageId, first.MessageId);
    await client.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: first.ReceiptHandle }));
    assert.equal(sqs.messages(queueUrl).length, 1, 'an outdated handle deletes nothing');
    await client.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: second.ReceiptHandle }));
    assert.equal(sqs.messages(queueUrl).length, 0);
    // Deleting again: accepted (the message is gone already).
    await client.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: second.ReceiptHandle }));
  });

  test('ChangeMessageVisibility: 0 makes a message receivable at once; a longer timeout keeps it hidden', async () => {
    const queueUrl = freshQueue();
    await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'one' }));
    const got = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, VisibilityTimeout: 1 }));
    const handle = got.Messages![0]!.ReceiptHandle!;
    await client.send(
      new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: handle, VisibilityTimeout: 600 }),
    );
    const inFlight = sqs.messages(queueUrl)[0]!;
    assert.equal(inFlight.state, 'in-flight');
    assert.ok(inFlight.visibleAt! > Date.now() + 590_000, 'the new timeout counts from the call');
    await client.send(
      new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: handle, VisibilityTimeout: 0 }),
    );
    assert.deepEqual(counts(queueUrl), { visible: 1, inFlight: 0 });
    const again = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, AttributeNames: ['All'] }));
    assert.equal(again.Messages?.[0]?.Attributes?.ApproximateReceiveCount, '2');
  });

  test('DeleteMessage and ChangeMessageVisibility are validated as AWS does', async () => {
    const queueUrl = freshQueue();
    const otherUrl = freshQueue();
    await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'x' }));
    const handle = (await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, VisibilityTimeout: 60 })))
      .Messages![0]!.ReceiptHandle!;
    const invalidHandle = (err: Error) => {
      assert.ok(err instanceof ReceiptHandleIsInvalid, err.name);
      assert.equal((err as Error & { Code?: string }).Code, 'ReceiptHandleIsInvalid');
      return true;
    };
    // A handle this service never made, or one of another queue.
    await assert.rejects(
      client.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: 'not-a-handle' })),
      invalidHandle,
    );
    await assert.rejects(
      client.send(new DeleteMessageCommand({ QueueUrl: otherUrl, ReceiptHandle: handle })),
      invalidHandle,
    );
    await assert.rejects(
      client.send(
        new ChangeMessageVisibilityCommand({ QueueUrl: otherUrl, ReceiptHandle: handle, VisibilityTimeout: 0 }),
      ),
      invalidHandle,
    );
    // Missing parameters, a timeout out of range, an unknown queue.
    await assert.rejects(client.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: '' })), {
      name: 'MissingParameter',
    });
    assert.equal(
      JSON.parse(
        sqs.handleHttp(
          'AmazonSQS.ChangeMessageVisibility',
          JSON.stringify({ QueueUrl: queueUrl, ReceiptHandle: handle }),
        ).body,
      ).__type,
      'com.amazon.coral.service#MissingParameterException',
    );
    await assert.rejects(
      client.send(
        new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: handle, VisibilityTimeout: 43_201 }),
      ),
      { name: 'InvalidParameterValue', message: /between 0 and 43200/ },
    );
    await assert.rejects(
      client.send(
        new DeleteMessageCommand({ QueueUrl: `${endpoint.url}/000000000000/no-such-queue`, ReceiptHandle: handle }),
      ),
      (err: Error) => err instanceof QueueDoesNotExist,
    );
    // Not in flight any more: MessageNotInflight; deleted: the handle has expired for ChangeMessageVisibility.
    await client.send(
      new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: handle, VisibilityTimeout: 0 }),
    );
    await assert.rejects(
      client.send(
        new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: handle, VisibilityTimeout: 0 }),
      ),
      (err: Error) => {
        assert.ok(err instanceof MessageNotInflight, err.name);
        assert.equal((err as Error & { Code?: string }).Code, 'AWS.SimpleQueueService.MessageNotInflight');
        return true;
      },
    );
    await client.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: handle }));
    await assert.rejects(
      client.send(
        new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: handle, VisibilityTimeout: 0 }),
      ),
      { name: 'InvalidParameterValue', message: /receipt handle has expired/ },
    );
  });
});

describe('local SQS persistence', () => {
  test('messages (in flight or not) survive a new instance on the same data dir', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'local-sqs-'));
    try {
      const first = new LocalSqs({ dataDir, log: () => {} });
      const { url } = first.createQueue('dlq');
      first.sendMessage(url, 'one', { kind: { DataType: 'String', StringValue: 'x' } });
      first.sendMessage(url, 'two');
      first.call('ReceiveMessage', { QueueUrl: url, VisibilityTimeout: 600 });

      const second = new LocalSqs({ dataDir, log: () => {} });
      const messages = second.messages('dlq');
      assert.deepEqual(
        messages.map((m) => [m.body, m.state, m.receiveCount]),
        [
          ['one', 'in-flight', 1],
          ['two', 'visible', 0],
        ],
      );
      assert.deepEqual(messages[0]?.messageAttributes, { kind: { DataType: 'String', StringValue: 'x' } });
      assert.deepEqual(second.createQueue('dlq'), { url, arn: second.queueArn('dlq') });
      assert.equal(second.messages('dlq').length, 2, 'createQueue keeps the messages');
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('Step Functions sqs:sendMessage integration', () => {
  const definition = {
    StartAt: 'DeadLetter',
    States: {
      DeadLetter: {
        Type: 'Task',
        Resource: 'arn:aws:states:::sqs:sendMessage',
        Parameters: {
          QueueUrl: '${QueueUrl}',
          MessageBody: { 'requestId.$': '$.requestId', attempts: 3, 'execution.$': '$$.Execution.Name' },
          MessageAttributes: { kind: { DataType: 'String', StringValue: 'delivery' } },
        },
        ResultPath: '$.sent',
        Catch: [
          { ErrorEquals: ['SQS.QueueDoesNotExistException'], ResultPath: '$.error', Next: 'NoQueue' },
          { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Other' },
        ],
        End: true,
      },
      NoQueue: { Type: 'Pass', Result: 'no-queue', ResultPath: '$.caught', End: true },
      Other: { Type: 'Pass', Result: 'other', ResultPath: '$.caught', End: true },
    },
  };
  let sfn: LocalStepFunctions;

  before(() => {
    sfn = new LocalStepFunctions({ sqs, log: () => {} });
  });

  after(async () => {
    await sfn.close();
  });

  test('sends the JSON text of an object MessageBody; the result is {MessageId, MD5OfMessageBody, …}', async () => {
    const { url } = sqs.createQueue('sfn-dlq');
    const arn = sfn.addStateMachine('sqs-ok', definition, { QueueUrl: url });
    await sfn.call('StartExecution', {
      stateMachineArn: arn,
      name: 'sqs-ok-1',
      input: JSON.stringify({ requestId: 'req-1' }),
    });
    const rec = await sfn.waitForStatus('sqs-ok-1', 'SUCCEEDED', 5000);
    const [message] = sqs.messages('sfn-dlq');
    assert.equal(message?.body, '{"requestId":"req-1","attempts":3,"execution":"sqs-ok-1"}');
    assert.deepEqual(message?.messageAttributes, { kind: { DataType: 'String', StringValue: 'delivery' } });
    const output = JSON.parse(rec.output ?? '{}') as { sent: Record<string, string> };
    assert.deepEqual(Object.keys(output.sent).sort(), ['MD5OfMessageAttributes', 'MD5OfMessageBody', 'MessageId']);
    assert.equal(output.sent.MessageId, message?.messageId);
    assert.equal(output.sent.MD5OfMessageBody, message?.md5OfBody);
  });

  test('an unknown queue fails the task with SQS.QueueDoesNotExistException (catchable)', async () => {
    const arn = sfn.addStateMachine('sqs-missing', definition, {
      QueueUrl: 'https://sqs.us-east-1.amazonaws.com/000000000000/missing',
    });
    await sfn.call('StartExecution', {
      stateMachineArn: arn,
      name: 'sqs-missing-1',
      input: JSON.stringify({ requestId: 'req-2' }),
    });
    const rec = await sfn.waitForStatus('sqs-missing-1', 'SUCCEEDED', 5000);
    const output = JSON.parse(rec.output ?? '{}') as { caught: string; error: { Error: string; Cause: string } };
    assert.equal(output.caught, 'no-queue');
    assert.equal(output.error.Error, 'SQS.QueueDoesNotExistException');
    assert.match(output.error.Cause, /Error Code: AWS\.SimpleQueueService\.NonExistentQueue/);
  });

  test('other errors: SQS.AmazonSQSException (missing body), SQS.SdkClientException (not a URL); refused without a local SQS', async () => {
    const { url } = sqs.createQueue('sfn-errors');
    const noBody = structuredClone(definition) as { States: { DeadLetter: { Parameters: Record<string, unknown> } } };
    noBody.States.DeadLetter.Parameters['MessageBody.$'] = '$.nothing';
    delete noBody.States.DeadLetter.Parameters.MessageBody;
    const arn = sfn.addStateMachine('sqs-no-body', noBody, { QueueUrl: url });
    await sfn.call('StartExecution', {
      stateMachineArn: arn,
      name: 'sqs-no-body-1',
      input: JSON.stringify({ nothing: null }),
    });
    const rec = JSON.parse((await sfn.waitForStatus('sqs-no-body-1', 'SUCCEEDED', 5000)).output ?? '{}') as {
      error: { Error: string; Cause: string };
    };
    assert.equal(rec.error.Error, 'SQS.AmazonSQSException');
    assert.match(rec.error.Cause, /Error Code: MissingParameter/);

    const notUrl = sfn.addStateMachine('sqs-not-url', definition, { QueueUrl: 'sfn-errors' });
    await sfn.call('StartExecution', {
      stateMachineArn: notUrl,
      name: 'sqs-not-url-1',
      input: JSON.stringify({ requestId: 'r' }),
    });
    const rec2 = JSON.parse((await sfn.waitForStatus('sqs-not-url-1', 'SUCCEEDED', 5000)).output ?? '{}') as {
      error: { Error: string };
    };
    assert.equal(rec2.error.Error, 'SQS.SdkClientException');
    assert.deepEqual(sqs.messages('sfn-errors'), []);

    assert.throws(
      () => new LocalStepFunctions({ log: () => {} }).addStateMachine('no-sqs', definition, { QueueUrl: url }),
      /needs the local SQS/,
    );
  });
});

/**
 * MD5OfMessageAttributes per the SQS developer guide: sorted by name; length-prefixed name, type; transport byte;
 * length-prefixed value.
 */
function expectedMd5(entries: [string, string, number, Buffer][]): string {
  const hash = createHash('md5');
  const field = (b: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    hash.update(len).update(b);
  };
  for (const [name, type, transport, value] of entries) {
    field(Buffer.from(name));
    field(Buffer.from(type));
    hash.update(Buffer.from([transport]));
    field(value);
  }
  return hash.digest('hex');
}

// The local stack's in-process transport (local/inprocess.ts): the real AWS SDK clients reach dynalite and the local
// AWS endpoint without TCP and without SigV4, with the same requests, replies and errors; and the bounded SNS log.
// Also the document client of functions/adapters/store/table.ts, whose handlers are resolved once per command class.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { NotFoundException, PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { SNSEvent } from 'aws-lambda';
import { LOCAL_CREDENTIALS, LOCAL_REGION, startLocalDynamoDb } from '../../local/dynamodb.ts';
import type { LocalDynamoDb } from '../../local/dynamodb.ts';
import { startAwsEndpoint } from '../../local/aws-endpoint.ts';
import type { AwsEndpoint } from '../../local/aws-endpoint.ts';
import { LocalSns } from '../../local/sns.ts';
import { LOCAL_AUTHORIZATION, useInProcess, type LocalHttpRequest, type LocalService } from '../../local/inprocess.ts';
import { setLocalClientSetup } from '../../functions/adapters/aws.ts';

const TABLE = 'local-inprocess-test';
let dynamo: LocalDynamoDb;
let sns: LocalSns;
let aws: AwsEndpoint;

before(async () => {
  dynamo = await startLocalDynamoDb({ tableName: TABLE });
  sns = new LocalSns({ retainMessages: 3 });
  aws = await startAwsEndpoint({ sns });
});
after(async () => {
  await aws.close();
  await dynamo.close();
});

const clientConfig = { region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 };

describe('in-process transport', () => {
  test('DynamoDB through dynalite in-process: items, conditions and their errors as over HTTP', async () => {
    assert.ok(dynamo.service, 'dynalite offers its handler in-process');
    const client = new DynamoDBClient({ ...clientConfig, endpoint: 'http://127.0.0.1:9' }); // never dialled
    useInProcess(client, () => dynamo.service);
    const Key = { pk: { S: 'A#1' }, sk: { S: 'X' } };
    await client.send(new PutItemCommand({ TableName: TABLE, Item: { ...Key, n: { N: '1' } } }));
    await assert.rejects(
      client.send(new PutItemCommand({ TableName: TABLE, Item: Key, ConditionExpression: 'attribute_not_exists(pk)' })),
      (err: unknown) => err instanceof ConditionalCheckFailedException,
    );
    const updated = await client.send(
      new UpdateItemCommand({
        TableName: TABLE,
        Key,
        UpdateExpression: 'ADD #n :one',
        ExpressionAttributeNames: { '#n': 'n' },
        ExpressionAttributeValues: { ':one': { N: '1' } },
        ReturnValues: 'ALL_NEW',
      }),
    );
    assert.equal(updated.Attributes?.n?.N, '2');
    assert.equal(updated.$metadata.httpStatusCode, 200);
    // The same item over HTTP, with SigV4 (dynalite's listener is still up for other clients).
    const http = new DynamoDBClient({ ...clientConfig, endpoint: dynamo.endpoint });
    assert.equal((await http.send(new GetItemCommand({ TableName: TABLE, Key }))).Item?.n?.N, '2');
    http.destroy();
  });

  test('SNS through the AWS endpoint in-process: Publish reaches the subscriber; errors keep their names', async () => {
    const topicArn = sns.createTopic('inprocess');
    const received: SNSEvent[] = [];
    sns.subscribe(topicArn, async (event) => void received.push(event));
    const client = new SNSClient({ ...clientConfig, endpoint: 'http://127.0.0.1:9' });
    useInProcess(client, () => aws.serve);
    const out = await client.send(new PublishCommand({ TopicArn: topicArn, Message: 'hello' }));
    await sns.drain();
    assert.equal(received[0]?.Records[0]?.Sns.MessageId, out.MessageId);
    await assert.rejects(
      client.send(new PublishCommand({ TopicArn: `${topicArn}-missing`, Message: 'x' })),
      (err: unknown) => err instanceof NotFoundException,
    );
  });

  test('a closed stack: calls fail as a refused connection would', async () => {
    let service: LocalService | undefined;
    const client = new SNSClient({ ...clientConfig, endpoint: 'http://127.0.0.1:9' });
    useInProcess(client, () => service);
    await assert.rejects(client.send(new PublishCommand({ TopicArn: 'arn:x', Message: 'x' })), /ECONNREFUSED/);
  });

  test('the SNS message log keeps the newest `retainMessages`', () => {
    const topicArn = sns.createTopic('retained');
    for (let i = 0; i < 5; i++) sns.publish({ topicArn, message: `m${i}` });
    assert.deepEqual(
      sns.messages().map((m) => m.message),
      ['m2', 'm3', 'm4'],
    );
  });

  test('an in-process client resolves no endpoint and no credentials, and sends the request it would have signed', async () => {
    const seen: LocalHttpRequest[] = [];
    const service: LocalService = async (request) => {
      seen.push(request);
      return { status: 200, headers: { 'content-type': 'application/x-amz-json-1.0' }, body: '{}' };
    };
    let resolved = 0;
    const credentials = async () => {
      resolved++;
      return LOCAL_CREDENTIALS;
    };
    const client = new DynamoDBClient({ region: LOCAL_REGION, credentials, endpoint: 'http://127.0.0.1:9/' });
    useInProcess(client, () => service);
    await client.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'A' }, sk: { S: 'X' } } }));
    assert.equal(resolved, 0, 'the auth scheme middleware is pruned: no credentials are resolved');
    const [request] = seen;
    assert.equal(request?.method, 'POST');
    assert.equal(request?.path, '/');
    assert.equal(request?.headers.authorization, LOCAL_AUTHORIZATION);
    assert.match(request?.headers['x-amz-date'] ?? '', /^\d{8}T\d{6}Z$/);
    assert.equal(request?.headers['x-amz-target'], 'DynamoDB_20120810.GetItem');
    assert.equal(request?.body, JSON.stringify({ TableName: TABLE, Key: { pk: { S: 'A' }, sk: { S: 'X' } } }));
    // SQS places its queue URL middleware after the endpoint middleware: its chain stays whole, signed by LOCAL_SIGNER.
    const sqs = new SQSClient({ region: LOCAL_REGION, credentials, endpoint: 'http://127.0.0.1:9/' });
    useInProcess(sqs, () => async (request) => {
      seen.push(request);
      return {
        status: 200,
        headers: { 'content-type': 'application/x-amz-json-1.0' },
        body: JSON.stringify({ MessageId: '1', MD5OfMessageBody: '5d41402abc4b2a76b9719d911017c592' }),
      };
    });
    await sqs.send(new SendMessageCommand({ QueueUrl: 'http://127.0.0.1:9/000000000000/q', MessageBody: 'hello' }));
    assert.equal(resolved, 1);
    assert.equal(seen[1]?.headers.authorization, LOCAL_AUTHORIZATION);
  });

  test('the document client (store/table.ts) resolves each command class once, yet each call sends its own input', async () => {
    process.env.AWS_REGION ??= LOCAL_REGION;
    setLocalClientSetup((client) => useInProcess(client, () => dynamo.service));
    try {
      const { db } = await import('../../functions/adapters/store/table.ts');
      const ids = Array.from({ length: 12 }, (_, i) => `doc-${i}`);
      const item = (id: string) => ({ pk: `D#${id}`, sk: 'X', id, gsi1pk: 'DOCS', gsi1sk: id });
      await Promise.all(ids.map((id) => db().send(new PutCommand({ TableName: TABLE, Item: item(id) }))));
      const got = await Promise.all(
        ids.map((id) => db().send(new GetCommand({ TableName: TABLE, Key: { pk: `D#${id}`, sk: 'X' } }))),
      );
      assert.deepEqual(
        got.map((out) => out.Item?.id),
        ids,
      );
      const updated = await Promise.all(
        ids.map((id, n) =>
          db().send(
            new UpdateCommand({
              TableName: TABLE,
              Key: { pk: `D#${id}`, sk: 'X' },
              UpdateExpression: 'SET n = :n',
              ConditionExpression: 'attribute_exists(pk)',
              ExpressionAttributeValues: { ':n': n },
              ReturnValues: 'ALL_NEW',
            }),
          ),
        ),
      );
      assert.deepEqual(
        updated.map((out) => [out.Attributes?.id, out.Attributes?.n]),
        ids.map((id, n) => [id, n]),
      );
      await assert.rejects(
        db().send(
          new UpdateCommand({
            TableName: TABLE,
            Key: { pk: 'D#missing', sk: 'X' },
            UpdateExpression: 'SET n = :n',
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeValues: { ':n': 1 },
          }),
        ),
        (err: unknown) => err instanceof ConditionalCheckFailedException,
      );
      const listed = await db().send(
        new QueryCommand({
          TableName: TABLE,
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :g',
          ExpressionAttributeValues: { ':g': 'DOCS' },
        }),
      );
      assert.deepEqual(listed.Items?.map((i) => i.id).sort(), [...ids].sort());
    } finally {
      setLocalClientSetup(undefined);
    }
  });
});

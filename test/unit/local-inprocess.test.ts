// The local stack's in-process transport (local/inprocess.ts): the real AWS SDK clients reach dynalite and the local
// AWS endpoint without TCP and without SigV4, with the same requests, replies and errors; and the bounded SNS log.
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
import type { SNSEvent } from 'aws-lambda';
import { LOCAL_CREDENTIALS, LOCAL_REGION, startLocalDynamoDb } from '../../local/dynamodb.ts';
import type { LocalDynamoDb } from '../../local/dynamodb.ts';
import { startAwsEndpoint } from '../../local/aws-endpoint.ts';
import type { AwsEndpoint } from '../../local/aws-endpoint.ts';
import { LocalSns } from '../../local/sns.ts';
import { useInProcess, type LocalService } from '../../local/inprocess.ts';

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
});

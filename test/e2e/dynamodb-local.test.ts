// The poll-flow e2e suite (./poll-flow.test.ts) again, with AWS's own DynamoDB Local instead of dynalite as the
// stack's DynamoDB, so the store's condition and update expressions, the GSI query and ReturnValues are proven on
// the real engine. node --test runs every file in its own process, so importing the suite here registers its tests
// (and its before/after hooks, which start and stop the stack) in this process, after the engine is chosen.
// Only one suite per process: each suite starts its own stack in a root `before` hook with its own settings, and a
// process holds one stack (infra/local/stack.ts); errors.test.ts runs in ./dynamodb-local-errors.test.ts.
// Without `java` on PATH the file is skipped, visibly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DescribeTimeToLiveCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { findJava, LOCAL_CREDENTIALS, LOCAL_REGION } from '../../infra/local/dynamodb.ts';

if (!findJava()) {
  test('poll-flow e2e suite on DynamoDB Local', { skip: 'java not found: no `java` on PATH (DynamoDB Local needs Java 17+)' }, () => {});
} else {
  process.env.CIBA_LOCAL_DYNAMODB = 'dynamodb-local';
  await import('./poll-flow.test.ts');

  // Runs after the suite's tests, before its `after` hook stops the stack.
  test('the suite ran on DynamoDB Local (TTL is enabled on the table; dynalite has no TTL)', async () => {
    const client = new DynamoDBClient({ endpoint: process.env.AWS_ENDPOINT_URL_DYNAMODB!, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    try {
      const out = await client.send(new DescribeTimeToLiveCommand({ TableName: process.env.TABLE_NAME! }));
      assert.deepEqual(out.TimeToLiveDescription, { TimeToLiveStatus: 'ENABLED', AttributeName: 'ttl' });
    } finally {
      client.destroy();
    }
  });
}

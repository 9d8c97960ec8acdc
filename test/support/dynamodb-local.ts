// Runs an e2e suite again on AWS's own DynamoDB Local instead of dynalite (test/e2e/dynamodb-local*.test.ts).
// node --test runs every file in its own process, so importing a suite registers its tests (and its before/after
// hooks, which start and stop the stack) in that process after the engine is chosen. One suite per process: each
// suite starts its own stack in a root `before` hook, and a process holds one stack (local/stack.ts).
// Without `java` on PATH the suite is skipped, visibly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DescribeTimeToLiveCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { findJava, LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/dynamodb.ts';

export async function onDynamoDbLocal(suite: string, load: () => Promise<unknown>): Promise<void> {
  if (!findJava()) {
    test(`${suite} e2e suite on DynamoDB Local`, {
      skip: 'java not found: no `java` on PATH (DynamoDB Local needs Java 17+)',
    }, () => {});
    return;
  }
  process.env.CIBA_LOCAL_DYNAMODB = 'dynamodb-local';
  await load();
  // Runs after the suite's tests, before its `after` hook stops the stack.
  test('the suite ran on DynamoDB Local (TTL is enabled on the table; dynalite has no TTL)', async () => {
    const client = new DynamoDBClient({
      endpoint: process.env.AWS_ENDPOINT_URL_DYNAMODB!,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    try {
      const out = await client.send(new DescribeTimeToLiveCommand({ TableName: process.env.TABLE_NAME! }));
      assert.deepEqual(out.TimeToLiveDescription, { TimeToLiveStatus: 'ENABLED', AttributeName: 'ttl' });
    } finally {
      client.destroy();
    }
  });
}

// The errors e2e suite (./errors.test.ts) again, with AWS's own DynamoDB Local instead of dynalite, in its own
// process: it cannot share ./dynamodb-local.test.ts's process because each suite starts its own stack, with its own
// settings, in a root `before` hook, and a process holds one stack (infra/local/stack.ts). See that file for how
// the import works. Without `java` on PATH the file is skipped, visibly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DescribeTimeToLiveCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { findJava, LOCAL_CREDENTIALS, LOCAL_REGION } from '../../infra/local/dynamodb.ts';

if (!findJava()) {
  test('errors e2e suite on DynamoDB Local', { skip: 'java not found: no `java` on PATH (DynamoDB Local needs Java 17+)' }, () => {});
} else {
  process.env.CIBA_LOCAL_DYNAMODB = 'dynamodb-local';
  await import('./errors.test.ts');

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

// The poll-flow e2e suite again, on AWS's own DynamoDB Local (see test/support/dynamodb-local.ts).
import { onDynamoDbLocal } from '../support/dynamodb-local.ts';

await onDynamoDbLocal('poll-flow', () => import('./poll-flow.test.ts'));

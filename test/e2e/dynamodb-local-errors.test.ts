// The errors e2e suite again, on AWS's own DynamoDB Local (see test/support/dynamodb-local.ts).
import { onDynamoDbLocal } from '../support/dynamodb-local.ts';

await onDynamoDbLocal('errors', () => import('./errors.test.ts'));

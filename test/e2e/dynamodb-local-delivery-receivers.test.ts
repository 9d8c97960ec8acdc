// The delivery-receivers e2e suite again, on AWS's own DynamoDB Local (see test/support/dynamodb-local.ts): the delivery and
// abuse-limit writes (ADD/SET/REMOVE updates, ALL_OLD claims, OR conditions) on the real engine, not only dynalite.
import { onDynamoDbLocal } from '../support/dynamodb-local.ts';

await onDynamoDbLocal('delivery-receivers', () => import('./delivery-receivers.test.ts'));

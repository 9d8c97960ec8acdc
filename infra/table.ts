// The one table definition: CDK (infra/ciba-construct.ts) and the local stack (local/dynamodb.ts) both build from it.
export const TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  /** Epoch seconds; DynamoDB TTL deletes lazily, so every read also checks expiry (docs/architecture.md). */
  ttlAttribute: 'ttl',
  /**
   * Sparse index by user: pending authentication requests (`USERREQ#<sub>`, device API, ops) and devices
   * (`USERDEV#<sub>`, to reach every device of a user).
   */
  userIndex: { name: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
} as const;

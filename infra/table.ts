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
  userIndex: {
    name: 'gsi1',
    partitionKey: 'gsi1pk',
    sortKey: 'gsi1sk',
    /**
     * The attributes the index carries (INCLUDE projection): what the device list, the admin's listings and the
     * dispatcher read. The bookkeeping written on every poll, device call and delivery attempt (polls, next_poll_at,
     * jtis, task tokens, delivery state) is left out, so those writes cost no index write.
     */
    projected: [
      // requests
      'id',
      'client_id',
      'client_name',
      'binding_message',
      'scope',
      'acr_values',
      'authorization_details',
      'created_at',
      'expires_at',
      'status',
      'mode',
      'sub',
      // devices
      'device_id',
      'jwk',
      'name',
      'channel',
    ],
  },
} as const;

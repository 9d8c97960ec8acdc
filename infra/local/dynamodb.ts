// Local DynamoDB: dynalite (a DynamoDB API implementation on LevelDB) running in this process, with the one table
// from infra/table.ts created on start.
//
// Differences from AWS DynamoDB that matter here (see /work/shared/notes/local-emulation.md §2.1):
// - no TTL: UpdateTimeToLive is not implemented and nothing is ever deleted by expiry. The app checks expiry on
//   every read (DESIGN principle 6), so this only means expired rows stay around locally.
// - no transactions (TransactWriteItems/TransactGetItems) and no PartiQL: the app does not use them.
// - ReturnValuesOnConditionCheckFailure is accepted but ignored (no Item in the error).
// - no signature checks, no throttling, no item-collection or capacity accounting.
import { listen } from './listen.ts';
import { createRequire } from 'node:module';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Server } from 'node:http';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceNotFoundException,
} from '@aws-sdk/client-dynamodb';
import { TABLE } from '../table.ts';

type DynaliteOptions = { createTableMs?: number; deleteTableMs?: number; updateTableMs?: number; path?: string };
// dynalite is CommonJS without type declarations.
const dynalite = createRequire(import.meta.url)('dynalite') as (options: DynaliteOptions) => Server;

/** Region and dummy credentials every local AWS client uses (nothing checks signatures). */
export const LOCAL_REGION = 'us-east-1';
export const LOCAL_ACCOUNT_ID = '000000000000';
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

export type LocalDynamoDbOptions = {
  /** Directory for the LevelDB files (`<dataDir>/dynamodb`); in memory when absent or null. */
  dataDir?: string | null;
  /** Table to create if it does not exist yet. */
  tableName: string;
  host?: string;
  /** 0 (default) = a random free port. */
  port?: number;
};

export type LocalDynamoDb = {
  /** e.g. http://127.0.0.1:41234 (for AWS_ENDPOINT_URL_DYNAMODB). */
  endpoint: string;
  port: number;
  tableName: string;
  /** Stops listening, drops open connections, closes the store (call once its users are quiet). */
  close(): Promise<void>;
};

export async function startLocalDynamoDb(options: LocalDynamoDbOptions): Promise<LocalDynamoDb> {
  const host = options.host ?? '127.0.0.1';
  let path: string | undefined;
  if (options.dataDir) {
    path = join(options.dataDir, 'dynamodb');
    await mkdir(path, { recursive: true });
  }
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, ...(path ? { path } : {}) });
  const { url: endpoint, port, close } = await listen(server as Server, host, options.port, true);
  try {
    await ensureTable(endpoint, options.tableName);
  } catch (err) {
    await close().catch(() => {});
    throw err;
  }
  return { endpoint, port, tableName: options.tableName, close };
}

/** Creates the table of infra/table.ts (on-demand billing, string keys, GSI with projection ALL) unless it exists. */
export async function ensureTable(endpoint: string, tableName: string): Promise<void> {
  const client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  try {
    try {
      await client.send(new DescribeTableCommand({ TableName: tableName }));
      return;
    } catch (err) {
      if (!(err instanceof ResourceNotFoundException)) throw err;
    }
    const { partitionKey, sortKey, userIndex } = TABLE;
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [partitionKey, sortKey, userIndex.partitionKey, userIndex.sortKey].map((name) => ({
          AttributeName: name,
          AttributeType: 'S',
        })),
        KeySchema: [
          { AttributeName: partitionKey, KeyType: 'HASH' },
          { AttributeName: sortKey, KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: userIndex.name,
            KeySchema: [
              { AttributeName: userIndex.partitionKey, KeyType: 'HASH' },
              { AttributeName: userIndex.sortKey, KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
      }),
    );
  } finally {
    client.destroy();
  }
}

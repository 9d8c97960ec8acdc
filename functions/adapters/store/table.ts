// The DynamoDB table the store modules share: the document client, key shapes and the conditional-write helper.
// Every write is a single-item (conditional) write; every read checks expiry itself because TTL deletion is lazy
// (docs/architecture.md, data model and expiry on every read).
import { DynamoDBDocumentClient, UpdateCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { awsClient } from '../aws.ts';
import { config } from '../../config.ts';

const dynamo = awsClient('DynamoDB', () => new DynamoDBClient({}));
let doc: DynamoDBDocumentClient | undefined;
export const db = (): DynamoDBDocumentClient =>
  (doc ??= DynamoDBDocumentClient.from(dynamo(), { marshallOptions: { removeUndefinedValues: true } }));
export const table = (): string => config().tableName;

export const key = {
  client: (id: string) => ({ pk: `CLIENT#${id}`, sk: 'CLIENT' }),
  user: (sub: string) => ({ pk: `USER#${sub}`, sk: 'PROFILE' }),
  login: (value: string) => ({ pk: `LOGIN#${normalizeLogin(value)}`, sk: 'LOGIN' }),
  device: (id: string) => ({ pk: `DEVICE#${id}`, sk: 'DEVICE' }),
  request: (id: string) => ({ pk: `AUTHREQ#${id}`, sk: 'REQ' }),
  jti: (scope: string, jti: string) => ({ pk: `JTI#${scope}#${jti}`, sk: 'JTI' }),
  refresh: (hash: string) => ({ pk: `RT#${hash}`, sk: 'RT' }),
  family: (id: string) => ({ pk: `RTFAMILY#${id}`, sk: 'FAMILY' }),
  gate: (sub: string) => ({ pk: `USER#${sub}`, sk: 'GATE' }),
};

/** login_hint matching: emails case-insensitively, phone numbers without spaces, dashes, dots or parentheses. */
export function normalizeLogin(value: string): string {
  const v = value.trim();
  if (v.includes('@')) return v.toLowerCase();
  if (/^\+?[0-9 ().-]{6,}$/.test(v)) return v.replace(/[ ().-]/g, '');
  return v;
}

export const isConditionFailure = (e: unknown): boolean =>
  e instanceof ConditionalCheckFailedException ||
  (e as { name?: string } | null)?.name === 'ConditionalCheckFailedException';

/**
 * A conditional single-item update: the attributes it returned ({} when it was asked for none), or undefined when its
 * condition did not hold. Every other error is thrown.
 */
export async function updateIf(
  input: Omit<UpdateCommandInput, 'TableName'>,
): Promise<Record<string, unknown> | undefined> {
  try {
    const out = await db().send(new UpdateCommand({ TableName: table(), ...input }));
    return out.Attributes ?? {};
  } catch (e) {
    if (isConditionFailure(e)) return undefined;
    throw e;
  }
}

export function strip<T>(item: Record<string, unknown> | undefined): T | undefined {
  if (!item) return undefined;
  const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g2, ttl: _ttl, ...rest } = item;
  return rest as T;
}

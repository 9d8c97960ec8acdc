// Refresh tokens, stored as their SHA-256; rotated on use; reuse revokes the family (core/refresh-grant.ts). A grant's
// first token, when it was redeemed at the token endpoint, lives on its request row; every other on a row of its own.
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { sha256b64u } from '../../core/crypto.ts';
import {
  firstRefreshTokenRecord,
  firstRefreshTokenRequest,
  type RefreshTokenRecord,
} from '../../core/refresh-grant.ts';
import { getAuthRequest, useFirstRefreshToken } from './requests.ts';
import { db, key, strip, table, updateIf } from './table.ts';
import { config } from '../../config.ts';

export type { RefreshTokenRecord };

export async function putRefreshToken(hash: string, record: RefreshTokenRecord): Promise<void> {
  await db().send(
    new PutCommand({
      TableName: table(),
      Item: { ...key.refresh(hash), ...record, ttl: Math.ceil(record.expires_at / 1000) },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
}

/** The stored record of refresh token `token`, wherever it lives; undefined when unknown. */
export async function getRefreshToken(token: string): Promise<RefreshTokenRecord | undefined> {
  const hash = sha256b64u(token);
  const requestId = firstRefreshTokenRequest(token);
  if (requestId) {
    const req = await getAuthRequest(requestId);
    return req?.refresh_token_hash === hash ? firstRefreshTokenRecord(req, config().acrValues) : undefined;
  }
  const out = await db().send(new GetCommand({ TableName: table(), Key: key.refresh(hash), ConsistentRead: true }));
  return strip<RefreshTokenRecord>(out.Item);
}

/** Marks a refresh token used (single use): false when it was already used (or is gone) meanwhile. */
export async function useRefreshToken(token: string, now: number): Promise<boolean> {
  const hash = sha256b64u(token);
  const requestId = firstRefreshTokenRequest(token);
  if (requestId) return useFirstRefreshToken(requestId, hash, now);
  const used = await updateIf({
    Key: key.refresh(hash),
    UpdateExpression: 'SET used_at = :now',
    ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(used_at)',
    ExpressionAttributeValues: { ':now': now },
  });
  return used !== undefined;
}

export async function revokeFamily(family: string, untilMs: number): Promise<void> {
  await db().send(
    new PutCommand({
      TableName: table(),
      Item: { ...key.family(family), revoked: true, ttl: Math.ceil(untilMs / 1000) },
    }),
  );
}

export async function isFamilyRevoked(family: string): Promise<boolean> {
  const out = await db().send(new GetCommand({ TableName: table(), Key: key.family(family) }));
  return out.Item?.revoked === true;
}

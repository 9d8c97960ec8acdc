// Revoked access tokens (RFC 7009): a denylist of JWT ids that expires with the tokens themselves. Refresh tokens
// are revoked by their family (store/refresh-tokens.ts revokeFamily), which also covers the access tokens minted
// under it (their grant_id claim).
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { db, table } from './table.ts';

const key = (jti: string) => ({ pk: `REVOKED#${jti}`, sk: 'AT' });

export async function denyAccessToken(jti: string, expS: number): Promise<void> {
  await db().send(new PutCommand({ TableName: table(), Item: { ...key(jti), ttl: expS } }));
}

export async function isAccessTokenDenied(jti: string): Promise<boolean> {
  const out = await db().send(new GetCommand({ TableName: table(), Key: key(jti) }));
  return out.Item !== undefined;
}

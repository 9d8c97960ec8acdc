// The DPoP nonce key (functions/core/dpop-nonce.ts): one item holding the server-wide HMAC key. Created once by
// whichever function needs it first; concurrent creators agree on the first write (conditional put), and every one
// then uses that key. Not sealed: docs/tokens.md (server nonces) says why.
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { db, isConditionFailure, table } from './table.ts';

const key = { pk: 'DPOPNONCE', sk: 'KEY' };

/** The nonce key (base64url), if it was created. */
export async function getDpopNonceKey(): Promise<string | undefined> {
  const out = await db().send(new GetCommand({ TableName: table(), Key: key, ConsistentRead: true }));
  return typeof out.Item?.key === 'string' ? out.Item.key : undefined;
}

/** Store the nonce key unless one exists; returns the one that is stored now (ours or the first one). */
export async function createDpopNonceKey(value: string): Promise<string> {
  try {
    await db().send(
      new PutCommand({
        TableName: table(),
        Item: { ...key, key: value },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    return value;
  } catch (e) {
    if (!isConditionFailure(e)) throw e;
    const first = await getDpopNonceKey();
    if (!first) throw new Error('the DPoP nonce key vanished');
    return first;
  }
}

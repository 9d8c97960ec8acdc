// The replay cache: single-use identifiers (jti) of assertions and request objects.
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { db, isConditionFailure, key, table } from './table.ts';

/** Record a single-use identifier (jti) until `expSeconds`; false when it was already used. */
export async function useOnce(scope: string, jti: string, expSeconds: number, nowSeconds: number): Promise<boolean> {
  try {
    await db().send(
      new PutCommand({
        TableName: table(),
        Item: { ...key.jti(scope, jti), ttl: expSeconds },
        ConditionExpression: 'attribute_not_exists(pk) OR #ttl < :now',
        ExpressionAttributeNames: { '#ttl': 'ttl' },
        ExpressionAttributeValues: { ':now': nowSeconds },
      }),
    );
    return true;
  } catch (e) {
    if (isConditionFailure(e)) return false;
    throw e;
  }
}

// Dynamic registration (RFC 7591, RFC 7592): initial access tokens (`IAT#<sha256>`, from the admin CLI; expiring,
// optionally single use) and removing a registered client.
import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { db, isConditionFailure, key, strip, table, updateIf } from './table.ts';
import { forgetClient } from './registry.ts';

export type InitialAccessToken = { expires_at: number; single_use: boolean; created_at: number; used_at?: number };

const iatKey = (hash: string) => ({ pk: `IAT#${hash}`, sk: 'IAT' });

export async function putInitialAccessToken(hash: string, token: InitialAccessToken): Promise<void> {
  await db().send(
    new PutCommand({
      TableName: table(),
      Item: { ...iatKey(hash), ...token, ttl: Math.ceil(token.expires_at / 1000) },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
}

/**
 * Presents an initial access token: valid (and, if single use, used up now by a conditional write, so exactly one
 * registration wins) or not.
 */
export async function useInitialAccessToken(hash: string, now: number): Promise<boolean> {
  const used = await updateIf({
    Key: iatKey(hash),
    UpdateExpression: 'SET last_used_at = :now, used_at = if_not_exists(used_at, :now)',
    ConditionExpression:
      'attribute_exists(pk) AND expires_at > :now AND (single_use = :false OR attribute_not_exists(used_at))',
    ExpressionAttributeValues: { ':now': now, ':false': false },
  });
  return used !== undefined;
}

/** Gives a single-use token back (the registration it was used for was refused). */
export async function restoreInitialAccessToken(hash: string): Promise<void> {
  await updateIf({
    Key: iatKey(hash),
    UpdateExpression: 'REMOVE used_at',
    ConditionExpression: 'attribute_exists(pk)',
  });
}

/** Replaces a registered client's record only if its registration access token is still `expectedHash`. */
export async function replaceRegisteredClient(
  client: Record<string, unknown> & { client_id: string },
  expectedHash: string,
): Promise<boolean> {
  forgetClient(client.client_id);
  try {
    await db().send(
      new PutCommand({
        TableName: table(),
        Item: { ...key.client(client.client_id), ...client },
        ConditionExpression: 'registration_access_token_hash = :h',
        ExpressionAttributeValues: { ':h': expectedHash },
      }),
    );
    return true;
  } catch (e) {
    if (isConditionFailure(e)) return false;
    throw e;
  }
}

/** Stores a newly registered client; false when the client_id is taken. */
export async function createClient(client: Record<string, unknown> & { client_id: string }): Promise<boolean> {
  try {
    await db().send(
      new PutCommand({
        TableName: table(),
        Item: { ...key.client(client.client_id), ...client },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    return true;
  } catch (e) {
    if (isConditionFailure(e)) return false;
    throw e;
  }
}

/** Removes a client; with `expectedHash`, only if its registration access token matches. The removed record. */
export async function deleteClient(
  clientId: string,
  expectedHash?: string,
): Promise<Record<string, unknown> | undefined> {
  forgetClient(clientId);
  try {
    const out = await db().send(
      new DeleteCommand({
        TableName: table(),
        Key: key.client(clientId),
        ConditionExpression: expectedHash ? 'registration_access_token_hash = :h' : 'attribute_exists(pk)',
        ...(expectedHash ? { ExpressionAttributeValues: { ':h': expectedHash } } : {}),
        ReturnValues: 'ALL_OLD',
      }),
    );
    return strip(out.Attributes);
  } catch (e) {
    if (isConditionFailure(e)) return undefined;
    throw e;
  }
}

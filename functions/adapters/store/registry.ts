// Registered clients and users (with their login identifiers). Devices: store/devices.ts.
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Client, User } from '../../core/model.ts';
import { db, isConditionFailure, key, strip, table, updateIf } from './table.ts';

export async function putClient(client: Client): Promise<void> {
  await db().send(new PutCommand({ TableName: table(), Item: { ...key.client(client.client_id), ...client } }));
}

export async function getClient(clientId: string): Promise<Client | undefined> {
  const out = await db().send(new GetCommand({ TableName: table(), Key: key.client(clientId) }));
  return strip<Client>(out.Item);
}

export class LoginConflictError extends Error {
  override readonly name = 'LoginConflictError';
}

/** Store a user profile and its login names (sub, email, phone); a login name belongs to one user only. */
export async function putUser(user: User): Promise<void> {
  const logins = [user.sub, user.email, user.phone_number, ...Object.values(user.identifiers ?? {})].filter(
    (v): v is string => !!v,
  );
  for (const login of logins) {
    try {
      await db().send(
        new PutCommand({
          TableName: table(),
          Item: { ...key.login(login), sub: user.sub },
          ConditionExpression: 'attribute_not_exists(pk) OR #sub = :sub',
          ExpressionAttributeNames: { '#sub': 'sub' },
          ExpressionAttributeValues: { ':sub': user.sub },
        }),
      );
    } catch (e) {
      if (isConditionFailure(e))
        throw new LoginConflictError(`login ${JSON.stringify(login)} already belongs to another user`);
      throw e;
    }
  }
  await db().send(new PutCommand({ TableName: table(), Item: { ...key.user(user.sub), ...user } }));
}

export async function findSubByLogin(hint: string): Promise<string | undefined> {
  const out = await db().send(new GetCommand({ TableName: table(), Key: key.login(hint) }));
  return out.Item?.sub as string | undefined;
}

export async function getUser(sub: string): Promise<User | undefined> {
  const out = await db().send(new GetCommand({ TableName: table(), Key: key.user(sub) }));
  return strip<User>(out.Item);
}

/** Disables or enables a user (functions/core/model.ts `User.disabled`). False when there is no such user. */
export async function setUserDisabled(sub: string, disabled: boolean): Promise<boolean> {
  const done = await updateIf({
    Key: key.user(sub),
    UpdateExpression: disabled ? 'SET disabled = :yes' : 'REMOVE disabled',
    ConditionExpression: 'attribute_exists(pk)',
    ...(disabled ? { ExpressionAttributeValues: { ':yes': true } } : {}),
  });
  return done !== undefined;
}

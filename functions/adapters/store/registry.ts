// Registered clients and users (with their login identifiers). Devices: store/devices.ts.
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Client, User } from '../../core/model.ts';
import { db, isConditionFailure, key, normalizeLogin, strip, table, updateIf } from './table.ts';
import { setGateDisabled, writeUserGate } from './limits.ts';
import { setDevicesUserDisabled } from './devices.ts';
import { holdPendingRequests, listApprovedRequests, releaseHeldRequests, withdrawApproval } from './requests.ts';
import { config } from '../../config.ts';

export async function putClient(client: Client): Promise<void> {
  forgetClient(client.client_id);
  await db().send(new PutCommand({ TableName: table(), Item: { ...key.client(client.client_id), ...client } }));
}

/** The registration as stored now (and remembered for getClientCached). */
export async function getClient(clientId: string): Promise<Client | undefined> {
  const out = await db().send(new GetCommand({ TableName: table(), Key: key.client(clientId) }));
  const client = strip<Client>(out.Item);
  if (client && config().clientCacheSeconds > 0) clientCache.set(clientId, { client, at: Date.now() });
  else clientCache.delete(clientId);
  return client;
}

/**
 * Client registrations this instance read in the last CIBA_CLIENT_CACHE_SECONDS: they rarely change, and reading one
 * is a round trip on every request of the backchannel and token endpoints. Unknown ids are never remembered. A write
 * through this module (or registration's) forgets the entry here; other instances see it within the cache time.
 */
const clientCache = new Map<string, { client: Client; at: number }>();
const CLIENT_CACHE_MAX = 1000;

/** A remembered registration if still fresh (`cached: true`), else a read. */
export async function getClientCached(clientId: string): Promise<{ client: Client | undefined; cached: boolean }> {
  const hit = clientCache.get(clientId);
  if (hit && Date.now() - hit.at < config().clientCacheSeconds * 1000) return { client: hit.client, cached: true };
  if (clientCache.size >= CLIENT_CACHE_MAX) clientCache.clear();
  return { client: await getClient(clientId), cached: false };
}

/** The registration changed (updated or removed): read it again next time. */
export function forgetClient(clientId: string): void {
  clientCache.delete(clientId);
}

export class LoginConflictError extends Error {
  override readonly name = 'LoginConflictError';
}

/** The names `login_hint` finds a user by (sub, e-mail, phone number, further identifiers), normalized. */
export function loginNames(user: User): string[] {
  const names = [user.sub, user.email, user.phone_number, ...Object.values(user.identifiers ?? {})];
  return [...new Set(names.filter((v): v is string => !!v).map(normalizeLogin))];
}

/** Store a user profile and its login names (sub, email, phone); a login name belongs to one user only. */
export async function putUser(user: User): Promise<void> {
  const logins = loginNames(user);
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
  await writeUserGate(user.sub, logins, user.disabled === true);
}

export async function findSubByLogin(hint: string): Promise<string | undefined> {
  const out = await db().send(new GetCommand({ TableName: table(), Key: key.login(hint) }));
  const sub = out.Item?.sub as string | undefined;
  if (sub) {
    if (loginCache.size >= LOGIN_CACHE_MAX) loginCache.clear();
    loginCache.set(normalizeLogin(hint), { sub, at: Date.now() });
  }
  return sub;
}

/**
 * Login names this instance resolved in the last LOGIN_CACHE_MS. Safe to reuse because whoever uses a remembered sub
 * passes the user's gate with the login name in its condition (store/limits.ts claimUserGate `login`): a login name
 * that no longer names that user is refused there, and then looked up again.
 */
const loginCache = new Map<string, { sub: string; at: number }>();
const LOGIN_CACHE_MS = 300_000;
const LOGIN_CACHE_MAX = 10_000;

/** A login name's sub: remembered (`login` set: the normalized name the gate must check) or read. */
export async function lookupLogin(hint: string): Promise<{ sub: string | undefined; login?: string }> {
  const login = normalizeLogin(hint);
  const hit = loginCache.get(login);
  if (hit && Date.now() - hit.at < LOGIN_CACHE_MS) return { sub: hit.sub, login };
  return { sub: await findSubByLogin(hint) };
}

export async function getUser(sub: string): Promise<User | undefined> {
  const out = await db().send(new GetCommand({ TableName: table(), Key: key.user(sub) }));
  return strip<User>(out.Item);
}

/** Withdraws the user's approvals not yet redeemed (store/requests.ts withdrawApproval). */
export async function withdrawApprovals(sub: string): Promise<number> {
  let withdrawn = 0;
  for (const req of await listApprovedRequests(sub, Date.now())) if (await withdrawApproval(req.id)) withdrawn++;
  return withdrawn;
}

/** Disables or enables a user (functions/core/model.ts `User.disabled`). False when there is no such user. */
export async function setUserDisabled(sub: string, disabled: boolean): Promise<boolean> {
  const done = await updateIf({
    Key: key.user(sub),
    UpdateExpression: disabled ? 'SET disabled = :yes' : 'REMOVE disabled',
    ConditionExpression: 'attribute_exists(pk)',
    ...(disabled ? { ExpressionAttributeValues: { ':yes': true } } : {}),
  });
  if (done === undefined) return false;
  // The gate is what the backchannel endpoint checks (store/limits.ts), the device rows what the device API checks.
  await Promise.all([setGateDisabled(sub, disabled), setDevicesUserDisabled(sub, disabled)]);
  if (disabled) {
    // In this order, once the devices are locked out: a decision whose device was checked just before cannot approve
    // a held request, and one that approved before the hold is found and withdrawn (the token endpoint does not read
    // the user).
    await holdPendingRequests(sub, Date.now());
    await withdrawApprovals(sub);
  } else await releaseHeldRequests(sub, Date.now());
  return true;
}

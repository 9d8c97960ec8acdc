// DynamoDB store: the single table of DESIGN.md. Every write is a single-item (conditional) write; every read
// checks expiry itself because TTL deletion is lazy (DESIGN principle 6).
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { awsClient } from './aws.ts';
import { config } from '../config.ts';
import { TABLE } from '../../infra/table.ts';
import type { AuthRequest, Client, Device, User } from '../core/model.ts';

/** Rows stay readable this long after they expire, so a late poll gets expired_token rather than invalid_grant. */
const EXPIRED_ROW_GRACE_S = 86_400;

const dynamo = awsClient('DynamoDB', () => new DynamoDBClient({}));
let doc: DynamoDBDocumentClient | undefined;
const db = (): DynamoDBDocumentClient => (doc ??= DynamoDBDocumentClient.from(dynamo(), { marshallOptions: { removeUndefinedValues: true } }));
const table = (): string => config().tableName;

const key = {
  client: (id: string) => ({ pk: `CLIENT#${id}`, sk: 'CLIENT' }),
  user: (sub: string) => ({ pk: `USER#${sub}`, sk: 'PROFILE' }),
  login: (value: string) => ({ pk: `LOGIN#${normalizeLogin(value)}`, sk: 'LOGIN' }),
  device: (id: string) => ({ pk: `DEVICE#${id}`, sk: 'DEVICE' }),
  request: (id: string) => ({ pk: `AUTHREQ#${id}`, sk: 'REQ' }),
  jti: (scope: string, jti: string) => ({ pk: `JTI#${scope}#${jti}`, sk: 'JTI' }),
  refresh: (hash: string) => ({ pk: `RT#${hash}`, sk: 'RT' }),
  family: (id: string) => ({ pk: `RTFAMILY#${id}`, sk: 'FAMILY' }),
};

/** login_hint matching: emails case-insensitively, phone numbers without spaces, dashes, dots or parentheses. */
export function normalizeLogin(value: string): string {
  const v = value.trim();
  if (v.includes('@')) return v.toLowerCase();
  if (/^\+?[0-9 ().-]{6,}$/.test(v)) return v.replace(/[ ().-]/g, '');
  return v;
}

const isConditionFailure = (e: unknown): boolean =>
  e instanceof ConditionalCheckFailedException || (e as { name?: string } | null)?.name === 'ConditionalCheckFailedException';

/**
 * A conditional single-item update: the attributes it returned ({} when it was asked for none), or undefined when its
 * condition did not hold. Every other error is thrown.
 */
async function updateIf(input: Omit<UpdateCommandInput, 'TableName'>): Promise<Record<string, unknown> | undefined> {
  try {
    const out = await db().send(new UpdateCommand({ TableName: table(), ...input }));
    return out.Attributes ?? {};
  } catch (e) {
    if (isConditionFailure(e)) return undefined;
    throw e;
  }
}

function strip<T>(item: Record<string, unknown> | undefined): T | undefined {
  if (!item) return undefined;
  const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g2, ttl: _ttl, ...rest } = item;
  return rest as T;
}

// ---- clients, users, devices (registered by seed or registration) ----

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
  const logins = [user.sub, user.email, user.phone_number].filter((v): v is string => !!v);
  for (const login of logins) {
    try {
      await db().send(new PutCommand({
        TableName: table(),
        Item: { ...key.login(login), sub: user.sub },
        ConditionExpression: 'attribute_not_exists(pk) OR #sub = :sub',
        ExpressionAttributeNames: { '#sub': 'sub' },
        ExpressionAttributeValues: { ':sub': user.sub },
      }));
    } catch (e) {
      if (isConditionFailure(e)) throw new LoginConflictError(`login ${JSON.stringify(login)} already belongs to another user`);
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

export async function putDevice(device: Device): Promise<void> {
  await db().send(new PutCommand({ TableName: table(), Item: { ...key.device(device.device_id), ...device } }));
}

export async function getDevice(deviceId: string): Promise<Device | undefined> {
  const out = await db().send(new GetCommand({ TableName: table(), Key: key.device(deviceId) }));
  return strip<Device>(out.Item);
}

// ---- authentication requests ----

const ttlOf = (expiresAtMs: number): number => Math.ceil(expiresAtMs / 1000) + EXPIRED_ROW_GRACE_S;

export async function createAuthRequest(req: AuthRequest): Promise<void> {
  await db().send(new PutCommand({
    TableName: table(),
    Item: {
      ...key.request(req.id),
      ...req,
      // Sparse index of a user's pending requests (device API); removed once decided or expired.
      [TABLE.userIndex.partitionKey]: `USERREQ#${req.sub}`,
      [TABLE.userIndex.sortKey]: `${String(req.created_at).padStart(15, '0')}#${req.id}`,
      // Ping and push rows outlive the request by the delivery window: the client is told after it ends.
      ttl: ttlOf(req.expires_at) + (req.mode === 'poll' ? 0 : config().deliveryWindow),
    },
    ConditionExpression: 'attribute_not_exists(pk)',
  }));
}

export async function getAuthRequest(id: string): Promise<AuthRequest | undefined> {
  const out = await db().send(new GetCommand({ TableName: table(), Key: key.request(id), ConsistentRead: true }));
  return strip<AuthRequest>(out.Item);
}

/**
 * Record a poll of a pending request (CIBA §10.1 slow_down): succeeds only when the client waited until
 * `next_poll_at`; otherwise raises the interval by `penalty` seconds for this and all later polls.
 * Returns 'ok' | 'slow_down' | 'changed' (the request left `pending` meanwhile: read it again).
 */
export async function recordPoll(req: AuthRequest, now: number, tolerance: number, penalty: number): Promise<'ok' | 'slow_down' | 'changed'> {
  const onTime = await updateIf({
    Key: key.request(req.id),
    UpdateExpression: 'SET next_poll_at = :next',
    ConditionExpression: '#status = :pending AND next_poll_at <= :earliest',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':pending': 'pending', ':earliest': now + tolerance, ':next': now + req.interval * 1000 },
  });
  if (onTime) return 'ok';
  const slowed = await updateIf({
    Key: key.request(req.id),
    UpdateExpression: 'SET #interval = #interval + :penalty, next_poll_at = :next',
    ConditionExpression: '#status = :pending',
    ExpressionAttributeNames: { '#status': 'status', '#interval': 'interval' },
    ExpressionAttributeValues: { ':pending': 'pending', ':penalty': penalty, ':next': now + (req.interval + penalty) * 1000 },
  });
  return slowed ? 'slow_down' : 'changed';
}

/** One-time redemption (CIBA §10.1.1): approved → redeemed, exactly one caller wins. */
export async function redeemAuthRequest(id: string, clientId: string, now: number): Promise<AuthRequest | undefined> {
  const row = await updateIf({
    Key: key.request(id),
    UpdateExpression: 'SET #status = :redeemed, redeemed_at = :now',
    ConditionExpression: '#status = :approved AND client_id = :client AND (expires_at > :now OR redeemable_until > :now)',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':redeemed': 'redeemed', ':approved': 'approved', ':client': clientId, ':now': now },
    ReturnValues: 'ALL_NEW',
  });
  return row && strip<AuthRequest>(row);
}

/** Store the workflow's callback token; returns the row as it is now (the device may have decided already). */
export async function storeTaskToken(id: string, taskToken: string): Promise<AuthRequest | undefined> {
  const row = await updateIf({
    Key: key.request(id),
    UpdateExpression: 'SET task_token = :token',
    ConditionExpression: 'attribute_exists(pk)',
    ExpressionAttributeValues: { ':token': taskToken },
    ReturnValues: 'ALL_NEW',
  });
  return row && strip<AuthRequest>(row);
}

/**
 * The workflow saw the wait end without a decision (timeout, or the device could not be notified): a still-pending
 * request becomes expired or failed. A decision written at the same moment wins (the condition fails, nothing changes).
 */
export async function endPendingRequest(id: string, status: 'expired' | 'failed'): Promise<void> {
  await updateIf({
    Key: key.request(id),
    UpdateExpression: 'SET #status = :status REMOVE gsi1pk, gsi1sk, task_token',
    ConditionExpression: '#status = :pending',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':status': status, ':pending': 'pending' },
  });
}

// ---- ping and push delivery (CIBA §10.2, §10.3) ----

/** One more delivery attempt: keep its callback token, count it, remember when the first began. Returns the row. */
export async function prepareDelivery(id: string, taskToken: string, now: number): Promise<AuthRequest | undefined> {
  const row = await updateIf({
    Key: key.request(id),
    UpdateExpression: 'SET delivery_task_token = :token, delivery_started_at = if_not_exists(delivery_started_at, :now) ADD delivery_attempts :one',
    ConditionExpression: 'attribute_exists(pk)',
    ExpressionAttributeValues: { ':token': taskToken, ':now': now, ':one': 1 },
    ReturnValues: 'ALL_NEW',
  });
  return row && strip<AuthRequest>(row);
}

/**
 * Take attempt `attempt` for delivery: its callback token leaves the row in the same write, so a duplicate or stale
 * delivery message finds nothing to do. Returns the row as it was (with the token), or undefined.
 */
export async function claimDelivery(id: string, attempt: number): Promise<AuthRequest | undefined> {
  const row = await updateIf({
    Key: key.request(id),
    UpdateExpression: 'REMOVE delivery_task_token',
    ConditionExpression: 'delivery_attempts = :attempt AND attribute_exists(delivery_task_token)',
    ExpressionAttributeValues: { ':attempt': attempt },
    ReturnValues: 'ALL_OLD',
  });
  return row && strip<AuthRequest>(row);
}

/**
 * Keep the push token set (sealed) and mark the request redeemed: approved → redeemed happens once, so tokens are
 * minted once. False when another attempt got there first (use its stored set).
 */
export async function storePushTokens(id: string, sealed: string, now: number): Promise<boolean> {
  return (await updateIf({
    Key: key.request(id),
    UpdateExpression: 'SET push_tokens = :tokens, #status = :redeemed, redeemed_at = :now',
    ConditionExpression: '#status = :approved AND attribute_not_exists(push_tokens)',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':tokens': sealed, ':redeemed': 'redeemed', ':approved': 'approved', ':now': now },
  })) !== undefined;
}

/** Ping (CIBA §10.2) sent late: keep the approved request redeemable until `until` (epoch ms). */
export async function extendRedemption(id: string, until: number): Promise<void> {
  await updateIf({
    Key: key.request(id),
    UpdateExpression: 'SET redeemable_until = :until',
    ConditionExpression: '#status = :approved',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':until': until, ':approved': 'approved' },
  });
}

/** The delivery is over (delivered or given up): the secrets kept for it leave the row. */
export async function finishDelivery(id: string, status: 'delivered' | 'failed', now: number): Promise<void> {
  await db().send(new UpdateCommand({
    TableName: table(),
    Key: key.request(id),
    UpdateExpression: 'SET delivery_status = :status, delivered_at = :now REMOVE delivery_secrets, push_tokens, delivery_task_token',
    ExpressionAttributeValues: { ':status': status, ':now': now },
  }));
}

export type DecisionResult =
  | { ok: true; /** The workflow's callback token, if it was stored already (now removed from the row). */ taskToken?: string }
  | { ok: false; reason: 'not_found' | 'already_decided' | 'expired' };

/**
 * The user's decision: a conditional write on `status = pending AND expires_at > now` for that user's request.
 * The task token is taken out of the row in the same write: it is used once, by the caller.
 */
export async function decideAuthRequest(id: string, sub: string, decision: 'approved' | 'denied', now: number, amr: string[]): Promise<DecisionResult> {
  const old = await updateIf({
    Key: key.request(id),
    UpdateExpression: 'SET #status = :decision, decided_at = :now, auth_time = :authTime, amr = :amr REMOVE gsi1pk, gsi1sk, task_token',
    ConditionExpression: '#status = :pending AND expires_at > :now AND #sub = :sub',
    ExpressionAttributeNames: { '#status': 'status', '#sub': 'sub' },
    ExpressionAttributeValues: { ':decision': decision, ':now': now, ':authTime': Math.floor(now / 1000), ':amr': amr, ':pending': 'pending', ':sub': sub },
    ReturnValues: 'UPDATED_OLD',
  });
  if (old) {
    const taskToken = old.task_token as string | undefined;
    return taskToken ? { ok: true, taskToken } : { ok: true };
  }
  const current = await getAuthRequest(id);
  if (!current || current.sub !== sub) return { ok: false, reason: 'not_found' };
  if (current.status === 'pending' || current.status === 'expired') return { ok: false, reason: 'expired' };
  return { ok: false, reason: 'already_decided' };
}

/** A user's pending, unexpired requests, oldest first. */
export async function listPendingRequests(sub: string, now: number): Promise<AuthRequest[]> {
  const out = await db().send(new QueryCommand({
    TableName: table(),
    IndexName: TABLE.userIndex.name,
    KeyConditionExpression: '#g = :g',
    FilterExpression: '#status = :pending AND expires_at > :now',
    ExpressionAttributeNames: { '#g': TABLE.userIndex.partitionKey, '#status': 'status' },
    ExpressionAttributeValues: { ':g': `USERREQ#${sub}`, ':pending': 'pending', ':now': now },
    Limit: 100,
  }));
  return (out.Items ?? []).map((i) => strip<AuthRequest>(i)!);
}

// ---- abuse limits (fixed-window counters) ----

/** Count one event under `key` in the window starting at `windowStart` (epoch s); returns the count so far. */
export async function countInWindow(key: string, windowStart: number, windowEnd: number): Promise<number> {
  const out = await db().send(new UpdateCommand({
    TableName: table(),
    Key: { pk: `RATE#${key}#${windowStart}`, sk: 'RATE' },
    UpdateExpression: 'ADD n :one SET #ttl = :ttl',
    ExpressionAttributeNames: { '#ttl': 'ttl' },
    ExpressionAttributeValues: { ':one': 1, ':ttl': windowEnd },
    ReturnValues: 'UPDATED_NEW',
  }));
  return (out.Attributes?.n as number | undefined) ?? 1;
}

/** The count under `key` in the window starting at `windowStart`, without counting. */
export async function readWindow(key: string, windowStart: number, nowSeconds: number): Promise<number> {
  const out = await db().send(new GetCommand({ TableName: table(), Key: { pk: `RATE#${key}#${windowStart}`, sk: 'RATE' } }));
  if (!out.Item || (out.Item.ttl as number) <= nowSeconds) return 0;
  return (out.Item.n as number | undefined) ?? 0;
}

// ---- replay cache ----

/** Record a single-use identifier (jti) until `expSeconds`; false when it was already used. */
export async function useOnce(scope: string, jti: string, expSeconds: number, nowSeconds: number): Promise<boolean> {
  try {
    await db().send(new PutCommand({
      TableName: table(),
      Item: { ...key.jti(scope, jti), ttl: expSeconds },
      ConditionExpression: 'attribute_not_exists(pk) OR #ttl < :now',
      ExpressionAttributeNames: { '#ttl': 'ttl' },
      ExpressionAttributeValues: { ':now': nowSeconds },
    }));
    return true;
  } catch (e) {
    if (isConditionFailure(e)) return false;
    throw e;
  }
}

// ---- refresh tokens (stored as SHA-256; rotated on use; reuse revokes the family) ----

export type RefreshTokenRecord = {
  client_id: string;
  sub: string;
  scope: string;
  family: string;
  auth_time?: number;
  acr?: string;
  amr?: string[];
  expires_at: number;
};

export async function putRefreshToken(hash: string, record: RefreshTokenRecord): Promise<void> {
  await db().send(new PutCommand({
    TableName: table(),
    Item: { ...key.refresh(hash), ...record, ttl: Math.ceil(record.expires_at / 1000) },
    ConditionExpression: 'attribute_not_exists(pk)',
  }));
}

export type RefreshUse =
  | { ok: true; record: RefreshTokenRecord }
  | { ok: false; reason: 'unknown' | 'expired' }
  | { ok: false; reason: 'reused'; record: RefreshTokenRecord };

/** Mark a refresh token used (single use). A second use is reported as reuse so the caller revokes the family. */
export async function useRefreshToken(hash: string, now: number): Promise<RefreshUse> {
  const used = await updateIf({
    Key: key.refresh(hash),
    UpdateExpression: 'SET used_at = :now',
    ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(used_at) AND expires_at > :now',
    ExpressionAttributeValues: { ':now': now },
    ReturnValues: 'ALL_NEW',
  });
  if (used) return { ok: true, record: strip<RefreshTokenRecord>(used)! };
  const out = await db().send(new GetCommand({ TableName: table(), Key: key.refresh(hash) }));
  if (!out.Item) return { ok: false, reason: 'unknown' };
  if ((out.Item.expires_at as number) <= now) return { ok: false, reason: 'expired' };
  return { ok: false, reason: 'reused', record: strip<RefreshTokenRecord>(out.Item)! };
}

export async function revokeFamily(family: string, untilMs: number): Promise<void> {
  await db().send(new PutCommand({ TableName: table(), Item: { ...key.family(family), revoked: true, ttl: Math.ceil(untilMs / 1000) } }));
}

export async function isFamilyRevoked(family: string): Promise<boolean> {
  const out = await db().send(new GetCommand({ TableName: table(), Key: key.family(family) }));
  return out.Item?.revoked === true;
}

// Authentication requests (CIBA §7-§11) and their ping/push delivery state (§10.2, §10.3).
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { AuthRequest } from '../../core/model.ts';
import type { Granted } from '../../core/device-decision.ts';
import { TABLE } from '../../../infra/table.ts';
import { config } from '../../config.ts';
import { db, key, strip, table, updateIf } from './table.ts';

/** Rows stay readable this long after they expire, so a late poll gets expired_token rather than invalid_grant. */
const EXPIRED_ROW_GRACE_S = 86_400;

const ttlOf = (expiresAtMs: number): number => Math.ceil(expiresAtMs / 1000) + EXPIRED_ROW_GRACE_S;

/**
 * RFC 9396 authorization details are kept as JSON text: a DynamoDB item cannot hold every JSON value (32 levels of
 * nesting, numbers beyond JavaScript's safe integers or DynamoDB's range), and the text keeps them exactly as sent.
 */
const DETAIL_FIELDS = ['authorization_details', 'granted_authorization_details'] as const;

function detailsAsText(req: AuthRequest): Record<string, unknown> {
  const item: Record<string, unknown> = { ...req };
  for (const field of DETAIL_FIELDS) if (req[field] !== undefined) item[field] = JSON.stringify(req[field]);
  return item;
}

/** A request row as the rest of the code sees it (keys stripped, details parsed). */
function rowOf(item: Record<string, unknown> | undefined): AuthRequest | undefined {
  const row = strip<Record<string, unknown>>(item);
  if (!row) return undefined;
  for (const field of DETAIL_FIELDS) if (typeof row[field] === 'string') row[field] = JSON.parse(row[field]);
  return row as AuthRequest;
}

export async function createAuthRequest(req: AuthRequest): Promise<void> {
  await db().send(
    new PutCommand({
      TableName: table(),
      Item: {
        ...key.request(req.id),
        ...detailsAsText(req),
        // Sparse index of a user's pending requests (device API); removed once decided or expired.
        [TABLE.userIndex.partitionKey]: `USERREQ#${req.sub}`,
        [TABLE.userIndex.sortKey]: `${String(req.created_at).padStart(15, '0')}#${req.id}`,
        // Ping and push rows outlive the request by the delivery window: the client is told after it ends.
        ttl: ttlOf(req.expires_at) + (req.mode === 'poll' ? 0 : config().deliveryWindow),
      },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
}

export async function getAuthRequest(id: string): Promise<AuthRequest | undefined> {
  const out = await db().send(new GetCommand({ TableName: table(), Key: key.request(id), ConsistentRead: true }));
  return rowOf(out.Item);
}

/**
 * Record a poll of a pending request (CIBA §10.1 slow_down): succeeds only when the client waited until
 * `next_poll_at`; otherwise raises the interval by `penalty` seconds for this and all later polls.
 * Returns 'ok' | 'slow_down' | 'changed' (the request left `pending` meanwhile: read it again).
 */
export async function recordPoll(
  req: AuthRequest,
  now: number,
  tolerance: number,
  penalty: number,
): Promise<'ok' | 'slow_down' | 'changed'> {
  const onTime = await updateIf({
    Key: key.request(req.id),
    UpdateExpression: 'SET next_poll_at = :next',
    ConditionExpression: '#status = :pending AND next_poll_at <= :earliest',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: {
      ':pending': 'pending',
      ':earliest': now + tolerance,
      ':next': now + req.interval * 1000,
    },
  });
  if (onTime) return 'ok';
  const slowed = await updateIf({
    Key: key.request(req.id),
    UpdateExpression: 'SET #interval = #interval + :penalty, next_poll_at = :next',
    ConditionExpression: '#status = :pending',
    ExpressionAttributeNames: { '#status': 'status', '#interval': 'interval' },
    ExpressionAttributeValues: {
      ':pending': 'pending',
      ':penalty': penalty,
      ':next': now + (req.interval + penalty) * 1000,
    },
  });
  return slowed ? 'slow_down' : 'changed';
}

/** One-time redemption (CIBA §10.1.1): approved → redeemed, exactly one caller wins. */
export async function redeemAuthRequest(id: string, clientId: string, now: number): Promise<AuthRequest | undefined> {
  const row = await updateIf({
    Key: key.request(id),
    UpdateExpression: 'SET #status = :redeemed, redeemed_at = :now',
    ConditionExpression:
      '#status = :approved AND client_id = :client AND (expires_at > :now OR redeemable_until > :now)',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':redeemed': 'redeemed', ':approved': 'approved', ':client': clientId, ':now': now },
    ReturnValues: 'ALL_NEW',
  });
  return row && rowOf(row);
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
  return row && rowOf(row);
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
    UpdateExpression:
      'SET delivery_task_token = :token, delivery_started_at = if_not_exists(delivery_started_at, :now) ADD delivery_attempts :one',
    ConditionExpression: 'attribute_exists(pk)',
    ExpressionAttributeValues: { ':token': taskToken, ':now': now, ':one': 1 },
    ReturnValues: 'ALL_NEW',
  });
  return row && rowOf(row);
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
  return row && rowOf(row);
}

/**
 * Keep the push token set (sealed) and mark the request redeemed: approved → redeemed happens once, so tokens are
 * minted once. False when another attempt got there first (use its stored set).
 */
export async function storePushTokens(id: string, sealed: string, now: number): Promise<boolean> {
  return (
    (await updateIf({
      Key: key.request(id),
      UpdateExpression: 'SET push_tokens = :tokens, #status = :redeemed, redeemed_at = :now',
      ConditionExpression: '#status = :approved AND attribute_not_exists(push_tokens)',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':tokens': sealed, ':redeemed': 'redeemed', ':approved': 'approved', ':now': now },
    })) !== undefined
  );
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
  await db().send(
    new UpdateCommand({
      TableName: table(),
      Key: key.request(id),
      UpdateExpression:
        'SET delivery_status = :status, delivered_at = :now REMOVE delivery_secrets, push_tokens, delivery_task_token',
      ExpressionAttributeValues: { ':status': status, ':now': now },
    }),
  );
}

export type DecisionResult =
  | {
      ok: true /** The workflow's callback token, if it was stored already (now removed from the row). */;
      taskToken?: string;
    }
  | { ok: false; reason: 'not_found' | 'already_decided' | 'expired' };

/**
 * The user's decision: a conditional write on `status = pending AND expires_at > now` for that user's request.
 * The task token is taken out of the row in the same write: it is used once, by the caller. `granted`: what a
 * narrowing approval grants (core/device-decision.ts), stored beside the request.
 */
export async function decideAuthRequest(
  id: string,
  sub: string,
  decision: 'approved' | 'denied',
  now: number,
  amr: string[],
  granted: Granted = {},
): Promise<DecisionResult> {
  const narrowed: [string, unknown][] = [];
  if (granted.granted_scope !== undefined) narrowed.push(['granted_scope', granted.granted_scope]);
  if (granted.granted_authorization_details !== undefined)
    narrowed.push(['granted_authorization_details', JSON.stringify(granted.granted_authorization_details)]);
  const old = await updateIf({
    Key: key.request(id),
    UpdateExpression:
      'SET #status = :decision, decided_at = :now, auth_time = :authTime, amr = :amr' +
      narrowed.map(([field]) => `, ${field} = :${field}`).join('') +
      ' REMOVE gsi1pk, gsi1sk, task_token',
    ConditionExpression: '#status = :pending AND expires_at > :now AND #sub = :sub',
    ExpressionAttributeNames: { '#status': 'status', '#sub': 'sub' },
    ExpressionAttributeValues: {
      ':decision': decision,
      ':now': now,
      ':authTime': Math.floor(now / 1000),
      ':amr': amr,
      ':pending': 'pending',
      ':sub': sub,
      ...Object.fromEntries(narrowed.map(([field, value]) => [`:${field}`, value])),
    },
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
  const out = await db().send(
    new QueryCommand({
      TableName: table(),
      IndexName: TABLE.userIndex.name,
      KeyConditionExpression: '#g = :g',
      FilterExpression: '#status = :pending AND expires_at > :now',
      ExpressionAttributeNames: { '#g': TABLE.userIndex.partitionKey, '#status': 'status' },
      ExpressionAttributeValues: { ':g': `USERREQ#${sub}`, ':pending': 'pending', ':now': now },
      Limit: 100,
    }),
  );
  return (out.Items ?? []).map((i) => rowOf(i)!);
}

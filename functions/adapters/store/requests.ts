// Authentication requests (CIBA §7-§11) and their ping/push delivery state (§10.2, §10.3).
import { BatchGetCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { AuthRequest } from '../../core/model.ts';
import type { Granted } from '../../core/device-decision.ts';
import { isRedeemed } from '../../core/token-grant.ts';
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
        // The poll interval in ms, for the write that counts a poll (countPoll) to compute the next one itself.
        interval_ms: req.interval * 1000,
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

/** The ids among `ids` whose request still waits for the user (pending and unexpired); one batched read. */
export async function stillPending(ids: readonly string[], now: number): Promise<Set<string>> {
  const pending = new Set<string>();
  let keys: Record<string, unknown>[] = ids.map((id) => key.request(id));
  for (let round = 0; keys.length > 0 && round < 5; round++) {
    const out = await db().send(
      new BatchGetCommand({
        RequestItems: {
          [table()]: {
            Keys: keys,
            ConsistentRead: true,
            ProjectionExpression: 'id, #status, expires_at',
            ExpressionAttributeNames: { '#status': 'status' },
          },
        },
      }),
    );
    for (const item of out.Responses?.[table()] ?? [])
      if (item.status === 'pending' && (item.expires_at as number) > now) pending.add(item.id as string);
    keys = out.UnprocessedKeys?.[table()]?.Keys ?? [];
  }
  return pending;
}

/**
 * One poll at the token endpoint (CIBA §10.1), in one write: the poll is counted (`polls`) and the earliest next poll
 * set, on the condition that the request exists, belongs to `clientId`, has not been redeemed (no poll is counted after
 * the redemption), and, while pending, that the client waited its interval (within `tolerance` ms). Returns the row as
 * it is now (core/token-grant.ts decidePoll says: pending, the one redemption, or an error), or undefined when the
 * condition failed (pollRefused says why).
 *
 * `refresh`: for a client that gets refresh tokens, the hash of a fresh refresh token (and the DPoP key its grant would
 * be bound to), written by every counted poll. Only the redeeming poll hands its token out, and no later poll is
 * counted, so the row keeps the redeemed grant's first refresh token without a write of its own (docs/tokens.md).
 */
export async function countPoll(
  id: string,
  clientId: string,
  now: number,
  tolerance: number,
  refresh?: { hash: string; jkt?: string },
): Promise<AuthRequest | undefined> {
  const set = ['next_poll_at = :now + if_not_exists(interval_ms, :base)', 'polled_at = :now'];
  if (refresh) set.push('refresh_token_hash = :rth', ...(refresh.jkt ? ['refresh_jkt = :rjkt'] : []));
  const row = await updateIf({
    Key: key.request(id),
    UpdateExpression: `SET ${set.join(', ')} ADD polls :one` + (refresh && !refresh.jkt ? ' REMOVE refresh_jkt' : ''),
    ConditionExpression:
      'attribute_exists(pk) AND client_id = :client AND NOT (#status = :approved AND polls > decided_polls) AND ' +
      '(#status <> :pending OR next_poll_at <= :earliest)',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: {
      ':now': now,
      ':base': config().pollInterval * 1000,
      ':one': 1,
      ':client': clientId,
      ':pending': 'pending',
      ':approved': 'approved',
      ':earliest': now + tolerance,
      ...(refresh ? { ':rth': refresh.hash, ...(refresh.jkt ? { ':rjkt': refresh.jkt } : {}) } : {}),
    },
    ReturnValues: 'ALL_NEW',
  });
  return row && rowOf(row);
}

/**
 * Takes back the poll countPoll counted as a redemption (`polls` = `counted`) when the redemption was refused before
 * any token was made (a resource not granted, a replayed DPoP proof): the request stays redeemable.
 */
export async function uncountPoll(id: string, counted: number): Promise<void> {
  await updateIf({
    Key: key.request(id),
    UpdateExpression: 'ADD polls :minus',
    ConditionExpression: 'polls = :counted',
    ExpressionAttributeValues: { ':minus': -1, ':counted': counted },
  });
}

/**
 * A poll that countPoll refused: unknown (or another client's) → undefined; redeemed already → 'redeemed'; a pending
 * request polled too early gets the slow_down penalty (§11: the interval grows by `penalty` s for this and all later
 * polls) → 'slow_down'; otherwise the request changed meanwhile → 'changed' (count the poll again).
 */
export async function pollRefused(
  id: string,
  clientId: string,
  now: number,
  penalty: number,
): Promise<AuthRequest | 'slow_down' | 'redeemed' | 'changed' | undefined> {
  // (An expired pending request is returned as read: its answer is expired_token.)
  const req = await getAuthRequest(id);
  if (!req || req.client_id !== clientId) return undefined;
  if (isRedeemed(req)) return 'redeemed';
  if (req.status !== 'pending') return 'changed';
  if (req.expires_at <= now) return req;
  const slowed = await updateIf({
    Key: key.request(id),
    UpdateExpression:
      'SET #interval = #interval + :penalty, interval_ms = :intervalMs, next_poll_at = :next ADD polls :one',
    ConditionExpression: '#status = :pending',
    ExpressionAttributeNames: { '#status': 'status', '#interval': 'interval' },
    ExpressionAttributeValues: {
      ':pending': 'pending',
      ':penalty': penalty,
      ':intervalMs': (req.interval + penalty) * 1000,
      ':next': now + (req.interval + penalty) * 1000,
      ':one': 1,
    },
  });
  return slowed ? 'slow_down' : 'changed';
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

/** How long a dead-lettered row is kept: Step Functions redrives a failed Standard execution up to 14 days after it ended. */
export const REDRIVE_HORIZON_S = 14 * 86_400;

/**
 * The delivery is over. Delivered: the secrets kept for it leave the row. Failed for good: the secrets stay (sealed)
 * with the error and its cause, and the row is kept until the redrive horizon, so an operator can redrive it
 * (reopenDelivery) once the client's endpoint is fixed.
 */
export async function finishDelivery(
  id: string,
  status: 'delivered' | 'failed',
  now: number,
  failure?: { error: string; cause: string },
): Promise<void> {
  const update =
    status === 'delivered'
      ? {
          UpdateExpression:
            'SET delivery_status = :status, delivered_at = :now REMOVE delivery_secrets, push_tokens, delivery_task_token',
          ExpressionAttributeValues: { ':status': status, ':now': now },
        }
      : {
          UpdateExpression:
            'SET delivery_status = :status, delivered_at = :now, delivery_error = :error, delivery_cause = :cause, ' +
            '#ttl = :ttl REMOVE delivery_task_token',
          ExpressionAttributeNames: { '#ttl': 'ttl' },
          ExpressionAttributeValues: {
            ':status': status,
            ':now': now,
            ':error': failure?.error ?? 'unknown',
            ':cause': failure?.cause ?? '',
            ':ttl': Math.ceil(now / 1000) + REDRIVE_HORIZON_S,
          },
        };
  await db().send(new UpdateCommand({ TableName: table(), Key: key.request(id), ...update }));
}

/**
 * Reopen a delivery that failed for good, for a redrive: only a dead-lettered row (delivery failed, secrets kept) is
 * reopened; its end, error and first-attempt time are cleared, so the redriven Deliver task starts a new delivery
 * window. Returns the row as it is now, or why not: `not_found` (gone: its TTL passed) or `not_dead_lettered`
 * (delivered, still being delivered, or already reopened) with the row.
 */
export async function reopenDelivery(
  id: string,
  now: number,
): Promise<
  | { ok: true; row: AuthRequest }
  | { ok: false; reason: 'not_found' }
  | { ok: false; reason: 'not_dead_lettered'; row: AuthRequest }
> {
  const row = await updateIf({
    Key: key.request(id),
    UpdateExpression:
      'SET delivery_redriven_at = :now ADD delivery_redrives :one ' +
      'REMOVE delivery_status, delivered_at, delivery_started_at, delivery_error, delivery_cause',
    ConditionExpression: 'delivery_status = :failed AND attribute_exists(delivery_secrets)',
    ExpressionAttributeValues: { ':failed': 'failed', ':now': now, ':one': 1 },
    ReturnValues: 'ALL_NEW',
  });
  if (row) return { ok: true, row: rowOf(row)! };
  const current = await getAuthRequest(id);
  return current ? { ok: false, reason: 'not_dead_lettered', row: current } : { ok: false, reason: 'not_found' };
}

/**
 * After a redrive: replace a push token set whose access token has expired by a fresh one (sealed), only if the row
 * still holds `previous`. False when another attempt replaced it first (use the row's set).
 */
export async function replacePushTokens(id: string, previous: string, sealed: string): Promise<boolean> {
  return (
    (await updateIf({
      Key: key.request(id),
      UpdateExpression: 'SET push_tokens = :tokens',
      ConditionExpression: 'push_tokens = :previous',
      ExpressionAttributeValues: { ':tokens': sealed, ':previous': previous },
    })) !== undefined
  );
}

/**
 * Uses the first refresh token of a redeemed request (single use, like every refresh token): false when it is not the
 * row's token, or was used meanwhile.
 */
export async function useFirstRefreshToken(id: string, hash: string, now: number): Promise<boolean> {
  return (
    (await updateIf({
      Key: key.request(id),
      UpdateExpression: 'SET refresh_used_at = :now',
      ConditionExpression: 'refresh_token_hash = :hash AND attribute_not_exists(refresh_used_at)',
      ExpressionAttributeValues: { ':now': now, ':hash': hash },
    })) !== undefined
  );
}

export type DecisionResult =
  | {
      ok: true /** The workflow's callback token, if it was stored already (now removed from the row). */;
      taskToken?: string;
    }
  | { ok: false; reason: 'not_found' | 'already_decided' | 'expired' | 'held' };

/**
 * The user's decision: a conditional write on `status = pending AND expires_at > now` for that user's request, and for
 * an approval, on the request not being held (its user disabled: holdPendingRequests).
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
      'SET #status = :decision, decided_at = :now, auth_time = :authTime, amr = :amr, decided_polls = if_not_exists(polls, :zero)' +
      narrowed.map(([field]) => `, ${field} = :${field}`).join('') +
      // An approved row may come to hold its grant's first refresh token: it lives as long as that token can.
      (decision === 'approved' ? ', #ttl = #ttl + if_not_exists(refresh_ttl_s, :zero)' : '') +
      // The row stays in the user's index (until its TTL) so that disabling or removing the user finds an approval
      // not yet redeemed (withdrawApproval); the device list reads pending rows only.
      ' REMOVE task_token',
    ConditionExpression: `#status = :pending AND expires_at > :now AND #sub = :sub${decision === 'approved' ? ' AND attribute_not_exists(held)' : ''}`,
    ExpressionAttributeNames: {
      '#status': 'status',
      '#sub': 'sub',
      ...(decision === 'approved' ? { '#ttl': 'ttl' } : {}),
    },
    ExpressionAttributeValues: {
      ':decision': decision,
      ':now': now,
      ':authTime': Math.floor(now / 1000),
      ':amr': amr,
      ':pending': 'pending',
      ':sub': sub,
      ':zero': 0,
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
  if (decision === 'approved' && current.status === 'pending' && current.held && current.expires_at > now)
    return { ok: false, reason: 'held' };
  if (current.status === 'pending' || current.status === 'expired') return { ok: false, reason: 'expired' };
  return { ok: false, reason: 'already_decided' };
}

/**
 * The user is being disabled (after their devices are locked out): each pending request is held, so no approval can
 * land on it until releaseHeldRequests, not even one from a device checked just before the lock. Returns how many.
 */
export async function holdPendingRequests(sub: string, now: number): Promise<number> {
  return updatePending(sub, now, {
    UpdateExpression: 'SET held = :yes',
    ConditionExpression: '#status = :pending',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':yes': true, ':pending': 'pending' },
  });
}

/** The user is enabled again: their held requests can be approved (if they have not expired meanwhile). */
export async function releaseHeldRequests(sub: string, now: number): Promise<number> {
  return updatePending(sub, now, { UpdateExpression: 'REMOVE held', ConditionExpression: 'attribute_exists(held)' });
}

/** One conditional update on each of the user's pending requests; returns how many it changed. */
async function updatePending(sub: string, now: number, update: Omit<Parameters<typeof updateIf>[0], 'Key'>) {
  let changed = 0;
  for (const req of await listPendingRequests(sub, now, USER_REQUESTS_MAX))
    if ((await updateIf({ Key: key.request(req.id), ...update })) !== undefined) changed++;
  return changed;
}

/**
 * Takes back an approval that has not been redeemed (its user was disabled or removed meanwhile): the request becomes
 * denied, so the client's next poll gets access_denied and no tokens. False when it was not approved, or redeemed.
 */
export async function withdrawApproval(id: string): Promise<boolean> {
  return (
    (await updateIf({
      Key: key.request(id),
      UpdateExpression: 'SET #status = :denied, withdrawn = :yes',
      ConditionExpression:
        '#status = :approved AND (attribute_not_exists(polls) OR attribute_not_exists(decided_polls) OR polls <= decided_polls)',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':denied': 'denied', ':approved': 'approved', ':yes': true },
    })) !== undefined
  );
}

/**
 * A user's requests in the user index created after `since` (epoch ms) with `status`, newest first, at most `max`.
 * Only rows young enough matter: the index also holds the user's older decided and expired requests until their TTL.
 */
async function userRequests(
  sub: string,
  since: number,
  status: AuthRequest['status'],
  max: number,
  extra?: { filter: string; values: Record<string, unknown> },
): Promise<AuthRequest[]> {
  const found: AuthRequest[] = [];
  let start: Record<string, unknown> | undefined;
  for (let page = 0; page < 10 && found.length < max; page++) {
    const out = await db().send(
      new QueryCommand({
        TableName: table(),
        IndexName: TABLE.userIndex.name,
        KeyConditionExpression: '#g = :g AND #s > :since',
        FilterExpression: `#status = :status${extra ? ` AND ${extra.filter}` : ''}`,
        ExpressionAttributeNames: {
          '#g': TABLE.userIndex.partitionKey,
          '#s': TABLE.userIndex.sortKey,
          '#status': 'status',
        },
        ExpressionAttributeValues: {
          ':g': `USERREQ#${sub}`,
          ':since': String(Math.max(0, since)).padStart(15, '0'),
          ':status': status,
          ...extra?.values,
        },
        ScanIndexForward: false,
        Limit: max,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    for (const item of out.Items ?? []) if (found.length < max) found.push(rowOf(item)!);
    start = out.LastEvaluatedKey;
    if (!start) break;
  }
  return found;
}

/** A user's approved requests that may not have been redeemed yet (young enough to be redeemable). */
export function listApprovedRequests(sub: string, now: number): Promise<AuthRequest[]> {
  // Redeemable until expires_at (a late ping extends that by minutes): older than the longest lifetime plus an hour,
  // a row cannot be.
  return userRequests(sub, now - (config().maxExpiresIn + 3600) * 1000, 'approved', 1000);
}

/**
 * The user is being removed: the first refresh tokens their redeemed requests hold end (rotated ones are rows of their
 * own, deleted with the user). Returns how many were live (not yet rotated).
 */
export async function endFirstRefreshTokens(sub: string): Promise<number> {
  let ended = 0;
  for (const req of await userRequests(sub, 0, 'approved', USER_REQUESTS_MAX)) {
    const old = await updateIf({
      Key: key.request(req.id),
      UpdateExpression: 'REMOVE refresh_token_hash',
      ConditionExpression: 'attribute_exists(refresh_token_hash)',
      ReturnValues: 'ALL_OLD',
    });
    const row = old && rowOf(old);
    if (row && isRedeemed(row) && row.refresh_used_at === undefined) ended++;
  }
  return ended;
}

/** A user's pending, unexpired requests: the newest `max` (LIST_MAX), oldest first among them. */
export async function listPendingRequests(sub: string, now: number, max = LIST_MAX): Promise<AuthRequest[]> {
  const found = await userRequests(sub, now - config().maxExpiresIn * 1000, 'pending', max, {
    filter: 'expires_at > :now',
    values: { ':now': now },
  });
  return found.reverse();
}

/** At most this many pending requests are listed for a user (the newest). */
const LIST_MAX = 100;
/** What an operation on all of a user's requests reads at most (holding, releasing, ending them). */
export const USER_REQUESTS_MAX = 10_000;

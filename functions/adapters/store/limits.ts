// Abuse limits: fixed-window counters and each user's open prompts (functions/core/rate-limit.ts).
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { db, isConditionFailure, key, table, updateIf } from './table.ts';

/**
 * Count one event under `key` in the window starting at `windowStart` (epoch s); returns the count so far, this
 * event included. The count is the reservation: a caller that then refuses the event gives it back (uncount).
 */
export async function countInWindow(key: string, windowStart: number, windowEnd: number): Promise<number> {
  const out = await db().send(
    new UpdateCommand({
      TableName: table(),
      Key: { pk: `RATE#${key}#${windowStart}`, sk: 'RATE' },
      UpdateExpression: 'ADD n :one SET #ttl = :ttl',
      ExpressionAttributeNames: { '#ttl': 'ttl' },
      ExpressionAttributeValues: { ':one': 1, ':ttl': windowEnd },
      ReturnValues: 'UPDATED_NEW',
    }),
  );
  return (out.Attributes?.n as number | undefined) ?? 1;
}

/** Gives back one event counted with countInWindow (the event was refused or did not happen). */
export async function uncount(key: string, windowStart: number): Promise<void> {
  await updateIf({
    Key: { pk: `RATE#${key}#${windowStart}`, sk: 'RATE' },
    UpdateExpression: 'ADD n :minus',
    ConditionExpression: 'n > :zero',
    ExpressionAttributeValues: { ':minus': -1, ':zero': 0 },
  });
}

/**
 * The user's gate: one item per user (`USER#<sub>` / `GATE`) that a backchannel request for the user passes with ONE
 * conditional write, which checks that the user exists and is not disabled, counts the request in the user's rate
 * window (`rate`: window start → count) and claims an entry among the user's open prompts (`open`: request id →
 * expiry, epoch ms; only with a cap). Concurrent requests can never slip past it. It exists exactly when the user does
 * (putUser writes it, removeUser deletes it) and mirrors the `disabled` flag and the login names (`logins`).
 */
export type GateClaim = {
  sub: string;
  requestId: string;
  expiresAt: number;
  /** The user's rate window: its start (epoch s) and the most requests it may count. */
  window: { start: number; seconds: number; max: number };
  /** Most open prompts (0: no cap, nothing recorded in `open`). */
  cap: number;
  /** A login name resolved from a cache: the claim also checks it still names this user. */
  login?: string;
};

/** What the gate holds when a claim was refused: the caller works out why (core/rate-limit.ts). */
export type GateState = {
  exists: boolean;
  disabled: boolean;
  logins: ReadonlySet<string>;
  /** Requests counted in the claim's window. */
  counted: number;
  open: Readonly<Record<string, number>>;
};

const gateNames = (c: GateClaim): Record<string, string> => ({
  ...(c.cap > 0 ? { '#open': 'open', '#id': c.requestId } : {}),
  '#w': String(c.window.start),
  // The two windows before: dropped as the new one fills (older ones only remain after a long pause; harmless).
  '#p1': String(c.window.start - c.window.seconds),
  '#p2': String(c.window.start - 2 * c.window.seconds),
});

/** One conditional write: true when claimed, else the gate as it was (undefined: no such user). */
export async function claimUserGate(c: GateClaim): Promise<true | GateState> {
  try {
    await db().send(
      new UpdateCommand({
        TableName: table(),
        Key: key.gate(c.sub),
        UpdateExpression: `SET rate.#w = if_not_exists(rate.#w, :zero) + :one${c.cap > 0 ? ', #open.#id = :exp' : ''} REMOVE rate.#p1, rate.#p2`,
        ConditionExpression: [
          'attribute_exists(pk) AND attribute_not_exists(disabled)',
          '(attribute_not_exists(rate.#w) OR rate.#w < :max)',
          ...(c.cap > 0 ? ['size(#open) < :cap'] : []),
          ...(c.login !== undefined ? ['contains(logins, :login)'] : []),
        ].join(' AND '),
        ExpressionAttributeNames: gateNames(c),
        ExpressionAttributeValues: {
          ':zero': 0,
          ':one': 1,
          ':max': c.window.max,
          ...(c.cap > 0 ? { ':exp': c.expiresAt, ':cap': c.cap } : {}),
          ...(c.login !== undefined ? { ':login': c.login } : {}),
        },
      }),
    );
    return true;
  } catch (e) {
    if (!isConditionFailure(e)) throw e;
    // Refused (rare): read the gate to say why.
    const { Item: item } = await db().send(
      new GetCommand({ TableName: table(), Key: key.gate(c.sub), ConsistentRead: true }),
    );
    return {
      exists: item !== undefined,
      disabled: item?.disabled === true,
      logins: (item?.logins as Set<string> | undefined) ?? new Set(),
      counted: (item?.rate as Record<string, number> | undefined)?.[String(c.window.start)] ?? 0,
      open: (item?.open as Record<string, number> | undefined) ?? {},
    };
  }
}

/** Gives back a claim: the count in its window and its open entry. */
export async function releaseUserGate(c: GateClaim): Promise<void> {
  await updateIf({
    Key: key.gate(c.sub),
    UpdateExpression: `ADD rate.#w :minus${c.cap > 0 ? ' REMOVE #open.#id' : ''}`,
    ConditionExpression: 'rate.#w > :zero',
    ExpressionAttributeNames: {
      '#w': String(c.window.start),
      ...(c.cap > 0 ? { '#open': 'open', '#id': c.requestId } : {}),
    },
    ExpressionAttributeValues: { ':minus': -1, ':zero': 0 },
  });
}

/** Open entries that no longer hold a prompt (decided, expired, cancelled) leave the user's gate. */
export async function pruneUserGate(sub: string, requestIds: readonly string[]): Promise<void> {
  if (requestIds.length === 0) return;
  await updateIf({
    Key: key.gate(sub),
    UpdateExpression: `REMOVE ${requestIds.map((_, i) => `#open.#e${i}`).join(', ')}`,
    ConditionExpression: 'attribute_exists(pk)',
    ExpressionAttributeNames: { '#open': 'open', ...Object.fromEntries(requestIds.map((id, i) => [`#e${i}`, id])) },
  });
}

/** The gate of a user being stored (putUser): created empty if new; the login names and `disabled` mirrored. */
export async function writeUserGate(sub: string, logins: readonly string[], disabled: boolean): Promise<void> {
  await db().send(
    new UpdateCommand({
      TableName: table(),
      Key: key.gate(sub),
      UpdateExpression: `SET #open = if_not_exists(#open, :empty), rate = if_not_exists(rate, :empty), logins = :logins${disabled ? ', disabled = :yes' : ''}${disabled ? '' : ' REMOVE disabled'}`,
      ExpressionAttributeNames: { '#open': 'open' },
      ExpressionAttributeValues: { ':empty': {}, ':logins': new Set(logins), ...(disabled ? { ':yes': true } : {}) },
    }),
  );
}

/** Mirrors a user's `disabled` flag on the gate (false when the user has no gate). */
export async function setGateDisabled(sub: string, disabled: boolean): Promise<boolean> {
  return (
    (await updateIf({
      Key: key.gate(sub),
      UpdateExpression: disabled ? 'SET disabled = :yes' : 'REMOVE disabled',
      ConditionExpression: 'attribute_exists(pk)',
      ...(disabled ? { ExpressionAttributeValues: { ':yes': true } } : {}),
    })) !== undefined
  );
}

// Abuse limits: fixed-window counters and each user's open prompts (functions/core/rate-limit.ts).
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
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
 * A user's open prompts: one item per user holding `open`, a map of request id → expiry (epoch ms). A new request
 * claims an entry with a conditional write (`size(open) < cap`), so concurrent requests can never exceed the cap;
 * entries leave when the request is decided (releasePendingSlot) and, since the workflow may also end a request
 * without telling us (expiry, failure), expired entries are pruned when the map is full.
 * Returns true when claimed, or the epoch ms at which the earliest open request expires when the user is at the cap.
 */
export async function claimPendingSlot(
  sub: string,
  requestId: string,
  expiresAt: number,
  now: number,
  cap: number,
): Promise<true | number> {
  const claim = () =>
    updateIf({
      Key: key.pending(sub),
      UpdateExpression: 'SET #open.#id = :exp',
      ConditionExpression: 'attribute_exists(#open) AND size(#open) < :cap',
      ExpressionAttributeNames: { '#open': 'open', '#id': requestId },
      ExpressionAttributeValues: { ':exp': expiresAt, ':cap': cap },
    });
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await claim()) return true;
    const out = await db().send(new GetCommand({ TableName: table(), Key: key.pending(sub), ConsistentRead: true }));
    const open = out.Item?.open as Record<string, number> | undefined;
    if (!open) {
      // First request of this user: create the empty map (a concurrent creator wins harmlessly), then claim.
      await db()
        .send(
          new PutCommand({
            TableName: table(),
            Item: { ...key.pending(sub), open: {} },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        )
        .catch((e: unknown) => {
          if (!isConditionFailure(e)) throw e;
        });
      continue;
    }
    const expired = Object.entries(open)
      .filter(([, exp]) => exp <= now)
      .map(([id]) => id);
    if (expired.length === 0) return Math.min(...Object.values(open));
    await db().send(
      new UpdateCommand({
        TableName: table(),
        Key: key.pending(sub),
        UpdateExpression: `REMOVE ${expired.map((_, i) => `#open.#e${i}`).join(', ')}`,
        ExpressionAttributeNames: { '#open': 'open', ...Object.fromEntries(expired.map((id, i) => [`#e${i}`, id])) },
      }),
    );
  }
  return now;
}

/** The request no longer waits for the user (decided, cancelled, or never started): its entry leaves the map. */
export async function releasePendingSlot(sub: string, requestId: string): Promise<void> {
  await updateIf({
    Key: key.pending(sub),
    UpdateExpression: 'REMOVE #open.#id',
    ConditionExpression: 'attribute_exists(#open)',
    ExpressionAttributeNames: { '#open': 'open', '#id': requestId },
  });
}

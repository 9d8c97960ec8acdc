// The notification ledger: one item per (notice, channel) (`NOTIFY#<notice key>` / `<channel key>`), so a redelivered
// device-topic message or a retried invocation never notifies anyone twice (docs/notifications.md). A send is claimed
// with a lease by a conditional write; its outcome then makes the claim final. Items expire with the notice (TTL).
import { updateIf } from './table.ts';

const ledgerKey = (notice: string, channel: string) => ({ pk: `NOTIFY#${notice}`, sk: channel });

export type LedgerOutcome = 'sent' | 'failed';

/**
 * Claims the send of `notice` on `channel`: true when this invocation should send it, false when it was sent or
 * failed already, or another invocation holds a live lease on it. `leaseMs` must outlast the invocation.
 */
export async function claimNotification(
  notice: string,
  channel: string,
  now: number,
  leaseMs: number,
  expiresAtMs: number,
): Promise<boolean> {
  const claimed = await updateIf({
    Key: ledgerKey(notice, channel),
    UpdateExpression: 'SET #s = :sending, lease_until = :lease, #ttl = :ttl ADD attempts_started :one',
    ConditionExpression: 'attribute_not_exists(pk) OR (#s = :sending AND lease_until < :now)',
    ExpressionAttributeNames: { '#s': 'state', '#ttl': 'ttl' },
    ExpressionAttributeValues: {
      ':sending': 'sending',
      ':lease': now + leaseMs,
      ':now': now,
      ':one': 1,
      // Kept a day past the notice, then TTL removes it.
      ':ttl': Math.ceil(Math.max(expiresAtMs, now) / 1000) + 86_400,
    },
  });
  return claimed !== undefined;
}

/** Records how the claimed send ended; final, so a redelivery skips it. */
export async function finishNotification(
  notice: string,
  channel: string,
  outcome: LedgerOutcome,
  now: number,
): Promise<void> {
  await updateIf({
    Key: ledgerKey(notice, channel),
    UpdateExpression: 'SET #s = :outcome, finished_at = :now REMOVE lease_until',
    ConditionExpression: 'attribute_exists(pk)',
    ExpressionAttributeNames: { '#s': 'state' },
    ExpressionAttributeValues: { ':outcome': outcome, ':now': now },
  });
}

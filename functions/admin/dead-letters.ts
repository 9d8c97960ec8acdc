// The delivery dead letters, as an operator handles them (`npm run admin -- dead-letters list | redrive`,
// docs/operations.md "Dead letters"): list them without consuming them, and redrive a request's failed delivery once
// its client's endpoint is fixed. A redrive reopens the delivery in the request row (a conditional write: only a
// dead-lettered row), redrives the execution (Step Functions re-runs its Deliver state, with fresh retries and a new
// delivery window, under the same execution ARN), and only then deletes the request's dead letters.
import * as store from '../adapters/store.ts';
import { receiveAll, release, remove, type DeadLetter, type ReceivedDeadLetter } from '../adapters/dead-letters.ts';
import { describeExecution, executionArnOf, redriveExecution } from '../adapters/workflow.ts';
import type { AuthRequest } from '../core/model.ts';

/** How long a listing hides the messages from other readers before it hands them back (or a crash does). */
const LIST_VISIBILITY_S = 30;
/** How long a redrive holds the messages while it works through them. */
const REDRIVE_VISIBILITY_S = 300;

export type DeadLetterView = {
  request_id: string;
  client_id: string;
  mode: string;
  error: string;
  cause: string;
  attempts?: number;
  execution?: string;
  /** When the delivery was given up (ISO 8601), and how long ago in seconds. */
  at?: string;
  age_seconds?: number;
  message_id: string;
};

function view(m: ReceivedDeadLetter, now: number): DeadLetterView {
  const l: Partial<DeadLetter> = m.letter ?? {};
  const at = l.at ?? (m.sentAt !== undefined ? new Date(m.sentAt).toISOString() : undefined);
  const atMs = at ? Date.parse(at) : Number.NaN;
  return {
    request_id: l.requestId ?? '',
    client_id: l.clientId ?? '',
    mode: l.mode ?? '',
    error: l.error ?? (m.letter ? '' : 'not a dead-letter record'),
    cause: l.cause ?? (m.letter ? '' : m.body.slice(0, 200)),
    ...(typeof l.attempts === 'number' ? { attempts: l.attempts } : {}),
    ...(l.execution || l.executionName ? { execution: l.execution ?? l.executionName } : {}),
    ...(at ? { at } : {}),
    ...(Number.isFinite(atMs) ? { age_seconds: Math.max(0, Math.floor((now - atMs) / 1000)) } : {}),
    message_id: m.messageId,
  };
}

/** Every dead letter now in the queue, oldest first. Nothing is consumed: the messages are visible again at once. */
export async function listDeadLetters(): Promise<DeadLetterView[]> {
  const received = await receiveAll(LIST_VISIBILITY_S);
  try {
    const now = Date.now();
    return received.map((m) => view(m, now));
  } finally {
    await release(received);
  }
}

export type RedriveOutcome =
  | { request_id: string; outcome: 'redriven'; execution: string; redrive_count?: number; messages: number }
  | { request_id: string; outcome: 'already_delivered'; messages: number }
  | {
      request_id: string;
      outcome: 'no_dead_letter' | 'gone' | 'not_dead_lettered' | 'not_redrivable' | 'failed';
      error: string;
    };

/**
 * Redrive the dead-lettered deliveries of `requestIds` (or of every request in the queue). Each request is handled on
 * its own: a failure for one (no dead letter, its row gone, its execution not redrivable) is reported for it and
 * keeps its messages; the others go on.
 */
export async function redriveDeadLetters(requestIds: readonly string[] | 'all'): Promise<RedriveOutcome[]> {
  const received = await receiveAll(REDRIVE_VISIBILITY_S);
  const handled = new Set<ReceivedDeadLetter>();
  const results: RedriveOutcome[] = [];
  try {
    const byRequest = new Map<string, ReceivedDeadLetter[]>();
    for (const m of received) {
      const id = m.letter?.requestId;
      if (id) byRequest.set(id, [...(byRequest.get(id) ?? []), m]);
    }
    const ids = requestIds === 'all' ? [...byRequest.keys()] : [...new Set(requestIds)];
    for (const id of ids) {
      const letters = byRequest.get(id);
      if (!letters) {
        results.push({ request_id: id, outcome: 'no_dead_letter', error: 'no dead letter for this request' });
        continue;
      }
      let result: RedriveOutcome;
      try {
        result = await redriveOne(id, letters);
      } catch (e) {
        const err = e as { name?: string; message?: string };
        result = { request_id: id, outcome: 'failed', error: `${err.name ?? 'Error'}: ${err.message ?? String(e)}` };
      }
      if (result.outcome === 'redriven' || result.outcome === 'already_delivered') {
        // The delivery is in the workflow's hands again (or done): its dead letters are handled.
        await remove(letters);
        for (const m of letters) handled.add(m);
      }
      results.push(result);
    }
  } finally {
    await release(received.filter((m) => !handled.has(m)));
  }
  return results;
}

async function redriveOne(id: string, letters: ReceivedDeadLetter[]): Promise<RedriveOutcome> {
  const messages = letters.length;
  const reopened = await store.reopenDelivery(id, Date.now());
  let row: AuthRequest;
  if (reopened.ok) row = reopened.row;
  else if (reopened.reason === 'not_found') {
    return {
      request_id: id,
      outcome: 'gone',
      error:
        'the request is gone (its row passed its TTL, 14 days after the delivery failed): it can no longer be ' +
        'delivered; its dead letter is kept, delete it by hand once handled',
    };
  } else if (reopened.row.delivery_status === 'delivered') {
    return { request_id: id, outcome: 'already_delivered', messages };
  } else if (reopened.row.delivery_status === undefined && reopened.row.delivery_redriven_at !== undefined) {
    // Reopened by an earlier redrive that could not redrive the execution: try that again below.
    row = reopened.row;
  } else {
    return {
      request_id: id,
      outcome: 'not_dead_lettered',
      error: `its delivery has not failed for good (${reopened.row.delivery_status ?? 'in progress'}): nothing to redrive`,
    };
  }
  const execution = letters.find((m) => m.letter?.execution)?.letter?.execution ?? executionArnOf(id, row.mode);
  const before = await describeExecution(execution);
  if (!before) {
    return { request_id: id, outcome: 'not_redrivable', error: `its execution ${execution} does not exist` };
  }
  if (before.status === 'RUNNING' && before.redriveCount > 0) {
    // Redriven already (an earlier run stopped before deleting the messages).
    return { request_id: id, outcome: 'redriven', execution, redrive_count: before.redriveCount, messages };
  }
  if (before.redriveStatus && before.redriveStatus !== 'REDRIVABLE') {
    return {
      request_id: id,
      outcome: 'not_redrivable',
      error: `its execution cannot be redriven: ${before.redriveStatusReason ?? before.status}`,
    };
  }
  try {
    await redriveExecution(execution, `redrive-${row.delivery_redrives ?? 1}-${id}`.slice(0, 64));
  } catch (e) {
    const err = e as { name?: string; message?: string };
    if (err.name === 'ExecutionNotRedrivable' || err.name === 'ExecutionDoesNotExist')
      return { request_id: id, outcome: 'not_redrivable', error: `${err.name}: ${err.message}` };
    throw e;
  }
  const after = await describeExecution(execution);
  return {
    request_id: id,
    outcome: 'redriven',
    execution,
    ...(after ? { redrive_count: after.redriveCount } : {}),
    messages,
  };
}

// Abuse limits at the backchannel endpoint with their counters (functions/core/rate-limit.ts holds the rules).
// Each limit reserves first (an atomic count or a conditional write) and decides after, so concurrent requests can
// never slip past a limit; whatever a refused or failed request reserved is given back (Reservations.release).
import { OAuthError } from '../core/errors.ts';
import { verifyUserCode } from '../core/crypto.ts';
import type { Client } from '../core/model.ts';
import {
  clientQuota,
  pendingRetryAfter,
  tooManyRequests,
  windowOf,
  withinLimit,
  type Limit,
} from '../core/rate-limit.ts';
import { claimPendingSlot, countInWindow, getUser, releasePendingSlot, uncount } from '../adapters/store.ts';
import { log } from '../runtime/log.ts';
import { config } from '../config.ts';

/** What one backchannel request reserved; given back if the request is refused or cannot be started. */
export class Reservations {
  private readonly taken: Promise<(() => Promise<void>) | undefined>[] = [];

  /** Tracks a reservation in flight: `take` resolves to its undo, or undefined when nothing was reserved. */
  add(take: Promise<(() => Promise<void>) | undefined>): void {
    take.catch(() => undefined);
    this.taken.push(take);
  }

  /** Gives back everything reserved (waiting for reservations still in flight). Never throws. */
  async release(): Promise<void> {
    const undos = await Promise.allSettled(this.taken);
    await Promise.allSettled(undos.map((u) => (u.status === 'fulfilled' && u.value ? u.value() : undefined)));
  }
}

/**
 * Counts one event against `limit` under `key`; beyond the limit the count is given back at once and 429 thrown.
 * Resolves to the undo of the count.
 */
async function reserveInWindow(limit: Limit, key: string, nowS: number, what: string): Promise<() => Promise<void>> {
  const { start, end, retryAfter } = windowOf(limit, nowS);
  const undo = () => uncount(key, start);
  if (!withinLimit(limit, await countInWindow(key, start, end))) {
    await undo();
    log.warn('request refused: limit reached', { limit: what, retryAfter });
    throw tooManyRequests(what, retryAfter);
  }
  return undo;
}

/** The client's quota: started as soon as the client is authenticated, so it overlaps the hint resolution. */
export function reserveClientQuota(client: Client, nowS: number, reservations: Reservations): Promise<unknown> {
  const limit = clientQuota(client.backchannel_rate_limit, config().limits.client);
  const taken = reserveInWindow(limit, `client#${client.client_id}`, nowS, 'backchannel requests from this client');
  reservations.add(taken);
  return taken;
}

/**
 * The user's limits, once the user is known: the rate across clients and a slot among the user's pending requests
 * (the request `requestId`, open until `expiresAt` epoch ms). Both are reserved at once.
 */
export async function reserveUserLimits(
  sub: string,
  requestId: string,
  expiresAt: number,
  reservations: Reservations,
): Promise<void> {
  const { limits, maxPendingPerUser } = config();
  const now = Date.now();
  const rate = reserveInWindow(
    limits.user,
    `user#${sub}`,
    Math.floor(now / 1000),
    'backchannel requests for this user',
  );
  // 0: no cap (CIBA_MAX_PENDING_PER_USER, for load tests).
  const claim =
    maxPendingPerUser === 0
      ? Promise.resolve(true as const)
      : claimPendingSlot(sub, requestId, expiresAt, now, maxPendingPerUser);
  const slot = claim.then((claimed) => {
    if (claimed === true) return maxPendingPerUser === 0 ? undefined : () => releasePendingSlot(sub, requestId);
    const retryAfter = pendingRetryAfter(claimed, now);
    log.warn('backchannel request refused: too many pending requests for the user', { retryAfter });
    throw tooManyRequests('pending requests for this user', retryAfter);
  });
  reservations.add(rate);
  reservations.add(slot);
  await Promise.all([rate, slot]);
}

/**
 * §7.1 user_code, with a limit on failed attempts per user: guessing a user code must not be feasible. The attempt
 * is counted before the (slow) check, so concurrent guesses cannot exceed the limit; a right code is given back.
 */
export async function checkUserCode(sub: string, userCode: string, nowS: number): Promise<void> {
  const [undo, user] = await Promise.all([
    reserveInWindow(
      config().limits.userCode,
      `usercode-failures#${sub}`,
      nowS,
      'failed user_code attempts for this user',
    ),
    getUser(sub),
  ]);
  if (!user?.user_code_hash || !(await verifyUserCode(userCode, user.user_code_hash))) {
    throw new OAuthError('invalid_user_code', 'user_code is invalid');
  }
  await undo();
}

/**
 * Failed device enrolments per source address (CIBA_ENROLMENT_FAILURES): the attempt is counted before it is checked,
 * so concurrent guesses cannot exceed the limit; beyond it 429. Resolves to the undo, for an attempt that succeeds.
 */
export function reserveEnrolmentAttempt(sourceIp: string, nowS: number): Promise<() => Promise<void>> {
  return reserveInWindow(
    config().enrolmentFailures,
    `enrol-failures#${sourceIp}`,
    nowS,
    'failed device enrolments from this address',
  );
}

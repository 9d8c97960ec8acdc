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
import {
  claimUserGate,
  countInWindow,
  getUser,
  pruneUserGate,
  releaseUserGate,
  stillPending,
  uncount,
  writeUserGate,
  loginNames,
  type GateClaim,
} from '../adapters/store.ts';
import { unknownUser, userDisabled, type Resolved } from './hints.ts';
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
  // No quota for this client (none registered, no server default): nothing to count.
  if (!limit) return Promise.resolve(undefined);
  const taken = reserveInWindow(limit, `client#${client.client_id}`, nowS, 'backchannel requests from this client');
  reservations.add(taken);
  return taken;
}

/**
 * The user may be asked: the user's gate (adapters/store/limits.ts) is passed with one conditional write that checks
 * the user exists and is not disabled, counts the request in the user's rate window across clients and claims an
 * entry among the user's open prompts (the cap; CIBA_MAX_PENDING_PER_USER, 0: no cap). Refused: the gate as it was
 * says why. Open entries of requests already decided or expired are pruned only when the cap is reached (so a decision
 * costs no write here). Returns the user's sub; the claim is given back if the request is refused later.
 */
export async function admitUser(
  resolved: Resolved,
  relookup: () => Promise<Resolved>,
  requestId: string,
  expiresAt: number,
  reservations: Reservations,
): Promise<string> {
  const { limits, maxPendingPerUser } = config();
  let current = resolved;
  for (let attempt = 0; attempt < 4; attempt++) {
    const now = Date.now();
    const window = windowOf(limits.user, Math.floor(now / 1000));
    const claim: GateClaim = {
      sub: current.sub,
      requestId,
      expiresAt,
      window: { start: window.start, seconds: limits.user.windowSeconds, max: limits.user.count },
      cap: maxPendingPerUser,
      ...(current.login !== undefined ? { login: current.login } : {}),
    };
    const gate = await claimUserGate(claim);
    if (gate === true) {
      reservations.add(Promise.resolve(() => releaseUserGate(claim)));
      return current.sub;
    }
    // A remembered login name that no longer leads to this user: look it up again.
    if (current.login !== undefined && !(gate.exists && gate.logins.has(current.login))) {
      current = await relookup();
      continue;
    }
    if (!gate.exists) {
      // A user stored before gates existed (an upgraded table) gets one now; anyone else is unknown.
      const user = await getUser(current.sub);
      if (!user) throw unknownUser();
      await writeUserGate(user.sub, loginNames(user), user.disabled === true);
      continue;
    }
    if (gate.disabled) throw userDisabled();
    if (!withinLimit(limits.user, gate.counted + 1)) {
      log.warn('request refused: limit reached', { limit: 'user rate', retryAfter: window.retryAfter });
      throw tooManyRequests('backchannel requests for this user', window.retryAfter);
    }
    const open = Object.entries(gate.open);
    if (maxPendingPerUser > 0 && open.length >= maxPendingPerUser) {
      const pending = await stillPending(
        open.filter(([, exp]) => exp > now).map(([id]) => id),
        now,
      );
      const done = open.filter(([id]) => !pending.has(id)).map(([id]) => id);
      if (done.length === 0) {
        const retryAfter = pendingRetryAfter(Math.min(...open.map(([, exp]) => exp)), now);
        log.warn('backchannel request refused: too many pending requests for the user', { retryAfter });
        throw tooManyRequests('pending requests for this user', retryAfter);
      }
      await pruneUserGate(current.sub, done);
    }
    // Otherwise the gate changed between the refusal and the read: try again.
  }
  throw tooManyRequests('backchannel requests for this user', 1);
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

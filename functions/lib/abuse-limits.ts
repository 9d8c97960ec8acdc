// Abuse limits at the backchannel endpoint with their counters (functions/core/rate-limit.ts holds the rules):
// backchannel requests per client and per user (no unsolicited push spam, CIBA §14), failed user codes per user.
import { OAuthError } from '../core/errors.ts';
import { verifyUserCode } from '../core/crypto.ts';
import { enforce, tooManyRequests, windowOf, type Limit } from '../core/rate-limit.ts';
import { countInWindow, getUser, readWindow } from '../adapters/store.ts';
import { config } from '../config.ts';

function count(limit: Limit, key: string, nowS: number): Promise<number> {
  const { start, end } = windowOf(limit, nowS);
  return countInWindow(key, start, end);
}

/**
 * Counts this request for its (authenticated) client and its user, and refuses it beyond either limit (429).
 * `clientCount` is the client's count, started earlier by countClientRequest so it overlaps the hint resolution.
 */
export async function enforceRequestLimits(clientCount: Promise<number>, sub: string, nowS: number): Promise<void> {
  const { limits } = config();
  const [clients, users] = await Promise.all([clientCount, count(limits.user, `user#${sub}`, nowS)]);
  enforce(limits.client, clients, 'backchannel requests from this client', nowS);
  enforce(limits.user, users, 'backchannel requests for this user', nowS);
}

/** Starts counting a request for an authenticated client (see enforceRequestLimits). */
export function countClientRequest(clientId: string, nowS: number): Promise<number> {
  const counted = count(config().limits.client, `client#${clientId}`, nowS);
  counted.catch(() => undefined);
  return counted;
}

/** §7.1 user_code, with a limit on failed attempts per user: guessing a user code must not be feasible. */
export async function checkUserCode(sub: string, userCode: string, nowS: number): Promise<void> {
  const limit = config().limits.userCode;
  const key = `usercode-failures#${sub}`;
  const { start, retryAfter } = windowOf(limit, nowS);
  const [failures, user] = await Promise.all([readWindow(key, start, nowS), getUser(sub)]);
  if (failures >= limit.count) throw tooManyRequests('failed user_code attempts for this user', retryAfter);
  if (!user?.user_code_hash || !(await verifyUserCode(userCode, user.user_code_hash))) {
    await count(limit, key, nowS);
    throw new OAuthError('invalid_user_code', 'user_code is invalid');
  }
}

// Abuse limits at the backchannel endpoint (CIBA §14 security considerations; FAPI-CIBA §8: unsolicited requests
// spam the user's device): fixed-window counters per client and per user, and failed user_code attempts per user.
import { OAuthError } from './errors.ts';

/** `count` events per `windowSeconds`. */
export type Limit = { count: number; windowSeconds: number };

/** Parses "<count>/<seconds>", e.g. "10/300"; throws a configuration error naming `name`. */
export function parseLimit(name: string, raw: string): Limit {
  const m = /^([1-9][0-9]{0,6})\/([1-9][0-9]{0,6})$/.exec(raw.trim());
  if (!m) throw new Error(`configuration: ${name} must be <count>/<seconds>, e.g. 10/300, got ${JSON.stringify(raw)}`);
  return { count: Number(m[1]), windowSeconds: Number(m[2]) };
}

/** The fixed window `now` (epoch seconds) falls in: its start and the seconds left in it. */
export function windowOf(limit: Limit, now: number): { start: number; end: number; retryAfter: number } {
  const start = now - (now % limit.windowSeconds);
  const end = start + limit.windowSeconds;
  return { start, end, retryAfter: Math.max(1, end - now) };
}

/** RFC 6585 §4 429 with Retry-After; the error code is CIBA's slow_down ("ask less often"). */
export function tooManyRequests(what: string, retryAfter: number): OAuthError {
  return new OAuthError('slow_down', `too many ${what}; retry after ${retryAfter} s`, { status: 429, headers: { 'Retry-After': String(retryAfter) } });
}

/** Throws when `counted` (this request included) exceeds the limit. */
export function enforce(limit: Limit, counted: number, what: string, now: number): void {
  if (counted > limit.count) throw tooManyRequests(what, windowOf(limit, now).retryAfter);
}

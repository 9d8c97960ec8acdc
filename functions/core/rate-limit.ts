// Abuse limits at the backchannel endpoint (CIBA §14 security considerations; FAPI-CIBA §8: unsolicited requests
// spam the user's device). The rules, without I/O:
// - a client's backchannel request quota (its `backchannel_rate_limit` metadata, else the server default), a rate
//   per user across clients, fixed windows;
// - a cap on requests pending at once for one user (what protects a person from prompt bombing);
// - failed user_code attempts per user.
// Every limit is enforced by reserving first (a conditional write or an atomic count), then deciding; a refused
// request gives back what it reserved, so it consumes nothing.
import { OAuthError } from './errors.ts';
import { parseLimit, type Limit } from '../settings.ts';

export type { Limit };

/** The fixed window `now` (epoch seconds) falls in: its start and the seconds left in it. */
export function windowOf(limit: Limit, now: number): { start: number; end: number; retryAfter: number } {
  const start = now - (now % limit.windowSeconds);
  const end = start + limit.windowSeconds;
  return { start, end, retryAfter: Math.max(1, end - now) };
}

/** RFC 6585 §4 429 with Retry-After; the error code is CIBA's slow_down ("ask less often"). */
export function tooManyRequests(what: string, retryAfter: number): OAuthError {
  return new OAuthError('slow_down', `too many ${what}; retry after ${retryAfter} s`, {
    status: 429,
    headers: { 'Retry-After': String(retryAfter) },
  });
}

/** True when `counted` (this request included) is within the limit. */
export function withinLimit(limit: Limit, counted: number): boolean {
  return counted <= limit.count;
}

/** A client's own quota (`backchannel_rate_limit`, "<count>/<seconds>") or the server's default. */
export function clientQuota(registered: string | undefined, fallback: Limit | undefined): Limit | undefined {
  return (registered !== undefined && parseLimit(registered)) || fallback;
}

/** Seconds until the earliest pending request of a user at the cap expires (its slot frees then at the latest). */
export function pendingRetryAfter(earliestExpiryMs: number, nowMs: number): number {
  return Math.max(1, Math.ceil((earliestExpiryMs - nowMs) / 1000));
}

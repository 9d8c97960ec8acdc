// CIBA grant at the token endpoint (CIBA Core §10.1, §11): what a poll gets for the request as stored.
import { tokenError, type OAuthError } from './errors.ts';
import type { AuthRequest } from './model.ts';

/** §11 slow_down: "the interval MUST be increased by at least 5 seconds for this and all subsequent requests". */
export const SLOW_DOWN_PENALTY_S = 5;
/** Network jitter allowance: a poll this much early (ms) still counts as on time. */
export const POLL_TOLERANCE_MS = 250;

export type PollDecision =
  | { kind: 'error'; error: OAuthError }
  | { kind: 'pending' } // record the poll (may turn into slow_down)
  | { kind: 'redeem' }; // try the one-time approved → redeemed transition

/** §7.3 expires_in, extended for an approved ping request that was pinged late (see AuthRequest.redeemable_until). */
export function redeemableUntil(req: AuthRequest): number {
  return req.status === 'approved' && req.redeemable_until !== undefined
    ? Math.max(req.expires_at, req.redeemable_until)
    : req.expires_at;
}

/**
 * Approved and redeemed at the token endpoint (poll and ping): a poll was counted after the approval. That first poll
 * counted after the approval is the redemption, and no poll is counted after it (adapters/store/requests.ts countPoll),
 * so exactly one poll redeems and the row keeps what the redemption wrote.
 */
export const isRedeemed = (req: AuthRequest): boolean =>
  req.status === 'approved' && (req.polls ?? 0) > (req.decided_polls ?? Number.POSITIVE_INFINITY);

/** Decide the answer to a poll from the stored request (undefined: unknown auth_req_id). Pure; `now` in ms. */
export function decidePoll(req: AuthRequest | undefined, clientId: string, now: number): PollDecision {
  // §10.1 / §11: an unknown id, or one issued to another client, is invalid_grant.
  if (!req || req.client_id !== clientId)
    return { kind: 'error', error: tokenError('invalid_grant', 'unknown auth_req_id') };
  // §10.3: push clients receive tokens at their notification endpoint, never from the token endpoint.
  if (req.mode === 'push')
    return { kind: 'error', error: tokenError('invalid_grant', 'auth_req_id of a push client cannot be redeemed') };
  if (req.status === 'redeemed')
    return { kind: 'error', error: tokenError('invalid_grant', 'auth_req_id was already redeemed') };
  if (req.status === 'expired' || now >= redeemableUntil(req))
    return { kind: 'error', error: tokenError('expired_token', 'auth_req_id has expired') };
  if (req.status === 'denied')
    return { kind: 'error', error: tokenError('access_denied', 'the end-user denied the request') };
  if (req.status === 'failed')
    return { kind: 'error', error: tokenError('access_denied', 'the authentication device could not be reached') };
  if (req.status === 'pending') return { kind: 'pending' };
  return { kind: 'redeem' };
}

// Ping and push notifications to the client (CIBA Core §10.2, §10.3, §12): what is POSTed and what the answer
// means. AWS-free; the delivery function (functions/handlers/deliver.ts) does the I/O.
import type { AuthRequestStatus, DeliveryMode } from './model.ts';
import { WORKFLOW_ERRORS } from '../names.ts';

/** How a request ended, as far as its client is told. */
export type Outcome = 'approved' | 'denied' | 'expired' | 'failed';

/** §7.1 client_notification_token: at most 1024 characters, RFC 6750 §2.1 b64token syntax. */
export const NOTIFICATION_TOKEN_SYNTAX = /^[A-Za-z0-9\-._~+/]+=*$/;
export const NOTIFICATION_TOKEN_MAX = 1024;

/** The token set a push client receives (§10.3.1); minted once and re-sent unchanged on every retry. */
export type PushTokens = {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token?: string;
  id_token: string;
};

/** What bc-authorize seals into the row for a ping/push request: what the notification needs and nothing else. */
export type DeliverySecrets = { auth_req_id: string; client_notification_token: string };

/** The stored request status → the outcome told to the client (undefined: nothing to tell yet). */
export function outcomeOf(status: AuthRequestStatus): Outcome | undefined {
  switch (status) {
    case 'approved':
    case 'redeemed':
      return 'approved';
    case 'denied':
    case 'expired':
    case 'failed':
      return status;
    default:
      return undefined;
  }
}

/** §12: the push error codes. */
const PUSH_ERRORS = {
  denied: { error: 'access_denied', error_description: 'The end-user denied the authorization request.' },
  expired: { error: 'expired_token', error_description: 'The auth_req_id expired before the end-user decided.' },
  failed: { error: 'transaction_failed', error_description: 'The authentication could not be completed.' },
} as const;

/**
 * The JSON body POSTed to the client notification endpoint.
 * §10.2 ping: `{auth_req_id}` and nothing else, for every outcome (the client then asks the token endpoint).
 * §10.3.1 push success: auth_req_id and the token set; §12 push error: `{error, error_description, auth_req_id}`.
 */
export function notificationBody(
  mode: Exclude<DeliveryMode, 'poll'>,
  outcome: Outcome,
  authReqId: string,
  tokens?: PushTokens,
): Record<string, unknown> {
  if (mode === 'ping') return { auth_req_id: authReqId };
  if (outcome !== 'approved') return { ...PUSH_ERRORS[outcome], auth_req_id: authReqId };
  if (!tokens) throw new Error('push of an approved request needs its token set');
  return {
    auth_req_id: authReqId,
    access_token: tokens.access_token,
    token_type: tokens.token_type,
    expires_in: tokens.expires_in,
    ...(tokens.refresh_token ? { refresh_token: tokens.refresh_token } : {}),
    id_token: tokens.id_token,
  };
}

/** What one POST attempt came to. */
export type AttemptResult = { kind: 'delivered' | 'retry' | 'rejected'; detail: string };

/**
 * §10.2/§10.3: the client answers 204 (200 with any body is accepted too). Redirects are never followed and are
 * final, like other 4xx; network errors, timeouts, 5xx, 408 and 429 are worth another attempt later. The operator
 * hook's answers mean the same (core/user-notification.ts); `target` names who answered.
 */
export function classifyResponse(status: number, target = 'the notification endpoint'): AttemptResult {
  if (status >= 200 && status < 300) return { kind: 'delivered', detail: `HTTP ${status}` };
  if (status >= 500 || status === 408 || status === 429)
    return { kind: 'retry', detail: `HTTP ${status} from ${target}` };
  if (status >= 300 && status < 400)
    return { kind: 'rejected', detail: `HTTP ${status} from ${target} (redirects are not followed)` };
  return { kind: 'rejected', detail: `HTTP ${status} from ${target}` };
}

/** A POST that got no HTTP answer (refused, reset, DNS, TLS, timeout) is retried. */
export function classifyNetworkError(code: string, target = 'the notification endpoint'): AttemptResult {
  return { kind: 'retry', detail: `no answer from ${target} (${code})` };
}

/** What the workflow is told about one attempt: success (no error), or the error its Retry/Catch route on. */
export type AttemptReport = { error?: DeliveryError; result: AttemptResult };
export type DeliveryError =
  | typeof WORKFLOW_ERRORS.deliveryRetryable
  | typeof WORKFLOW_ERRORS.deliveryRejected
  | typeof WORKFLOW_ERRORS.deliveryExhausted;

/**
 * §10.2/§10.3 delivery policy: a retryable failure is retried until `windowS` seconds have passed since the first
 * attempt (`elapsedMs`); then it is final (Exhausted). A rejection is final at once.
 */
export function reportAttempt(result: AttemptResult, elapsedMs: number, windowS: number): AttemptReport {
  if (result.kind === 'delivered') return { result };
  if (result.kind === 'rejected') return { error: WORKFLOW_ERRORS.deliveryRejected, result };
  if (elapsedMs < windowS * 1000) return { error: WORKFLOW_ERRORS.deliveryRetryable, result };
  return {
    error: WORKFLOW_ERRORS.deliveryExhausted,
    result: { kind: 'rejected', detail: `${result.detail}; not delivered within ${windowS} s` },
  };
}

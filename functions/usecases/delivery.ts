// Delivering a ping or push notification to the client (CIBA Core §10.2, §10.3, §12): one attempt per delivery
// message, reported to the waiting workflow (core/notification.ts reportAttempt: success, retryable, or final). A final
// failure is written to the dead-letter queue (no secrets) before the workflow is told, and the row keeps its sealed
// secrets until the redrive horizon, so an operator can redrive the execution (`npm run admin -- dead-letters`).
// Push tokens are minted once and re-sent unchanged; after a redrive, an expired set is replaced by a fresh one.
import { decodeJwt } from 'jose';
import * as store from '../adapters/store.ts';
import { seal, sealContext, unseal } from '../adapters/sealer.ts';
import { postNotification, type DeliveryMessage } from '../adapters/delivery.ts';
import { sendDeadLetter } from '../adapters/dead-letters.ts';
import { sendDeliveryResult } from '../adapters/workflow.ts';
import {
  notificationBody,
  outcomeOf,
  reportAttempt,
  type AttemptReport,
  type AttemptResult,
  type DeliveryError,
  type DeliverySecrets,
  type PushTokens,
} from '../core/notification.ts';
import { METRICS, WORKFLOW_ERRORS } from '../names.ts';
import { grantFromRequest } from '../core/tokens.ts';
import { randomId } from '../core/crypto.ts';
import type { AuthorizationDetail, AuthRequest, Client } from '../core/model.ts';
import { mintTokens } from './tokens.ts';
import { emitMetrics } from '../runtime/metrics.ts';
import { errorFields, log } from '../runtime/log.ts';
import { config } from '../config.ts';

/**
 * The push token set as kept (sealed) between attempts: CIBA §10.3.1's fields, and what a token response adds when
 * the approval narrowed the request (RFC 6749 §5.1 scope) or granted authorization details (RFC 9396 §7).
 */
type PushTokenSet = PushTokens & { scope?: string; authorization_details?: AuthorizationDetail[] };

/** The push body's additions beyond CIBA §10.3.1 (core/notification.ts notificationBody). */
const grantedExtras = (tokens: PushTokenSet | undefined): Record<string, unknown> => ({
  ...(tokens?.scope ? { scope: tokens.scope } : {}),
  ...(tokens?.authorization_details ? { authorization_details: tokens.authorization_details } : {}),
});

/** After a late ping the client has this long to redeem (on top of the POST's own timeout). */
const PING_REDEEM_GRACE_MS = 120_000;

class Rejected extends Error {
  override readonly name = 'Rejected';
}

/** One delivery attempt for a message from the delivery topic (stale and duplicate messages do nothing). */
export async function deliver(message: DeliveryMessage): Promise<void> {
  const { requestId, attempt } = message;
  const [req, client] = await Promise.all([store.claimDelivery(requestId, attempt), store.getClient(message.clientId)]);
  // Someone else took this attempt (duplicate message) or a newer attempt replaced it: nothing to do.
  if (!req?.delivery_task_token) return log.info('stale delivery message ignored', { requestId, attempt });
  const taskToken = req.delivery_task_token;
  const cfg = config();
  const mode = req.mode === 'push' ? 'push' : 'ping';

  let result: AttemptResult;
  try {
    // An earlier attempt ended the delivery but could not tell the workflow (it timed out and retried): tell it now.
    if (req.delivery_status)
      result = {
        kind: req.delivery_status === 'delivered' ? 'delivered' : 'rejected',
        detail: req.delivery_cause ?? `already ${req.delivery_status}`,
      };
    else result = await attemptDelivery(req, client, mode);
  } catch (e) {
    if (e instanceof Rejected) result = { kind: 'rejected', detail: e.message };
    else {
      log.error('delivery attempt failed', { requestId, attempt, ...errorFields(e) });
      result = { kind: 'retry', detail: `delivery error (${e instanceof Error ? e.name : typeof e})` };
    }
  }
  const elapsed = Date.now() - (req.delivery_started_at ?? Date.now());
  const outcome = reportAttempt(result, elapsed, cfg.deliveryWindow);
  // Reported again after an earlier attempt ended it: the error it ended with (Rejected or Exhausted), not a new one.
  if (req.delivery_status === 'failed' && req.delivery_error) outcome.error = req.delivery_error as DeliveryError;
  await report(req, taskToken, outcome, attempt);
}

/**
 * End the delivery in the row when final (delivered: secrets dropped; failed: kept for a redrive), write the dead
 * letter of a final failure, then tell the workflow, and emit the metrics. The row and the dead letter go first: if
 * telling the workflow fails, its retry finds the delivery already ended and reports it (and sends the dead letter
 * again: at least once; the admin CLI handles a request's letters together).
 */
async function report(
  req: AuthRequest,
  taskToken: string,
  { error, result }: AttemptReport,
  attempt: number,
): Promise<void> {
  const now = Date.now();
  const fields = { requestId: req.id, clientId: req.client_id, mode: req.mode, attempt, result: result.detail };
  const final = error !== WORKFLOW_ERRORS.deliveryRetryable;
  if (final && !req.delivery_status)
    await store.finishDelivery(
      req.id,
      error ? 'failed' : 'delivered',
      now,
      error ? { error, cause: result.detail } : undefined,
    );
  if (final && error) await deadLetter(req, error, result.detail, attempt, now);
  await sendDeliveryResult(
    taskToken,
    error ? { error, cause: result.detail } : { output: { delivered: true, attempts: attempt, result: result.detail } },
  );
  if (!error) {
    const latency =
      req.decided_at !== undefined && outcomeOf(req.status) === 'approved' ? now - req.decided_at : undefined;
    log.info('notification delivered', {
      ...fields,
      ...(latency !== undefined ? { approvalToNotificationMs: latency } : {}),
    });
    emitMetrics(
      {
        [METRICS.deliveriesSucceeded]: { value: 1, unit: 'Count' },
        ...(latency !== undefined
          ? { [METRICS.approvalToNotification]: { value: latency, unit: 'Milliseconds' } }
          : {}),
      },
      { mode: req.mode },
    );
  } else if (!final) {
    log.warn('notification not delivered; will retry', fields);
    emitMetrics({ [METRICS.deliveryRetries]: { value: 1, unit: 'Count' } }, { mode: req.mode });
  } else {
    log.error('notification not delivered; giving up', { ...fields, error });
    emitMetrics({ [METRICS.deliveriesFailed]: { value: 1, unit: 'Count' } }, { mode: req.mode });
  }
}

/** The dead letter of a delivery that failed for good: who, why, how many attempts, which execution; no secret. */
async function deadLetter(req: AuthRequest, error: string, cause: string, attempts: number, now: number) {
  const machine = config().stateMachineArns.notify;
  const executionArn = machine.includes(':stateMachine:')
    ? `${machine.replace(':stateMachine:', ':execution:')}:${req.id}`
    : undefined;
  try {
    await sendDeadLetter({
      requestId: req.id,
      clientId: req.client_id,
      mode: req.mode,
      error,
      cause,
      attempts,
      executionName: req.id,
      ...(executionArn ? { execution: executionArn } : {}),
      at: new Date(req.delivered_at ?? now).toISOString(),
    });
  } catch (e) {
    // Not answered, the Deliver task times out and is retried: the next attempt finds the delivery ended and sends it.
    log.error('dead letter not sent', { requestId: req.id, clientId: req.client_id, ...errorFields(e) });
    throw e;
  }
}

async function attemptDelivery(
  req: AuthRequest,
  client: Client | undefined,
  mode: 'ping' | 'push',
): Promise<AttemptResult> {
  const endpoint = client?.backchannel_client_notification_endpoint;
  if (!client || !endpoint) throw new Rejected('the client has no notification endpoint');
  const outcome = outcomeOf(req.status);
  if (!outcome) throw new Rejected(`the request has no outcome to deliver (status ${req.status})`);
  if (!req.delivery_secrets) throw new Rejected('the request has no delivery secrets (already delivered?)');
  const secrets = JSON.parse(
    await unseal(req.delivery_secrets, sealContext.deliverySecrets(req.id)),
  ) as DeliverySecrets;
  const tokens =
    mode === 'push' && outcome === 'approved' ? await pushTokens(req, client, secrets.auth_req_id) : undefined;
  // A ping about an approval must leave the client time to redeem, even when retries pushed it past expires_at.
  const redeemBy = Date.now() + config().deliveryTimeout * 1000 + PING_REDEEM_GRACE_MS;
  if (mode === 'ping' && req.status === 'approved' && req.expires_at < redeemBy)
    await store.extendRedemption(req.id, redeemBy);
  // A user who disappeared before the tokens were minted: the push client is told the transaction failed.
  const body =
    tokens === null
      ? notificationBody(mode, 'failed', secrets.auth_req_id)
      : { ...notificationBody(mode, outcome, secrets.auth_req_id, tokens), ...grantedExtras(tokens) };
  return postNotification(endpoint, secrets.client_notification_token, body, config().deliveryTimeout * 1000);
}

/**
 * The push token set: the stored one if an earlier attempt minted it, else minted now and stored (once). After a
 * redrive, a stored set whose access token has expired is replaced by a fresh one (once), and the earlier set's
 * refresh token family is revoked.
 */
async function pushTokens(req: AuthRequest, client: Client, authReqId: string): Promise<PushTokenSet | null> {
  const context = sealContext.pushTokens(req.id);
  if (req.push_tokens) {
    const stored = JSON.parse(await unseal(req.push_tokens, context)) as PushTokenSet;
    if (!req.delivery_redrives || !expired(stored.access_token)) return stored;
    return replaceExpiredSet(req, client, authReqId, req.push_tokens, stored);
  }
  if (req.status !== 'approved') throw new Rejected(`push tokens missing for a ${req.status} request`);
  const tokens = await mintPushTokens(req, client, authReqId);
  if (!tokens) return null;
  if (await store.storePushTokens(req.id, await seal(JSON.stringify(tokens), context), Date.now())) return tokens;
  // Another attempt minted first: deliver its set, never a second one.
  const current = await store.getAuthRequest(req.id);
  if (!current?.push_tokens) throw new Error('push tokens vanished');
  return JSON.parse(await unseal(current.push_tokens, context)) as PushTokenSet;
}

/** An access token (a JWT, RFC 9068) that expires within the next minute, or cannot be read, is of no use to send. */
function expired(accessToken: string): boolean {
  try {
    const { exp } = decodeJwt(accessToken);
    return typeof exp !== 'number' || exp * 1000 <= Date.now() + 60_000;
  } catch {
    return true;
  }
}

/** A redriven push whose stored set has expired: a fresh set replaces it (conditionally), the old family is revoked. */
async function replaceExpiredSet(
  req: AuthRequest,
  client: Client,
  authReqId: string,
  previousSealed: string,
  previous: PushTokenSet,
): Promise<PushTokenSet | null> {
  const context = sealContext.pushTokens(req.id);
  const tokens = await mintPushTokens(req, client, authReqId);
  if (!tokens) return null;
  if (!(await store.replacePushTokens(req.id, previousSealed, await seal(JSON.stringify(tokens), context)))) {
    // Another attempt replaced it first: deliver its set.
    const current = await store.getAuthRequest(req.id);
    if (!current?.push_tokens) throw new Error('push tokens vanished');
    return JSON.parse(await unseal(current.push_tokens, context)) as PushTokenSet;
  }
  if (previous.refresh_token) {
    const record = await store.getRefreshToken(previous.refresh_token);
    if (record) await store.revokeFamily(record.family, record.expires_at);
  }
  log.info('expired push tokens replaced after a redrive', { requestId: req.id, clientId: req.client_id });
  return tokens;
}

/** A push token set for the approved grant of `req`; null when the user is gone or disabled. */
async function mintPushTokens(req: AuthRequest, client: Client, authReqId: string): Promise<PushTokenSet | null> {
  const user = await store.getUser(req.sub);
  if (!user || user.disabled) return null;
  const set = await mintTokens(client, grantFromRequest(req, config().acrValues), randomId(16), { authReqId });
  // Push clients cannot use DPoP (client-metadata.ts): their tokens are Bearer tokens.
  const tokens: PushTokenSet = {
    access_token: set.access_token,
    token_type: 'Bearer',
    expires_in: set.expires_in,
    ...(set.refresh_token ? { refresh_token: set.refresh_token } : {}),
    id_token: set.id_token!,
    ...(set.scope !== req.scope ? { scope: set.scope } : {}),
    ...(set.authorization_details ? { authorization_details: set.authorization_details } : {}),
  };
  return tokens;
}

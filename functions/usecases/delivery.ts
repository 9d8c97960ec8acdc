// Delivering a ping or push notification to the client (CIBA Core §10.2, §10.3, §12): one attempt per delivery
// message, reported to the waiting workflow (core/notification.ts reportAttempt: success, retryable, or final and
// dead-lettered). Push tokens are minted once and re-sent unchanged.
import * as store from '../adapters/store.ts';
import { seal, sealContext, unseal } from '../adapters/sealer.ts';
import { postNotification, type DeliveryMessage } from '../adapters/delivery.ts';
import { sendDeliveryResult } from '../adapters/workflow.ts';
import {
  notificationBody,
  outcomeOf,
  reportAttempt,
  type AttemptReport,
  type AttemptResult,
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
        detail: `already ${req.delivery_status}`,
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
  await report(req, taskToken, reportAttempt(result, elapsed, cfg.deliveryWindow), attempt);
}

/**
 * End the delivery in the row when final (secrets dropped), then tell the workflow, and emit the metrics. The row goes
 * first: if telling the workflow fails, its retry finds the delivery already ended and only reports it.
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
  if (final && !req.delivery_status) await store.finishDelivery(req.id, error ? 'failed' : 'delivered', now);
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

/** The push token set: the stored one if an earlier attempt minted it, else minted now and stored (once). */
async function pushTokens(req: AuthRequest, client: Client, authReqId: string): Promise<PushTokenSet | null> {
  const context = sealContext.pushTokens(req.id);
  if (req.push_tokens) return JSON.parse(await unseal(req.push_tokens, context)) as PushTokenSet;
  if (req.status !== 'approved') throw new Rejected(`push tokens missing for a ${req.status} request`);
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
  if (await store.storePushTokens(req.id, await seal(JSON.stringify(tokens), context), Date.now())) return tokens;
  // Another attempt minted first: deliver its set, never a second one.
  const current = await store.getAuthRequest(req.id);
  if (!current?.push_tokens) throw new Error('push tokens vanished');
  return JSON.parse(await unseal(current.push_tokens, context)) as PushTokenSet;
}

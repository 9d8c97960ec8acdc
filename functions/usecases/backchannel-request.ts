// Starting a backchannel authentication request (CIBA Core §7.2 steps 4-5, §7.3): the user is resolved from the
// hint, the abuse limits are reserved (core/rate-limit.ts), the request row is recorded and its workflow started.
import { OAuthError } from '../core/errors.ts';
import type { BackchannelRequest } from '../core/backchannel-request.ts';
import { randomId, sha256b64u } from '../core/crypto.ts';
import type { DeliverySecrets } from '../core/notification.ts';
import { seal, sealContext } from '../adapters/sealer.ts';
import { REFRESH_GRANT, type AuthRequest, type Client } from '../core/model.ts';
import { createAuthRequest } from '../adapters/store.ts';
import { startAuthWorkflow } from '../adapters/workflow.ts';
import { admitUser, checkUserCode, Reservations, reserveClientQuota } from './rate-limit.ts';
import { resolveHint } from './hints.ts';
import { errorFields, log } from '../runtime/log.ts';
import { config } from '../config.ts';

/**
 * The request of an authenticated client, validated (§7.2 steps 1-3, 6): admitted and started, or refused with
 * whatever it reserved given back. Returns the new auth_req_id and the recorded row.
 */
export async function startBackchannelRequest(
  request: BackchannelRequest,
  client: Client,
  loginLookup: Promise<{ sub: string | undefined; login?: string }> | undefined,
): Promise<{ authReqId: string; record: AuthRequest }> {
  // §7.3: auth_req_id with 256 bits of entropy; stored only as its SHA-256, which is also the public request id.
  const authReqId = randomId(32);
  const id = sha256b64u(authReqId);
  // Ping/push (§10.2, §10.3): the notification needs the auth_req_id and the client's bearer token later; they are
  // kept sealed in the row until the delivery ends (functions/adapters/sealer.ts).
  const secrets: DeliverySecrets | undefined = request.notificationToken
    ? { auth_req_id: authReqId, client_notification_token: request.notificationToken }
    : undefined;
  const sealing = secrets ? seal(JSON.stringify(secrets), sealContext.deliverySecrets(id)) : Promise.resolve(undefined);
  sealing.catch(() => undefined);
  // Abuse limits (§14): reserved first, given back if the request is refused or cannot be started.
  const reservations = new Reservations();
  try {
    const record = await admit(request, client, id, loginLookup, sealing, reservations);
    await start(record, request.expiresIn);
    log.info('backchannel request accepted', {
      requestId: id,
      clientId: client.client_id,
      expiresIn: request.expiresIn,
    });
    return { authReqId, record };
  } catch (e) {
    await reservations.release();
    throw e;
  }
}

const unavailable = () =>
  new OAuthError('temporarily_unavailable', 'the request could not be started; try again', {
    headers: { 'Retry-After': '1' },
  });

/** §7.2 steps 4-5 and the abuse limits: the user is known and may be asked; the row to record. */
async function admit(
  request: BackchannelRequest,
  client: Client,
  id: string,
  loginLookup: Promise<{ sub: string | undefined; login?: string }> | undefined,
  sealing: Promise<string | undefined>,
  reservations: Reservations,
): Promise<AuthRequest> {
  const cfg = config();
  const now = Date.now();
  // The client's quota is counted while the hint resolves and the user's gate is passed (one round trip for all).
  const clientQuota = reserveClientQuota(client, Math.floor(now / 1000), reservations);
  // §7.2 steps 4-5: the hint must identify a known user who may be asked (settled by the gate).
  const resolved = await resolveHint(request.hint, client, loginLookup);
  const expiresAt = now + request.expiresIn * 1000;
  // §7.1 user_code before the user's own limits: a wrong code neither prompts the user nor uses their budget.
  if (request.userCode !== undefined) await checkUserCode(resolved.sub, request.userCode, Math.floor(now / 1000));
  const relookup = () => resolveHint(request.hint, client, undefined, true);
  // Both settle before either refusal is thrown, so whatever the other reserved is registered and given back.
  const [admitted, quota] = await Promise.allSettled([
    admitUser(resolved, relookup, id, expiresAt, reservations),
    clientQuota,
  ]);
  if (quota.status === 'rejected') throw quota.reason;
  if (admitted.status === 'rejected') throw admitted.reason;
  const sub = admitted.value;
  const deliverySecrets = await sealing.catch((e: unknown) => {
    log.error('sealing failed', { requestId: id, ...errorFields(e) });
    throw unavailable();
  });
  return {
    id,
    client_id: client.client_id,
    ...(client.client_name ? { client_name: client.client_name } : {}),
    sub,
    scope: request.scope,
    ...(request.authorizationDetails ? { authorization_details: request.authorizationDetails } : {}),
    ...(request.resource ? { resource: request.resource } : {}),
    ...(request.acrValues ? { acr_values: request.acrValues } : {}),
    ...(request.bindingMessage ? { binding_message: request.bindingMessage } : {}),
    mode: client.backchannel_token_delivery_mode,
    status: 'pending',
    created_at: now,
    expires_at: expiresAt,
    interval: cfg.pollInterval,
    next_poll_at: now,
    ...(deliverySecrets ? { delivery_secrets: deliverySecrets } : {}),
    // The first refresh token of a grant redeemed at the token endpoint is kept on this row (docs/tokens.md).
    ...(client.backchannel_token_delivery_mode !== 'push' && client.grant_types.includes(REFRESH_GRANT)
      ? { refresh_ttl_s: cfg.refreshTokenTtl }
      : {}),
  };
}

/**
 * Row and execution are written in parallel (one round trip): notify-device waits briefly for the row if the
 * workflow gets there first. If either write fails the client gets no auth_req_id; an execution left without a
 * row ends FAILED (RecordFailure), which alarms.
 */
async function start(record: AuthRequest, expiresIn: number): Promise<void> {
  const [stored, started] = await Promise.allSettled([
    createAuthRequest(record),
    startAuthWorkflow({ requestId: record.id, clientId: record.client_id, mode: record.mode, expiresIn }),
  ]);
  for (const [what, outcome] of [
    ['request row', stored],
    ['workflow start', started],
  ] as const) {
    if (outcome.status === 'rejected') {
      log.error(`${what} failed`, { requestId: record.id, ...errorFields(outcome.reason) });
      throw unavailable();
    }
  }
}

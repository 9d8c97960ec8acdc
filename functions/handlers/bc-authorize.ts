// POST /bc-authorize: the Backchannel Authentication Endpoint (CIBA Core §7). Validates, records the request,
// starts its workflow (which notifies the user's device) and acknowledges at once (§7.3).
import { parseForm } from '../core/params.ts';
import { validateBackchannelRequest, type BackchannelRequest } from '../core/backchannel-request.ts';
import { OAuthError } from '../core/errors.ts';
import { randomId, sha256b64u } from '../core/crypto.ts';
import type { AuthRequest, Client } from '../core/model.ts';
import type { DeliverySecrets } from '../core/notification.ts';
import { seal, sealContext } from '../adapters/sealer.ts';
import { createAuthRequest, findSubByLogin, getClient } from '../adapters/store.ts';
import { startAuthWorkflow } from '../adapters/workflow.ts';
import { checkUserCode, Reservations, reserveClientQuota, reserveUserLimits } from '../lib/abuse-limits.ts';
import { presentClient, verifyClient } from '../lib/client-authn.ts';
import { httpHandler, json, bodyText } from '../lib/http.ts';
import { errorFields, log } from '../lib/log.ts';
import { resolveHint } from '../lib/resolve-hint.ts';
import { unpackRequestObject } from '../lib/signed-request.ts';
import { config } from '../config.ts';

export const handler = httpHandler('bc-authorize', async (event) => {
  const cfg = config();
  const params = parseForm(event.headers['content-type'], bodyText(event));
  // A login_hint lookup does not depend on the client: start it now, use it only after the client is authenticated.
  const loginHint = params.has('request') ? undefined : params.get('login_hint');
  const loginLookup = loginHint ? findSubByLogin(loginHint) : undefined;
  loginLookup?.catch(() => undefined);

  // §7.2 step 1: the registered client authentication method.
  const presented = presentClient(event, params);
  const client = await verifyClient(await getClient(presented.credentials.clientId), presented);
  // §7.1.1: a signed request carries the parameters as claims of a request object.
  const signed = params.has('request');
  const requestParams = signed ? await unpackRequestObject(params, client) : params;
  // §7.2 steps 2-3, 6: parameters.
  const request = validateBackchannelRequest(requestParams, client, cfg, signed);
  // §7.3: auth_req_id with 256 bits of entropy; stored only as its SHA-256, which is also the public request id.
  const authReqId = randomId(32);
  const id = sha256b64u(authReqId);
  // Ping/push (§10.2, §10.3): the notification needs the auth_req_id and the client's bearer token later; they are
  // kept sealed in the row until the delivery ends (functions/adapters/sealer.ts).
  const sealing = request.notificationToken
    ? seal(JSON.stringify({ auth_req_id: authReqId, client_notification_token: request.notificationToken } satisfies DeliverySecrets), sealContext.deliverySecrets(id))
    : Promise.resolve(undefined);
  sealing.catch(() => undefined);
  // Abuse limits (§14): reserved first, given back if the request is refused or cannot be started.
  const reservations = new Reservations();
  try {
    const record = await admit(request, client, id, loginLookup, sealing, reservations);
    await start(record, request.expiresIn);
    log.info('backchannel request accepted', { requestId: record.id, clientId: record.client_id, expiresIn: request.expiresIn });
    return json(200, {
      auth_req_id: authReqId,
      expires_in: request.expiresIn,
      // §7.3: interval only for poll and ping clients.
      ...(record.mode === 'push' ? {} : { interval: record.interval }),
    });
  } catch (e) {
    await reservations.release();
    throw e;
  }
});

const unavailable = () =>
  new OAuthError('temporarily_unavailable', 'the request could not be started; try again', { headers: { 'Retry-After': '1' } });

/** §7.2 steps 4-5 and the abuse limits: the user is known and may be asked; the row to record. */
async function admit(
  request: BackchannelRequest, client: Client, id: string, loginLookup: Promise<string | undefined> | undefined,
  sealing: Promise<string | undefined>, reservations: Reservations,
): Promise<AuthRequest> {
  const cfg = config();
  const now = Date.now();
  const clientQuota = reserveClientQuota(client, Math.floor(now / 1000), reservations);
  // §7.2 steps 4-5: the hint must identify a known user.
  const sub = await resolveHint(request.hint, client, loginLookup);
  await clientQuota;
  const expiresAt = now + request.expiresIn * 1000;
  // §7.1 user_code before the user's own limits: a wrong code neither prompts the user nor uses their budget.
  if (request.userCode !== undefined) await checkUserCode(sub, request.userCode, Math.floor(now / 1000));
  await reserveUserLimits(sub, id, expiresAt, reservations);
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
    ...(request.acrValues ? { acr_values: request.acrValues } : {}),
    ...(request.bindingMessage ? { binding_message: request.bindingMessage } : {}),
    mode: client.backchannel_token_delivery_mode,
    status: 'pending',
    created_at: now,
    expires_at: expiresAt,
    interval: cfg.pollInterval,
    next_poll_at: now,
    ...(deliverySecrets ? { delivery_secrets: deliverySecrets } : {}),
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
  for (const [what, outcome] of [['request row', stored], ['workflow start', started]] as const) {
    if (outcome.status === 'rejected') {
      log.error(`${what} failed`, { requestId: record.id, ...errorFields(outcome.reason) });
      throw unavailable();
    }
  }
}

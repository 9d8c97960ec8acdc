// POST /bc-authorize: the Backchannel Authentication Endpoint (CIBA Core §7). Validates, records the request,
// starts its workflow (which notifies the user's device) and acknowledges at once (§7.3).
import { httpHandler, json, bodyText } from '../lib/http.ts';
import { parseForm } from '../core/params.ts';
import { authenticateClient, presentedCredentials } from '../core/client-auth.ts';
import { validateBackchannelRequest } from '../core/backchannel-request.ts';
import { OAuthError } from '../core/errors.ts';
import { randomId, sha256b64u, verifyUserCode } from '../core/crypto.ts';
import type { AuthRequest } from '../core/model.ts';
import { sealContext, type DeliverySecrets } from '../core/notification.ts';
import { seal } from '../adapters/sealer.ts';
import { createAuthRequest, findSubByLogin, getClient, getUser } from '../adapters/store.ts';
import { startAuthWorkflow } from '../adapters/workflow.ts';
import { config } from '../config.ts';
import { errorFields, log } from '../lib/log.ts';

export const handler = httpHandler('bc-authorize', async (event) => {
  const cfg = config();
  const params = parseForm(event.headers['content-type'], bodyText(event));
  // The user lookup does not depend on the client: start it now, use it only after the client is authenticated.
  const loginHint = params.get('login_hint');
  const subLookup = loginHint ? findSubByLogin(loginHint) : Promise.resolve(undefined);
  subLookup.catch(() => undefined);

  // §7.2 step 1: the registered client authentication method.
  const presented = presentedCredentials(event.headers.authorization, params);
  const client = authenticateClient(await getClient(presented.clientId), presented);
  // §7.2 steps 2-3, 6: parameters.
  const request = validateBackchannelRequest(params, client, cfg);
  // §7.3: auth_req_id with 256 bits of entropy; stored only as its SHA-256, which is also the public request id.
  const authReqId = randomId(32);
  const id = sha256b64u(authReqId);
  // Ping/push (§10.2, §10.3): the notification needs the auth_req_id and the client's bearer token later; they are
  // kept sealed in the row until the delivery ends (functions/adapters/sealer.ts).
  const sealing = request.notificationToken
    ? seal(JSON.stringify({ auth_req_id: authReqId, client_notification_token: request.notificationToken } satisfies DeliverySecrets), sealContext.secrets(id))
    : Promise.resolve(undefined);
  sealing.catch(() => undefined);
  // §7.2 steps 4-5: the hint must identify a known user.
  const sub = await subLookup;
  if (!sub) throw new OAuthError('unknown_user_id', 'the hint does not identify a known user');
  if (request.userCode !== undefined) {
    const user = await getUser(sub);
    if (!user?.user_code_hash || !(await verifyUserCode(request.userCode, user.user_code_hash))) {
      throw new OAuthError('invalid_user_code', 'user_code is invalid');
    }
  }

  const deliverySecrets = await sealing.catch((e: unknown) => {
    log.error('sealing failed', { requestId: id, ...errorFields(e) });
    throw new OAuthError('temporarily_unavailable', 'the request could not be started; try again', { headers: { 'Retry-After': '1' } });
  });
  const now = Date.now();
  const record: AuthRequest = {
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
    expires_at: now + request.expiresIn * 1000,
    interval: cfg.pollInterval,
    next_poll_at: now,
    ...(deliverySecrets ? { delivery_secrets: deliverySecrets } : {}),
  };
  // Row and execution are written in parallel (one round trip): notify-device waits briefly for the row if the
  // workflow gets there first. If either write fails the client gets no auth_req_id; an execution left without a
  // row ends FAILED (RecordFailure), which alarms.
  const [stored, started] = await Promise.allSettled([
    createAuthRequest(record),
    startAuthWorkflow({ requestId: record.id, clientId: record.client_id, mode: record.mode, expiresIn: request.expiresIn }),
  ]);
  for (const [what, outcome] of [['request row', stored], ['workflow start', started]] as const) {
    if (outcome.status === 'rejected') {
      log.error(`${what} failed`, { requestId: record.id, ...errorFields(outcome.reason) });
      throw new OAuthError('temporarily_unavailable', 'the request could not be started; try again', { headers: { 'Retry-After': '1' } });
    }
  }
  log.info('backchannel request accepted', { requestId: record.id, clientId: record.client_id, expiresIn: request.expiresIn });
  return json(200, {
    auth_req_id: authReqId,
    expires_in: request.expiresIn,
    // §7.3: interval only for poll and ping clients.
    ...(record.mode === 'push' ? {} : { interval: record.interval }),
  });
});

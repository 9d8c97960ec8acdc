// POST /bc-authorize: the Backchannel Authentication Endpoint (CIBA Core §7). Validates, records the request,
// starts its workflow (which notifies the user's device) and acknowledges at once (§7.3).
import { httpHandler, json, bodyText } from '../lib/http.ts';
import { parseForm } from '../core/params.ts';
import { requestObjectAlgorithms, validateBackchannelRequest } from '../core/backchannel-request.ts';
import { checkOnlyRequestObject, verifyRequestObject } from '../core/request-object.ts';
import type { Client } from '../core/model.ts';
import type { Params } from '../core/params.ts';
import { presentClient, verifyClient } from '../lib/client-authn.ts';
import { resolveHint } from '../lib/resolve-hint.ts';
import { clientKeys } from '../adapters/client-keys.ts';
import { OAuthError } from '../core/errors.ts';
import { randomId, sha256b64u, verifyUserCode } from '../core/crypto.ts';
import type { AuthRequest } from '../core/model.ts';
import { sealContext, type DeliverySecrets } from '../core/notification.ts';
import { seal } from '../adapters/sealer.ts';
import { countInWindow, createAuthRequest, findSubByLogin, getClient, getUser, readWindow, useOnce } from '../adapters/store.ts';
import { enforce, tooManyRequests, windowOf, type Limit } from '../core/rate-limit.ts';
import { startAuthWorkflow } from '../adapters/workflow.ts';
import { config } from '../config.ts';
import { errorFields, log } from '../lib/log.ts';

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
    ? seal(JSON.stringify({ auth_req_id: authReqId, client_notification_token: request.notificationToken } satisfies DeliverySecrets), sealContext.secrets(id))
    : Promise.resolve(undefined);
  sealing.catch(() => undefined);
  // Abuse limits (§14): per client, counted in parallel with the rest; per user once the user is known.
  const nowS = Math.floor(Date.now() / 1000);
  const clientCount = count(cfg.limits.client, `client#${client.client_id}`, nowS);
  clientCount.catch(() => undefined);
  // §7.2 steps 4-5: the hint must identify a known user.
  const sub = await resolveHint(request.hint, client, loginLookup);
  const [clients, users] = await Promise.all([clientCount, count(cfg.limits.user, `user#${sub}`, nowS)]);
  enforce(cfg.limits.client, clients, 'backchannel requests from this client', nowS);
  enforce(cfg.limits.user, users, 'backchannel requests for this user', nowS);
  if (request.userCode !== undefined) await checkUserCode(sub, request.userCode, cfg.limits.userCode, nowS);

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

function count(limit: Limit, key: string, nowS: number): Promise<number> {
  const { start, end } = windowOf(limit, nowS);
  return countInWindow(key, start, end);
}

/** §7.1 user_code, with a limit on failed attempts per user (guessing a user code must not be feasible). */
async function checkUserCode(sub: string, userCode: string, limit: Limit, nowS: number): Promise<void> {
  const key = `usercode-failures#${sub}`;
  const { start, retryAfter } = windowOf(limit, nowS);
  const [failures, user] = await Promise.all([readWindow(key, start, nowS), getUser(sub)]);
  if (failures >= limit.count) throw tooManyRequests('failed user_code attempts for this user', retryAfter);
  if (!user?.user_code_hash || !(await verifyUserCode(userCode, user.user_code_hash))) {
    await count(limit, key, nowS);
    throw new OAuthError('invalid_user_code', 'user_code is invalid');
  }
}

/** §7.1.1 signed authentication request: only `request` (and client authentication) in the form; the JWT verified; its jti used once. */
async function unpackRequestObject(params: Params, client: Client): Promise<Params> {
  checkOnlyRequestObject(params);
  const keys = clientKeys(client);
  if (!keys) throw new OAuthError('invalid_request', 'the client has no registered keys to verify a request object with');
  const now = Math.floor(Date.now() / 1000);
  const verified = await verifyRequestObject(params.get('request')!, keys, {
    issuer: config().issuer,
    clientId: client.client_id,
    algorithms: requestObjectAlgorithms(client),
    now,
    clockTolerance: 30,
    maxLifetime: 3600,
    maxAge: 3600,
  });
  if (!(await useOnce(`request#${client.client_id}`, verified.jti, verified.exp + 30, now))) throw new OAuthError('invalid_request', 'the request object has been used before (jti)');
  return verified.params;
}

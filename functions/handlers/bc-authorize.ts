// POST /bc-authorize: the Backchannel Authentication Endpoint (CIBA Core §7). Validates, records the request,
// starts its workflow (which notifies the user's device) and acknowledges at once (§7.3).
import { parseForm } from '../core/params.ts';
import { validateBackchannelRequest } from '../core/backchannel-request.ts';
import { lookupLogin } from '../adapters/store.ts';
import { startBackchannelRequest } from '../usecases/backchannel-request.ts';
import { presentClient, authenticate } from '../usecases/client-auth.ts';
import { unpackRequestObject } from '../usecases/request-object.ts';
import { httpHandler, json, bodyText } from '../runtime/http.ts';
import { config } from '../config.ts';

export const handler = httpHandler('bc-authorize', async (event) => {
  const cfg = config();
  // RFC 8707 §2: resource may be repeated.
  const params = parseForm(event.headers['content-type'], bodyText(event), ['resource']);
  // A login_hint lookup does not depend on the client: start it now, use it only after the client is authenticated.
  const loginHint = params.has('request') ? undefined : params.get('login_hint');
  const loginLookup = loginHint ? lookupLogin(loginHint) : undefined;
  loginLookup?.catch(() => undefined);

  // §7.2 step 1: the registered client authentication method.
  const presented = presentClient(event, params);
  const client = await authenticate(presented);
  // §7.1.1: a signed request carries the parameters as claims of a request object.
  const signed = params.has('request');
  const requestParams = signed ? await unpackRequestObject(params, client) : params;
  // §7.2 steps 2-3, 6: parameters.
  const request = validateBackchannelRequest(requestParams, client, cfg, signed);
  const { authReqId, record } = await startBackchannelRequest(request, client, loginLookup);
  return json(200, {
    auth_req_id: authReqId,
    expires_in: request.expiresIn,
    // §7.3: interval only for poll and ping clients.
    ...(record.mode === 'push' ? {} : { interval: record.interval }),
  });
});

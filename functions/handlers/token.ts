// POST /token: the CIBA grant (CIBA Core §10.1, §11) and refresh_token (RFC 6749 §6) at the token endpoint, with
// DPoP-bound tokens (RFC 9449) when the request carries a proof.
import { httpHandler, json, bodyText } from '../runtime/http.ts';
import { parseForm } from '../core/params.ts';
import { tokenError } from '../core/errors.ts';
import { CIBA_GRANT, REFRESH_GRANT } from '../core/model.ts';
import { presentClient } from '../usecases/client-auth.ts';
import { cibaGrant } from '../usecases/ciba-grant.ts';
import { refreshGrant } from '../usecases/refresh-grant.ts';
import { checkDPoP, withHeaders } from '../usecases/dpop.ts';
import { PATHS } from '../routes.ts';

const GRANTS = { [CIBA_GRANT]: cibaGrant, [REFRESH_GRANT]: refreshGrant } as const;

export const handler = httpHandler('token', async (event) => {
  // RFC 8707 §2.2: resource may be repeated.
  const params = parseForm(event.headers['content-type'], bodyText(event), ['resource']);
  const grantType = params.get('grant_type');
  if (!grantType) throw tokenError('invalid_request', 'grant_type is required');
  const grant = Object.hasOwn(GRANTS, grantType) ? GRANTS[grantType as keyof typeof GRANTS] : undefined;
  if (!grant) throw tokenError('unsupported_grant_type', 'unsupported grant_type');
  // RFC 9449 §4.3: a DPoP proof is checked before the client and the grant are looked up or anything is used.
  const dpop = await checkDPoP(event, PATHS.token);
  try {
    // The token response (OIDC Core §3.1.3.3): JWT access token, ID token, a refresh token for clients allowed one.
    return json(200, await grant(params, presentClient(event, params), dpop.proof), dpop.headers);
  } catch (e) {
    throw withHeaders(e, dpop.headers);
  }
});

// POST /revoke: token revocation (RFC 7009), with the client's registered authentication method.
import { OAuthError } from '../core/errors.ts';
import { parseForm } from '../core/params.ts';
import { presentClient, authenticate } from '../usecases/client-auth.ts';
import { revokeToken } from '../usecases/token-status.ts';
import { bodyText, httpHandler, json } from '../runtime/http.ts';

export const handler = httpHandler('revoke', async (event) => {
  const params = parseForm(event.headers['content-type'], bodyText(event));
  const presented = presentClient(event, params);
  const client = await authenticate(presented);
  const token = params.get('token');
  if (!token) throw new OAuthError('invalid_request', 'token is required');
  await revokeToken(client, token, params.get('token_type_hint'));
  // RFC 7009 §2.2: 200 whether or not there was anything to revoke.
  return json(200, {});
});

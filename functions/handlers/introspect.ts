// POST /introspect: token introspection (RFC 7662) for the client the token was issued to; a signed JWT response
// (RFC 9701) when the client accepts application/token-introspection+jwt.
import { OAuthError } from '../core/errors.ts';
import { parseForm } from '../core/params.ts';
import { INTROSPECTION_JWT_TYPE } from '../core/token-status.ts';
import { presentClient, authenticate } from '../usecases/client-auth.ts';
import { introspectToken } from '../usecases/token-status.ts';
import { bodyText, httpHandler, json, NO_STORE } from '../runtime/http.ts';

export const handler = httpHandler('introspect', async (event) => {
  const params = parseForm(event.headers['content-type'], bodyText(event));
  const presented = presentClient(event, params);
  const client = await authenticate(presented);
  const token = params.get('token');
  if (!token) throw new OAuthError('invalid_request', 'token is required');
  const asJwt = (event.headers.accept ?? '').toLowerCase().includes(INTROSPECTION_JWT_TYPE);
  const answer = await introspectToken(client, token, params.get('token_type_hint'), asJwt);
  if ('json' in answer) return json(200, answer.json);
  return { statusCode: 200, headers: { 'Content-Type': INTROSPECTION_JWT_TYPE, ...NO_STORE }, body: answer.jwt };
});

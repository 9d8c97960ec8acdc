// GET|POST /userinfo (OIDC Core §5.3): functions/usecases/userinfo.ts.
import { httpHandler, json, NO_STORE } from '../runtime/http.ts';
import { userinfo } from '../usecases/userinfo.ts';

export const handler = httpHandler('userinfo', async (event) => {
  const answer = await userinfo(event);
  if (answer.kind === 'unauthenticated') {
    return { statusCode: 401, headers: { 'WWW-Authenticate': 'Bearer realm="ciba"', ...NO_STORE } };
  }
  return json(200, answer.claims, answer.headers);
});

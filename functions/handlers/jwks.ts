// GET and HEAD /jwks: the public signing keys (RFC 7517), for ID tokens and RFC 9068 access tokens.
import { httpHandler, json } from '../runtime/http.ts';
import { jwks } from '../adapters/keys.ts';

export const handler = httpHandler('jwks', async () => {
  const set = await jwks();
  return json(200, set, {
    'Content-Type': 'application/jwk-set+json',
    // With signingKeys 'sealed' the set is empty until the first token is signed: not worth caching then.
    'Cache-Control': set.keys.length > 0 ? 'public, max-age=300' : 'no-store',
    Pragma: '',
  });
});

// GET and HEAD /jwks: the public signing keys (RFC 7517), for ID tokens and RFC 9068 access tokens.
import { httpHandler, json } from '../runtime/http.ts';
import { jwks } from '../adapters/keys.ts';

export const handler = httpHandler('jwks', async () =>
  json(200, await jwks(), {
    'Content-Type': 'application/jwk-set+json',
    'Cache-Control': 'public, max-age=300',
    Pragma: '',
  }),
);

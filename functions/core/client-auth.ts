// Client authentication at the backchannel and token endpoints (CIBA §7.1, RFC 6749 §2.3): the client must use
// its registered method and only one method per request.
import { OAuthError } from './errors.ts';
import { verifyClientSecret } from './crypto.ts';
import { CLIENT_ID_SYNTAX, type Client, type ClientAuthMethod } from './model.ts';
import type { Params } from './params.ts';

export type PresentedCredentials = { clientId: string; method: ClientAuthMethod; secret: string };

const basicChallenge = { 'WWW-Authenticate': 'Basic realm="ciba", charset="UTF-8"' };

/** RFC 6749 §2.3.1: client_id and secret are form-urlencoded before base64 in the Basic header. */
function decodeBasic(header: string): { clientId: string; secret: string } {
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1) throw new OAuthError('invalid_client', 'malformed Basic credentials', { headers: basicChallenge });
  const unescape = (s: string) => {
    try {
      return decodeURIComponent(s.replace(/\+/g, ' '));
    } catch {
      throw new OAuthError('invalid_client', 'malformed Basic credentials', { headers: basicChallenge });
    }
  };
  return { clientId: unescape(decoded.slice(0, colon)), secret: unescape(decoded.slice(colon + 1)) };
}

/** The client side of RFC 6749 §2.3.1: form-urlencode id and secret, then base64 (for RPs, tests and the bench). */
export function encodeBasic(clientId: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return 'Basic ' + Buffer.from(`${enc(clientId)}:${enc(secret)}`).toString('base64');
}

/** What the request presents; exactly one method. A client_id no client can have fails before any lookup. */
export function presentedCredentials(authorization: string | undefined, params: Params): PresentedCredentials {
  const presented = presentedUnchecked(authorization, params);
  if (!CLIENT_ID_SYNTAX.test(presented.clientId)) {
    throw new OAuthError('invalid_client', 'client authentication failed', presented.method === 'client_secret_basic' ? { headers: basicChallenge } : {});
  }
  return presented;
}

function presentedUnchecked(authorization: string | undefined, params: Params): PresentedCredentials {
  const basic = authorization?.toLowerCase().startsWith('basic ') ? decodeBasic(authorization) : undefined;
  const postSecret = params.get('client_secret');
  if (basic && postSecret) throw new OAuthError('invalid_request', 'more than one client authentication method used');
  if (basic) {
    const bodyId = params.get('client_id');
    if (bodyId !== undefined && bodyId !== basic.clientId) throw new OAuthError('invalid_client', 'client_id does not match the credentials', { headers: basicChallenge });
    return { clientId: basic.clientId, method: 'client_secret_basic', secret: basic.secret };
  }
  const clientId = params.get('client_id');
  if (!clientId) throw new OAuthError('invalid_client', 'client authentication is required', { headers: basicChallenge });
  if (!postSecret) throw new OAuthError('invalid_client', 'client authentication is required');
  return { clientId, method: 'client_secret_post', secret: postSecret };
}

/** Check presented credentials against the registered client; failures are invalid_client (401). */
export function authenticateClient(client: Client | undefined, presented: PresentedCredentials): Client {
  const headers = presented.method === 'client_secret_basic' ? basicChallenge : undefined;
  const fail = (why: string) => new OAuthError('invalid_client', why, headers ? { headers } : {});
  if (!client) throw fail('client authentication failed');
  if (client.token_endpoint_auth_method !== presented.method) throw fail(`this client must authenticate with ${client.token_endpoint_auth_method}`);
  if (!client.client_secret_hash || !verifyClientSecret(presented.secret, client.client_secret_hash)) throw fail('client authentication failed');
  return client;
}

// Client authentication at the backchannel and token endpoints (CIBA §7.1, RFC 6749 §2.3): the client must use
// its registered method and only one method per request. What is presented is read here; secrets are checked here;
// JWT assertions (jwt-assertion.ts) and certificates (mtls.ts) are checked by functions/usecases/client-auth.ts, which
// needs keys, the replay cache and the TLS layer.
import { OAuthError } from './errors.ts';
import { verifyClientSecret } from './crypto.ts';
import { assertionClientId, assertionParams } from './jwt-assertion.ts';
import { CLIENT_ID_SYNTAX, type Client, type ClientAuthMethod } from './model.ts';
import type { Params } from './params.ts';

export type PresentedCredentials =
  | { clientId: string; kind: 'secret'; method: 'client_secret_basic' | 'client_secret_post'; secret: string }
  /** RFC 7523 §2.2 client_secret_jwt or private_key_jwt (which one is the registered method's business). */
  | { clientId: string; kind: 'assertion'; assertion: string }
  /** RFC 8705 §2: client_id in the form, identity from the TLS client certificate. */
  | { clientId: string; kind: 'certificate' };

/** Which registered methods each presented kind can satisfy. */
const METHODS_FOR: Record<PresentedCredentials['kind'], readonly ClientAuthMethod[]> = {
  secret: ['client_secret_basic', 'client_secret_post'],
  assertion: ['client_secret_jwt', 'private_key_jwt'],
  certificate: ['tls_client_auth', 'self_signed_tls_client_auth'],
};

const basicChallenge = { 'WWW-Authenticate': 'Basic realm="ciba", charset="UTF-8"' };

/** RFC 6749 §2.3.1: client_id and secret are form-urlencoded before base64 in the Basic header. */
function decodeBasic(header: string): { clientId: string; secret: string } {
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1) throw new OAuthError('invalid_client', 'malformed Basic credentials', { headers: basicChallenge });
  const decodeComponent = (s: string) => {
    try {
      return decodeURIComponent(s.replace(/\+/g, ' '));
    } catch {
      throw new OAuthError('invalid_client', 'malformed Basic credentials', { headers: basicChallenge });
    }
  };
  return { clientId: decodeComponent(decoded.slice(0, colon)), secret: decodeComponent(decoded.slice(colon + 1)) };
}

/** The client side of RFC 6749 §2.3.1: form-urlencode id and secret, then base64 (for RPs, tests and the bench). */
export function encodeBasic(clientId: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return 'Basic ' + Buffer.from(`${enc(clientId)}:${enc(secret)}`).toString('base64');
}

/**
 * What the request presents; exactly one method (RFC 6749 §2.3: "MUST NOT use more than one"). A TLS client
 * certificate counts only when nothing else is presented (it may also be there to bind tokens, RFC 8705 §3).
 * A client_id no client can have fails before any lookup.
 */
export function presentedCredentials(
  authorization: string | undefined,
  params: Params,
  hasCertificate = false,
): PresentedCredentials {
  const presented = presentedUnchecked(authorization, params, hasCertificate);
  if (!CLIENT_ID_SYNTAX.test(presented.clientId)) throw failure(presented, 'client authentication failed');
  return presented;
}

function presentedUnchecked(
  authorization: string | undefined,
  params: Params,
  hasCertificate: boolean,
): PresentedCredentials {
  const basic = authorization?.toLowerCase().startsWith('basic ') ? decodeBasic(authorization) : undefined;
  const postSecret = params.get('client_secret');
  const assertion = assertionParams(params);
  if ([basic, postSecret, assertion].filter((m) => m !== undefined).length > 1)
    throw new OAuthError('invalid_request', 'more than one client authentication method used');
  const bodyId = params.get('client_id');
  if (basic) {
    if (bodyId !== undefined && bodyId !== basic.clientId)
      throw new OAuthError('invalid_client', 'client_id does not match the credentials', { headers: basicChallenge });
    return { clientId: basic.clientId, kind: 'secret', method: 'client_secret_basic', secret: basic.secret };
  }
  if (assertion) {
    // RFC 7523 §3: the assertion's sub is the client; a client_id parameter, when sent, must name the same client.
    const clientId = bodyId ?? assertionClientId(assertion.assertion);
    if (!clientId) throw new OAuthError('invalid_client', 'client_assertion does not name a client (sub)');
    return { clientId, kind: 'assertion', assertion: assertion.assertion };
  }
  if (!bodyId) throw new OAuthError('invalid_client', 'client authentication is required', { headers: basicChallenge });
  if (postSecret) return { clientId: bodyId, kind: 'secret', method: 'client_secret_post', secret: postSecret };
  if (hasCertificate) return { clientId: bodyId, kind: 'certificate' };
  throw new OAuthError('invalid_client', 'client authentication is required');
}

/** invalid_client (401), with the Basic challenge when Basic credentials were presented (RFC 6749 §5.2). */
export function failure(presented: PresentedCredentials, why: string): OAuthError {
  return new OAuthError(
    'invalid_client',
    why,
    presented.kind === 'secret' && presented.method === 'client_secret_basic' ? { headers: basicChallenge } : {},
  );
}

/**
 * The registered client and the presented method agree (CIBA §7.1: "the registered authentication method"); for
 * secrets, also the secret. Assertions and certificates are checked by the caller. Failures are invalid_client (401).
 */
export function authenticateClient(client: Client | undefined, presented: PresentedCredentials): Client {
  if (!client) throw failure(presented, 'client authentication failed');
  const registered = client.token_endpoint_auth_method;
  const matches =
    presented.kind === 'secret' ? registered === presented.method : METHODS_FOR[presented.kind].includes(registered);
  if (!matches) throw failure(presented, `this client must authenticate with ${registered}`);
  if (
    presented.kind === 'secret' &&
    (!client.client_secret_hash || !verifyClientSecret(presented.secret, client.client_secret_hash))
  ) {
    throw failure(presented, 'client authentication failed');
  }
  return client;
}

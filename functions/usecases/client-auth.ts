// Client authentication with I/O (CIBA §7.1, RFC 6749 §2.3, RFC 7523, RFC 8705): reads what the request presents,
// then checks it against the registered client — secrets (core/client-auth.ts), JWT assertions with their replay
// cache (core/jwt-assertion.ts), TLS client certificates (core/mtls.ts). Used by the backchannel and token endpoints.
import type { X509Certificate } from 'node:crypto';
import { authenticateClient, failure, presentedCredentials, type PresentedCredentials } from '../core/client-auth.ts';
import { verifyClientAssertion, type AssertionKey } from '../core/jwt-assertion.ts';
import { mtlsRequirement } from '../core/client-metadata.ts';
import { certificateCurrent, matchesSelfSigned, matchesTlsClientAuth, parseClientCertificate } from '../core/mtls.ts';
import { ASSERTION_ALGS, FAPI_ALGS } from '../core/capabilities.ts';
import { CIBA_GRANT, type Client } from '../core/model.ts';
import { tokenError } from '../core/errors.ts';
import type { Params } from '../core/params.ts';
import { PATHS } from '../routes.ts';
import { clientKeys } from '../adapters/client-keys.ts';
import { sealContext, unseal } from '../adapters/sealer.ts';
import { getClient, getClientCached, useOnce } from '../adapters/store.ts';
import { OAuthError } from '../core/errors.ts';
import { config } from '../config.ts';
import type { HttpEvent } from '../runtime/http.ts';

/** An assertion may live at most this long from now (seconds); a JWT with a longer life is refused. */
const ASSERTION_MAX_LIFETIME = 600;
const CLOCK_TOLERANCE = 30;

export type Presented = { credentials: PresentedCredentials; certificate?: X509Certificate };

/** The TLS client certificate API Gateway (mTLS custom domain) or the local HTTPS listener passed along, if any. */
export function presentedCertificate(event: HttpEvent): X509Certificate | undefined {
  const pem = (event.requestContext as { authentication?: { clientCert?: { clientCertPem?: string } } }).authentication
    ?.clientCert?.clientCertPem;
  return pem ? parseClientCertificate(pem) : undefined;
}

/** What the request presents (no I/O): look the client up with `credentials.clientId`, then call verifyClient. */
export function presentClient(event: HttpEvent, params: Params): Presented {
  const certificate = presentedCertificate(event);
  const credentials = presentedCredentials(event.headers.authorization, params, certificate !== undefined);
  return certificate ? { credentials, certificate } : { credentials };
}

/** The endpoints a client assertion may be addressed to (RFC 7523 §3 aud): issuer, token and backchannel endpoints, and their mTLS aliases. */
export function assertionAudiences(): string[] {
  const cfg = config();
  const bases = [cfg.issuer, ...(cfg.mtlsBaseUrl ? [cfg.mtlsBaseUrl] : [])];
  return [cfg.issuer, ...bases.flatMap((b) => [b + PATHS.token, b + PATHS.backchannel])];
}

/** Authenticates `presented` as the registered client `registered`; every failure is invalid_client (401). */
export async function verifyClient(registered: Client | undefined, presented: Presented): Promise<Client> {
  const { credentials } = presented;
  // A client stored (by an earlier seed) that needs a TLS client certificate, on a server without an mTLS endpoint:
  // refused before anything else, at either endpoint, rather than at the token endpoint after the user approved.
  const needsMtls = registered && mtlsRequirement(registered, config().mtlsBaseUrl !== undefined);
  if (needsMtls) throw failure(credentials, needsMtls);
  const client = authenticateClient(registered, credentials);
  const now = Math.floor(Date.now() / 1000);
  if (credentials.kind === 'assertion') {
    const fapi = client.security_profile === 'fapi-ciba';
    const secretJwt = client.token_endpoint_auth_method === 'client_secret_jwt';
    let key: AssertionKey | undefined;
    if (secretJwt) {
      if (!client.client_secret_sealed) throw failure(credentials, 'client authentication failed');
      key = new TextEncoder().encode(
        await unseal(client.client_secret_sealed, sealContext.clientSecret(client.client_id)),
      );
    } else {
      key = clientKeys(client);
      if (!key) throw failure(credentials, 'the client has no registered keys');
    }
    const algorithms = secretJwt
      ? ['HS256']
      : client.token_endpoint_auth_signing_alg
        ? [client.token_endpoint_auth_signing_alg]
        : fapi
          ? FAPI_ALGS
          : ASSERTION_ALGS;
    const { jti, exp } = await verifyClientAssertion(credentials.assertion, key, {
      clientId: client.client_id,
      audiences: assertionAudiences(),
      algorithms,
      now,
      clockTolerance: CLOCK_TOLERANCE,
      maxLifetime: ASSERTION_MAX_LIFETIME,
    });
    // RFC 7523 §3 item 7: a jti is used once.
    if (!(await useOnce(`assertion#${client.client_id}`, jti, exp + CLOCK_TOLERANCE, now)))
      throw failure(credentials, 'client_assertion has been used before (jti)');
    return client;
  }
  if (credentials.kind === 'certificate') {
    const cert = presented.certificate;
    if (!cert) throw failure(credentials, 'a TLS client certificate is required');
    if (!certificateCurrent(cert, now))
      throw failure(credentials, 'the client certificate is expired or not yet valid');
    const ok =
      client.token_endpoint_auth_method === 'tls_client_auth'
        ? matchesTlsClientAuth(cert, client)
        : await matchesSelfSigned(cert, client.jwks ?? { keys: [] });
    if (!ok) throw failure(credentials, 'the client certificate does not match the registered client');
  }
  return client;
}

/**
 * The client the request presents, authenticated against its registration: a recently read one when this instance
 * has it (CIBA_CLIENT_CACHE_SECONDS), so a request usually costs no read for it. If that fails, the registration may
 * just have changed (a new secret, key or certificate): it is read again and checked once more.
 */
export async function authenticate(presented: Presented): Promise<Client> {
  const clientId = presented.credentials.clientId;
  const { client, cached } = await getClientCached(clientId);
  try {
    return await verifyClient(client, presented);
  } catch (e) {
    if (!cached || !(e instanceof OAuthError) || e.error !== 'invalid_client') throw e;
    return verifyClient(await getClient(clientId), presented);
  }
}

/**
 * A grant's client at the token endpoint: authenticated while the grant's own record is read (`read`, in parallel),
 * and registered for `grantType` (RFC 6749 §5.2 unauthorized_client).
 */
export async function authenticateForGrant<T>(
  presented: Presented,
  grantType: string,
  read: Promise<T>,
): Promise<{ client: Client; record: Awaited<T> }> {
  read.catch(() => undefined);
  const [client, record] = await Promise.all([authenticateForGrantType(presented, grantType), read]);
  return { client, record };
}

/** A grant's client at the token endpoint: authenticated, and registered for `grantType` (RFC 6749 §5.2). */
export async function authenticateForGrantType(presented: Presented, grantType: string): Promise<Client> {
  const client = await authenticate(presented);
  if (!client.grant_types.includes(grantType)) {
    const what = grantType === CIBA_GRANT ? 'the CIBA grant' : grantType;
    throw tokenError('unauthorized_client', `the client is not registered for ${what}`);
  }
  return client;
}

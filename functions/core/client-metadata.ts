// Client registration metadata (RFC 7591 names + CIBA Core §4): validates what a seed file or a registration
// path supplies and turns it into a Client record. Errors name the field, for seed authors.
import { CLIENT_AUTH_METHODS, DELIVERY_MODES, GRANT_TYPES, ID_TOKEN_ALGS, SCOPES } from './capabilities.ts';
import { CIBA_GRANT, CLIENT_ID_SYNTAX, type Client, type ClientAuthMethod, type DeliveryMode, type SigningAlg } from './model.ts';
import { hashClientSecret } from './crypto.ts';

export class ClientMetadataError extends Error {
  override readonly name = 'ClientMetadataError';
}

type Raw = Record<string, unknown>;

function optionalString(raw: Raw, key: string): string | undefined {
  const v = raw[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new ClientMetadataError(`${key} must be a non-empty string`);
  return v;
}

function oneOf<T extends string>(raw: Raw, key: string, allowed: readonly T[], fallback: T): T {
  const v = raw[key] ?? fallback;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new ClientMetadataError(`${key} must be one of ${allowed.join(', ')} (got ${JSON.stringify(v)})`);
  }
  return v as T;
}

/** CIBA §4: the notification endpoint is an https URL (loopback http only on the local stack, CONTRACT.md), no fragment. */
export function validateNotificationEndpoint(value: string, localMode: boolean): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ClientMetadataError('backchannel_client_notification_endpoint must be an absolute URL');
  }
  if (url.hash || value.includes('#')) throw new ClientMetadataError('backchannel_client_notification_endpoint must not have a fragment');
  const loopback = url.hostname === 'localhost' || url.hostname === '127.0.0.1';
  if (url.protocol !== 'https:' && !(localMode && url.protocol === 'http:' && loopback)) {
    throw new ClientMetadataError('backchannel_client_notification_endpoint must be https' + (localMode ? ' (or http on localhost/127.0.0.1 locally)' : ''));
  }
  return value;
}

/** Validate raw client metadata; returns the Client to store (secret hashed). */
export function parseClientMetadata(raw: unknown, options: { localMode: boolean }): Client {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ClientMetadataError('client metadata must be an object');
  const r = raw as Raw;
  const clientId = optionalString(r, 'client_id');
  if (!clientId || !CLIENT_ID_SYNTAX.test(clientId)) throw new ClientMetadataError('client_id must be 1-128 printable ASCII characters');
  const method = oneOf<ClientAuthMethod>(r, 'token_endpoint_auth_method', CLIENT_AUTH_METHODS, 'client_secret_basic');
  const secret = optionalString(r, 'client_secret');
  if (!secret) throw new ClientMetadataError(`client ${clientId}: client_secret is required for ${method}`);
  if (secret.length < 16) throw new ClientMetadataError(`client ${clientId}: client_secret must be at least 16 characters`);

  const grantTypes = r.grant_types ?? [CIBA_GRANT];
  if (!Array.isArray(grantTypes) || !grantTypes.every((g) => typeof g === 'string' && GRANT_TYPES.includes(g))) {
    throw new ClientMetadataError(`client ${clientId}: grant_types must be a subset of ${GRANT_TYPES.join(', ')}`);
  }
  const mode = oneOf<DeliveryMode>(r, 'backchannel_token_delivery_mode', DELIVERY_MODES, 'poll');
  const endpoint = optionalString(r, 'backchannel_client_notification_endpoint');
  if (mode !== 'poll' && !endpoint) throw new ClientMetadataError(`client ${clientId}: ${mode} mode requires backchannel_client_notification_endpoint`);

  const scope = r.scope ?? 'openid';
  if (typeof scope !== 'string' || !scope.split(' ').every((s) => SCOPES.includes(s)) || !scope.split(' ').includes('openid')) {
    throw new ClientMetadataError(`client ${clientId}: scope must include openid and only ${SCOPES.join(' ')}`);
  }
  const userCode = r.backchannel_user_code_parameter ?? false;
  if (typeof userCode !== 'boolean') throw new ClientMetadataError('backchannel_user_code_parameter must be a boolean');
  // §4: registering an alg means the client will only send signed requests (enforced at the endpoint).
  const signingAlg = r.backchannel_authentication_request_signing_alg === undefined
    ? undefined
    : oneOf<SigningAlg>(r, 'backchannel_authentication_request_signing_alg', ID_TOKEN_ALGS, 'PS256');
  const jwks = r.jwks;
  if (jwks !== undefined && (typeof jwks !== 'object' || jwks === null || !Array.isArray((jwks as Raw).keys))) {
    throw new ClientMetadataError(`client ${clientId}: jwks must be {"keys": [...]}`);
  }
  const clientName = optionalString(r, 'client_name');
  return {
    client_id: clientId,
    ...(clientName ? { client_name: clientName } : {}),
    token_endpoint_auth_method: method,
    client_secret_hash: hashClientSecret(secret),
    ...(jwks ? { jwks: jwks as Client['jwks'] & object } : {}),
    grant_types: grantTypes as string[],
    scope,
    backchannel_token_delivery_mode: mode,
    ...(endpoint ? { backchannel_client_notification_endpoint: validateNotificationEndpoint(endpoint, options.localMode) } : {}),
    backchannel_user_code_parameter: userCode,
    ...(signingAlg ? { backchannel_authentication_request_signing_alg: signingAlg } : {}),
    id_token_signed_response_alg: oneOf<SigningAlg>(r, 'id_token_signed_response_alg', ID_TOKEN_ALGS, 'RS256'),
  };
}

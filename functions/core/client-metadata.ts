// Client registration metadata (RFC 7591 names + CIBA Core §4): validates what a seed file or a registration
// path supplies and turns it into a Client record. Errors name the field, for seed authors.
import {
  ASSERTION_ALGS,
  CLIENT_AUTH_METHODS,
  DELIVERY_MODES,
  FAPI_ALGS,
  GRANT_TYPES,
  ID_TOKEN_ALGS,
  REQUEST_OBJECT_ALGS,
  SCOPES,
} from './capabilities.ts';
import {
  CIBA_GRANT,
  CLIENT_ID_SYNTAX,
  type Client,
  type ClientAuthMethod,
  type DeliveryMode,
  type SigningAlg,
} from './model.ts';
import { hashClientSecret } from './crypto.ts';
import { parseLimit } from '../settings.ts';
import { clientSchema, registrationSchema, SchemaError, validate } from './schema.ts';

export class ClientMetadataError extends Error {
  override readonly name = 'ClientMetadataError';
  /** The field at fault, when one is (RFC 7591 §3.2.2 tells redirect_uris problems apart). */
  readonly field: string | undefined;
  constructor(message: string, field?: string) {
    super(message);
    this.field = field;
  }
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

/**
 * A URL the server will call (CIBA §4 notification endpoint, RFC 7591 jwks_uri): absolute, https (loopback http only
 * on the local stack, docs/clients.md), no fragment.
 */
function validateCallUrl(field: string, value: string, localMode: boolean): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ClientMetadataError(`${field} must be an absolute URL`);
  }
  if (url.hash || value.includes('#')) throw new ClientMetadataError(`${field} must not have a fragment`);
  const loopback = url.hostname === 'localhost' || url.hostname === '127.0.0.1';
  if (url.protocol !== 'https:' && !(localMode && url.protocol === 'http:' && loopback)) {
    throw new ClientMetadataError(
      `${field} must be https` + (localMode ? ' (or http on localhost/127.0.0.1 locally)' : ''),
    );
  }
  return value;
}

export const validateNotificationEndpoint = (value: string, localMode: boolean): string =>
  validateCallUrl('backchannel_client_notification_endpoint', value, localMode);
export const validateJwksUri = (value: string, localMode: boolean): string =>
  validateCallUrl('jwks_uri', value, localMode);

const SECRET_METHODS: readonly ClientAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt'];
const KEY_METHODS: readonly ClientAuthMethod[] = ['private_key_jwt', 'self_signed_tls_client_auth'];
const TLS_SUBJECT_FIELDS = [
  'tls_client_auth_subject_dn',
  'tls_client_auth_san_dns',
  'tls_client_auth_san_uri',
  'tls_client_auth_san_ip',
  'tls_client_auth_san_email',
] as const;

/** What parseClientMetadata needs to know about the server it registers for. */
export type MetadataOptions = {
  /** The local stack: loopback http notification endpoints and jwks_uri are allowed. */
  localMode: boolean;
  /**
   * The server has an mTLS endpoint (RFC 8705 §5 mtls_endpoint_aliases: config mtlsBaseUrl, CIBA_MTLS_BASE_URL).
   * Without one, a client that needs a TLS client certificate is refused (see mtlsRequirement).
   */
  mtlsEndpoint: boolean;
  /**
   * `strict` (seed files, the admin CLI): an unknown or misspelt field is an error naming it. `registration`
   * (RFC 7591 §2): fields the server does not understand are ignored. Default `strict`.
   */
  schema?: 'strict' | 'registration';
  /** Prefix for error paths, e.g. `clients[2]`. */
  path?: string;
};

/** The fields of a client that make it need mutual TLS. */
type MtlsFields = Pick<
  Client,
  'client_id' | 'token_endpoint_auth_method' | 'security_profile' | 'tls_client_certificate_bound_access_tokens'
>;

/**
 * Why `client` cannot be served by a server without an mTLS endpoint, naming the client, the field and the reason;
 * undefined when it can, or when the server has one. A TLS client certificate only reaches this server over its mTLS
 * endpoint, and these clients need one at every request: tls_client_auth / self_signed_tls_client_auth authenticate
 * with it (RFC 8705 §2), certificate-bound access tokens are bound to it at the token endpoint (RFC 8705 §3), and
 * the fapi-ciba profile requires those tokens (FAPI-CIBA §5.2.2). Refused when the client is loaded or registered
 * (parseClientMetadata) and when a client stored earlier authenticates (functions/usecases/client-auth.ts), instead of
 * only at the token endpoint after the user has approved.
 */
export function mtlsRequirement(client: MtlsFields, mtlsEndpoint: boolean): string | undefined {
  if (mtlsEndpoint) return undefined;
  const method = client.token_endpoint_auth_method;
  const field =
    method === 'tls_client_auth' || method === 'self_signed_tls_client_auth'
      ? `token_endpoint_auth_method ${method} (authenticates with a TLS client certificate, RFC 8705)`
      : client.security_profile === 'fapi-ciba'
        ? 'security_profile fapi-ciba (requires certificate-bound access tokens, RFC 8705)'
        : client.tls_client_certificate_bound_access_tokens === true
          ? 'tls_client_certificate_bound_access_tokens (binds access tokens to a TLS client certificate, RFC 8705)'
          : undefined;
  if (field === undefined) return undefined;
  const where = "CIBA_MTLS_BASE_URL / the construct's mtls prop";
  return `client ${client.client_id}: ${field} needs an mTLS endpoint (${where}); this server has none`;
}

/** Validate raw client metadata; returns the Client to store (secret hashed). */
export function parseClientMetadata(raw: unknown, options: MetadataOptions): Client {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new ClientMetadataError('client metadata must be an object');
  let r: Raw;
  try {
    r = validate(options.schema === 'registration' ? registrationSchema : clientSchema, raw, options.path ?? '');
  } catch (e) {
    if (e instanceof SchemaError) throw new ClientMetadataError(e.message, e.field);
    throw e;
  }
  const clientId = optionalString(r, 'client_id');
  if (!clientId || !CLIENT_ID_SYNTAX.test(clientId))
    throw new ClientMetadataError('client_id must be 1-128 printable ASCII characters');
  const method = oneOf<ClientAuthMethod>(r, 'token_endpoint_auth_method', CLIENT_AUTH_METHODS, 'client_secret_basic');
  const secret = optionalString(r, 'client_secret');
  if (SECRET_METHODS.includes(method)) {
    if (!secret) throw new ClientMetadataError(`client ${clientId}: client_secret is required for ${method}`);
    if (secret.length < 16)
      throw new ClientMetadataError(`client ${clientId}: client_secret must be at least 16 characters`);
    // RFC 7518 §3.2: an HS256 key must be at least 256 bits.
    if (method === 'client_secret_jwt' && Buffer.byteLength(secret) < 32)
      throw new ClientMetadataError(
        `client ${clientId}: client_secret must be at least 32 bytes for client_secret_jwt (HS256)`,
      );
  } else if (secret !== undefined) {
    throw new ClientMetadataError(`client ${clientId}: client_secret must not be set for ${method}`);
  }
  const profile =
    r.security_profile === undefined
      ? undefined
      : oneOf<'fapi-ciba'>(r, 'security_profile', ['fapi-ciba'], 'fapi-ciba');
  const fapi = profile === 'fapi-ciba';

  const grantTypes = r.grant_types ?? [CIBA_GRANT];
  if (!Array.isArray(grantTypes) || !grantTypes.every((g) => typeof g === 'string' && GRANT_TYPES.includes(g))) {
    throw new ClientMetadataError(`client ${clientId}: grant_types must be a subset of ${GRANT_TYPES.join(', ')}`);
  }
  const mode = oneOf<DeliveryMode>(r, 'backchannel_token_delivery_mode', DELIVERY_MODES, 'poll');
  const endpoint = optionalString(r, 'backchannel_client_notification_endpoint');
  if (mode !== 'poll' && !endpoint)
    throw new ClientMetadataError(`client ${clientId}: ${mode} mode requires backchannel_client_notification_endpoint`);

  const scope = r.scope ?? 'openid';
  if (
    typeof scope !== 'string' ||
    !scope.split(' ').every((s) => SCOPES.includes(s)) ||
    !scope.split(' ').includes('openid')
  ) {
    throw new ClientMetadataError(`client ${clientId}: scope must include openid and only ${SCOPES.join(' ')}`);
  }
  const userCode = r.backchannel_user_code_parameter ?? false;
  if (typeof userCode !== 'boolean') throw new ClientMetadataError('backchannel_user_code_parameter must be a boolean');
  // §4: registering an alg means the client will only send signed requests (enforced at the endpoint).
  const signingAlg =
    r.backchannel_authentication_request_signing_alg === undefined
      ? undefined
      : oneOf<SigningAlg>(r, 'backchannel_authentication_request_signing_alg', ID_TOKEN_ALGS, 'PS256');
  const jwks = r.jwks;
  if (jwks !== undefined && (typeof jwks !== 'object' || jwks === null || !Array.isArray((jwks as Raw).keys))) {
    throw new ClientMetadataError(`client ${clientId}: jwks must be {"keys": [...]}`);
  }
  const jwksUriRaw = optionalString(r, 'jwks_uri');
  if (jwks && jwksUriRaw)
    throw new ClientMetadataError(`client ${clientId}: jwks and jwks_uri must not both be set (RFC 7591 §2)`);
  const jwksUri = jwksUriRaw ? validateJwksUri(jwksUriRaw, options.localMode) : undefined;
  const hasKeys = !!jwks || !!jwksUri;
  if (KEY_METHODS.includes(method) && !hasKeys)
    throw new ClientMetadataError(`client ${clientId}: ${method} requires jwks or jwks_uri`);
  // The certificate is compared with the registered keys at every request: they must be at hand, not behind a URI.
  if (method === 'self_signed_tls_client_auth' && !jwks)
    throw new ClientMetadataError(
      `client ${clientId}: self_signed_tls_client_auth requires jwks (jwks_uri is not supported for it)`,
    );
  if (signingAlg && !hasKeys)
    throw new ClientMetadataError(
      `client ${clientId}: backchannel_authentication_request_signing_alg requires jwks or jwks_uri`,
    );
  if (signingAlg && !REQUEST_OBJECT_ALGS.includes(signingAlg))
    throw new ClientMetadataError(
      `client ${clientId}: backchannel_authentication_request_signing_alg must be one of ${REQUEST_OBJECT_ALGS.join(', ')}`,
    );

  const assertionAlgs =
    method === 'client_secret_jwt'
      ? ['HS256']
      : method === 'private_key_jwt'
        ? fapi
          ? FAPI_ALGS
          : ASSERTION_ALGS
        : [];
  const assertionAlg = r.token_endpoint_auth_signing_alg;
  if (assertionAlg !== undefined && (typeof assertionAlg !== 'string' || !assertionAlgs.includes(assertionAlg))) {
    throw new ClientMetadataError(
      `client ${clientId}: token_endpoint_auth_signing_alg must be one of ${assertionAlgs.join(', ') || '(none: no JWT assertion for this method)'}`,
    );
  }

  const tlsSubject: Partial<Record<(typeof TLS_SUBJECT_FIELDS)[number], string>> = {};
  for (const field of TLS_SUBJECT_FIELDS) {
    const v = optionalString(r, field);
    if (v !== undefined) tlsSubject[field] = v;
  }
  const tlsCount = Object.keys(tlsSubject).length;
  if (method === 'tls_client_auth' && tlsCount !== 1)
    throw new ClientMetadataError(
      `client ${clientId}: tls_client_auth requires exactly one of ${TLS_SUBJECT_FIELDS.join(', ')} (RFC 8705 §2.1.2)`,
    );
  if (method !== 'tls_client_auth' && tlsCount > 0)
    throw new ClientMetadataError(`client ${clientId}: ${Object.keys(tlsSubject)[0]} is only for tls_client_auth`);
  const boundTokens = r.tls_client_certificate_bound_access_tokens ?? false;
  if (typeof boundTokens !== 'boolean')
    throw new ClientMetadataError('tls_client_certificate_bound_access_tokens must be a boolean');
  // Push deliveries reach the client without its certificate, so their tokens could not be bound (RFC 8705 §3).
  if (boundTokens && mode === 'push')
    throw new ClientMetadataError(
      `client ${clientId}: tls_client_certificate_bound_access_tokens cannot be combined with push delivery`,
    );
  const idTokenAlg = oneOf<SigningAlg>(r, 'id_token_signed_response_alg', ID_TOKEN_ALGS, fapi ? 'PS256' : 'RS256');
  // RFC 9449 §5.2: every token request carries a DPoP proof. Push tokens are minted before the client sends anything,
  // so they could not be bound; and a token bound to the client's certificate is not bound to a DPoP key as well.
  const dpopBound = r.dpop_bound_access_tokens === true;
  if (dpopBound && mode === 'push')
    throw new ClientMetadataError(`client ${clientId}: dpop_bound_access_tokens cannot be combined with push delivery`);
  if (dpopBound && (boundTokens || fapi))
    throw new ClientMetadataError(
      `client ${clientId}: dpop_bound_access_tokens cannot be combined with certificate-bound access tokens ` +
        `(${fapi ? 'security_profile fapi-ciba' : 'tls_client_certificate_bound_access_tokens'})`,
    );
  // RFC 9396 §10: the authorization_details types the client may request.
  const detailsTypes = r.authorization_details_types as string[] | undefined;

  // FAPI-CIBA (FAPI 1 Advanced §5.2.2, FAPI-CIBA §5.2.2): confidential clients with private_key_jwt or mTLS, signed
  // requests with PS256/ES256, no push, certificate-bound access tokens.
  if (fapi) {
    const why = (rule: string) => new ClientMetadataError(`client ${clientId}: the fapi-ciba profile requires ${rule}`);
    if (!['private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth'].includes(method))
      throw why('private_key_jwt, tls_client_auth or self_signed_tls_client_auth');
    if (!signingAlg || !FAPI_ALGS.includes(signingAlg))
      throw why('backchannel_authentication_request_signing_alg PS256 or ES256');
    if (mode === 'push') throw why('poll or ping (push is not allowed)');
    if (!FAPI_ALGS.includes(idTokenAlg)) throw why('id_token_signed_response_alg PS256 or ES256');
  }
  const needsMtls = mtlsRequirement(
    {
      client_id: clientId,
      token_endpoint_auth_method: method,
      ...(profile ? { security_profile: profile } : {}),
      tls_client_certificate_bound_access_tokens: boundTokens || fapi,
    },
    options.mtlsEndpoint,
  );
  if (needsMtls) throw new ClientMetadataError(needsMtls);
  const clientName = optionalString(r, 'client_name');
  const rateLimit = optionalString(r, 'backchannel_rate_limit');
  if (rateLimit !== undefined && !parseLimit(rateLimit)) {
    throw new ClientMetadataError(
      `client ${clientId}: backchannel_rate_limit must be <count>/<seconds>, e.g. 12000/60`,
    );
  }
  return {
    client_id: clientId,
    ...(clientName ? { client_name: clientName } : {}),
    token_endpoint_auth_method: method,
    ...(secret && method !== 'client_secret_jwt' ? { client_secret_hash: hashClientSecret(secret) } : {}),
    ...(jwks ? { jwks: jwks as Client['jwks'] & object } : {}),
    ...(jwksUri ? { jwks_uri: jwksUri } : {}),
    ...(typeof assertionAlg === 'string' ? { token_endpoint_auth_signing_alg: assertionAlg } : {}),
    ...tlsSubject,
    ...(boundTokens || fapi ? { tls_client_certificate_bound_access_tokens: true } : {}),
    ...(dpopBound ? { dpop_bound_access_tokens: true } : {}),
    ...(detailsTypes?.length ? { authorization_details_types: [...new Set(detailsTypes)] } : {}),
    ...(profile ? { security_profile: profile } : {}),
    grant_types: grantTypes as string[],
    scope,
    backchannel_token_delivery_mode: mode,
    ...(endpoint
      ? { backchannel_client_notification_endpoint: validateNotificationEndpoint(endpoint, options.localMode) }
      : {}),
    backchannel_user_code_parameter: userCode,
    ...(signingAlg ? { backchannel_authentication_request_signing_alg: signingAlg } : {}),
    id_token_signed_response_alg: idTokenAlg,
    ...(rateLimit !== undefined ? { backchannel_rate_limit: rateLimit.trim() } : {}),
    ...informational(r, options.localMode),
  };
}

/**
 * RFC 7591 §2 fields with no role in CIBA, kept so a registered client reads back what it sent: URLs must be
 * absolute http(s) without a fragment (redirect_uris: RFC 7591 §2 and §3.2.2 invalid_redirect_uri).
 */
function informational(r: Raw, localMode: boolean): Partial<Client> {
  const out: Partial<Client> = {};
  const url = (field: string, value: string) => {
    const ok = URL.canParse(value) && /^https?:$/.test(new URL(value).protocol) && !value.includes('#');
    const secure = value.startsWith('https:') || localMode || field !== 'redirect_uris';
    if (!ok || !secure)
      throw new ClientMetadataError(`${field} must hold absolute https URLs without a fragment`, field);
    return value;
  };
  if (r.redirect_uris !== undefined)
    out.redirect_uris = (r.redirect_uris as string[]).map((u) => url('redirect_uris', u));
  if (r.contacts !== undefined) out.contacts = r.contacts as string[];
  for (const field of ['logo_uri', 'client_uri', 'policy_uri', 'tos_uri'] as const) {
    if (typeof r[field] === 'string') out[field] = url(field, r[field]);
  }
  for (const field of ['software_id', 'software_version'] as const) {
    if (typeof r[field] === 'string') out[field] = r[field];
  }
  return out;
}

/** The metadata of a registered client as RFC 7591 §3.2.1 / RFC 7592 return it: no hash, no sealed secret. */
export function clientMetadataView(client: Client): Record<string, unknown> {
  const { client_secret_hash: _h, client_secret_sealed: _s, registration_access_token_hash: _r, ...view } = client;
  return view;
}

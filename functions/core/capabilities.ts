// What this server actually supports. Discovery (functions/core/discovery.ts) and client validation
// (functions/core/client-metadata.ts) both read these lists, so the metadata never advertises more than works.
import { CIBA_GRANT, REFRESH_GRANT, type ClientAuthMethod, type DeliveryMode, type SigningAlg } from './model.ts';

/** CIBA §5: poll (token endpoint), ping (§10.2, then the token endpoint), push (§10.3, tokens POSTed to the client). */
export const DELIVERY_MODES: readonly DeliveryMode[] = ['poll', 'ping', 'push'];
/** CIBA §7.1 / RFC 6749 §2.3, RFC 7523 §2.2 (JWT assertions), RFC 8705 §2 (mutual TLS). */
export const CLIENT_AUTH_METHODS: readonly ClientAuthMethod[] = [
  'client_secret_basic',
  'client_secret_post',
  'client_secret_jwt',
  'private_key_jwt',
  'tls_client_auth',
  'self_signed_tls_client_auth',
];
export const ID_TOKEN_ALGS: readonly SigningAlg[] = ['RS256', 'PS256', 'ES256'];
/** CIBA §7.1.1: signed authentication requests use asymmetric algorithms only. */
export const REQUEST_OBJECT_ALGS: readonly SigningAlg[] = ['PS256', 'ES256', 'RS256'];
/** private_key_jwt assertion algorithms (RFC 7523); client_secret_jwt uses HS256. */
export const ASSERTION_ALGS: readonly string[] = ['PS256', 'ES256', 'RS256'];
/** FAPI 1 Advanced §8.6: PS256 and ES256 only. */
export const FAPI_ALGS: readonly string[] = ['PS256', 'ES256'];
/** RFC 9449 DPoP proofs: asymmetric algorithms only (§4.2); advertised as dpop_signing_alg_values_supported. */
export const DPOP_ALGS: readonly string[] = ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA'];
/** RFC 9068 access tokens are signed with the server's default algorithm. */
export const ACCESS_TOKEN_ALG: SigningAlg = 'RS256';
export const GRANT_TYPES: readonly string[] = [CIBA_GRANT, REFRESH_GRANT];
/**
 * Scopes a client may register and request. offline_access is not among them: whether a client gets a refresh token
 * is decided by its registered grant_types (refresh_token), not by a scope it would have to ask for (OIDC Core §11
 * ties offline_access to a consent prompt, which CIBA has no place for).
 */
export const SCOPES: readonly string[] = ['openid', 'profile', 'email', 'phone'];
export const CLAIMS: readonly string[] = [
  'sub',
  'iss',
  'aud',
  'exp',
  'iat',
  'auth_time',
  'acr',
  'amr',
  'urn:openid:params:jwt:claim:auth_req_id',
  'name',
  'given_name',
  'family_name',
  'email',
  'email_verified',
  'phone_number',
  'phone_number_verified',
];
/** OIDC Core §5.4: the claims each scope releases. */
export const SCOPE_CLAIMS: Readonly<Record<string, readonly string[]>> = {
  profile: ['name', 'given_name', 'family_name'],
  email: ['email', 'email_verified'],
  phone: ['phone_number', 'phone_number_verified'],
};

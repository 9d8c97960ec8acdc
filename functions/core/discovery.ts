// OpenID Provider metadata (OIDC Discovery §3, CIBA Core §4): built from capabilities.ts, so it advertises only what works.
import { PATHS } from '../routes.ts';
import {
  ASSERTION_ALGS,
  CLAIMS,
  CLIENT_AUTH_METHODS,
  DELIVERY_MODES,
  DPOP_ALGS,
  GRANT_TYPES,
  ID_TOKEN_ALGS,
  REQUEST_OBJECT_ALGS,
  SCOPES,
} from './capabilities.ts';

/** `mtlsBaseUrl`: where the endpoints are served with TLS client certificates (RFC 8705 §5), if anywhere. */
export function providerMetadata(
  issuer: string,
  acrValues?: readonly string[],
  mtlsBaseUrl?: string,
  features: { registration?: boolean; authorizationDetailsTypes?: readonly string[] } = {},
): Record<string, unknown> {
  const mtls = CLIENT_AUTH_METHODS.filter((m) => m.includes('tls'));
  const authMethods = mtlsBaseUrl ? CLIENT_AUTH_METHODS : CLIENT_AUTH_METHODS.filter((m) => !mtls.includes(m));
  return {
    issuer,
    jwks_uri: issuer + PATHS.jwks,
    token_endpoint: issuer + PATHS.token,
    userinfo_endpoint: issuer + PATHS.userinfo,
    backchannel_authentication_endpoint: issuer + PATHS.backchannel,
    // RFC 7009 revocation and RFC 7662 introspection, with the same client authentication as the token endpoint.
    revocation_endpoint: issuer + PATHS.revocation,
    introspection_endpoint: issuer + PATHS.introspection,
    // RFC 9701: signed introspection responses.
    introspection_signing_alg_values_supported: ID_TOKEN_ALGS,
    // RFC 7591 §3 / RFC 8414: only when dynamic registration is on.
    ...(features.registration ? { registration_endpoint: issuer + PATHS.registration } : {}),
    backchannel_token_delivery_modes_supported: DELIVERY_MODES,
    backchannel_user_code_parameter_supported: true,
    grant_types_supported: GRANT_TYPES,
    // CIBA has no authorization endpoint; OIDC Discovery still requires the field, and no response type is served.
    response_types_supported: [],
    subject_types_supported: ['public'],
    scopes_supported: SCOPES,
    claims_supported: CLAIMS,
    ...(acrValues ? { acr_values_supported: acrValues } : {}),
    id_token_signing_alg_values_supported: ID_TOKEN_ALGS,
    // CIBA §4: the same methods authenticate at the backchannel endpoint. Without an mTLS endpoint, no mTLS methods.
    token_endpoint_auth_methods_supported: authMethods,
    token_endpoint_auth_signing_alg_values_supported: ['HS256', ...ASSERTION_ALGS],
    revocation_endpoint_auth_methods_supported: authMethods,
    introspection_endpoint_auth_methods_supported: authMethods,
    // CIBA §4 / §7.1.1: signed authentication requests, asymmetric algorithms only.
    backchannel_authentication_request_signing_alg_values_supported: REQUEST_OBJECT_ALGS,
    // RFC 9449 §5.1: DPoP-bound access tokens at the token endpoint and userinfo.
    dpop_signing_alg_values_supported: DPOP_ALGS,
    // RFC 9396 §10: only when the operator lists the supported types (otherwise any type the client registered).
    ...(features.authorizationDetailsTypes?.length
      ? { authorization_details_types_supported: features.authorizationDetailsTypes }
      : {}),
    ...(mtlsBaseUrl
      ? {
          tls_client_certificate_bound_access_tokens: true,
          mtls_endpoint_aliases: {
            token_endpoint: mtlsBaseUrl + PATHS.token,
            backchannel_authentication_endpoint: mtlsBaseUrl + PATHS.backchannel,
            userinfo_endpoint: mtlsBaseUrl + PATHS.userinfo,
            revocation_endpoint: mtlsBaseUrl + PATHS.revocation,
            introspection_endpoint: mtlsBaseUrl + PATHS.introspection,
          },
        }
      : {}),
    claims_parameter_supported: false,
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
  };
}

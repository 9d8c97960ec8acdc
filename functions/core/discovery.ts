// OpenID Provider metadata (OIDC Discovery §3, CIBA Core §4): built from capabilities.ts, so it advertises only what works.
import { PATHS } from '../routes.ts';
import { CLAIMS, CLIENT_AUTH_METHODS, DELIVERY_MODES, GRANT_TYPES, ID_TOKEN_ALGS, SCOPES } from './capabilities.ts';

export function providerMetadata(issuer: string, acrValues?: readonly string[]): Record<string, unknown> {
  return {
    issuer,
    jwks_uri: issuer + PATHS.jwks,
    token_endpoint: issuer + PATHS.token,
    userinfo_endpoint: issuer + PATHS.userinfo,
    backchannel_authentication_endpoint: issuer + PATHS.backchannel,
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
    token_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
    claims_parameter_supported: false,
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
  };
}

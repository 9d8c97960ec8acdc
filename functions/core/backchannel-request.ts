// Backchannel authentication request validation (CIBA Core §7.1, §7.2): small steps in the order §7.2 gives,
// each throwing the §13 error. Client authentication (step 1) happens before, in client-auth.ts.
import { OAuthError } from './errors.ts';
import { validateBindingMessage, type BindingMessagePolicy } from './binding-message.ts';
import { CIBA_GRANT, type AuthorizationDetail, type Client } from './model.ts';
import { parseAuthorizationDetails } from './authorization-details.ts';
import { parseResources } from './resource.ts';
import { NOTIFICATION_TOKEN_MAX, NOTIFICATION_TOKEN_SYNTAX } from './notification.ts';
import { checkOneHint, type HintType } from './hints.ts';
import { FAPI_ALGS, REQUEST_OBJECT_ALGS } from './capabilities.ts';
import type { Params } from './params.ts';

export type Hint = { type: HintType; value: string };

export type BackchannelRequest = {
  scope: string;
  /** RFC 9396 rich authorization request, checked against the client's and the server's types. */
  authorizationDetails?: AuthorizationDetail[];
  /** RFC 8707 resource indicators: the access token's audience. */
  resource?: string[];
  hint: Hint;
  bindingMessage?: string;
  userCode?: string;
  acrValues?: string;
  /** Ping and push clients only: the bearer token for the notification (kept sealed until delivered, never logged). */
  notificationToken?: string;
  /** Seconds the auth_req_id lives (requested_expiry clamped to the configured range). */
  expiresIn: number;
};

export type ExpiryPolicy = { defaultExpiresIn: number; minExpiresIn: number; maxExpiresIn: number };
/** The server settings the request rules apply (functions/settings.ts). */
export type RequestPolicy = ExpiryPolicy &
  BindingMessagePolicy & {
    /** CIBA_AUTHORIZATION_DETAILS_TYPES: the authorization_details types the server supports (undefined: any). */
    authorizationDetailsTypes?: readonly string[] | undefined;
  };

/** §4 / §13 unauthorized_client: only clients registered for the CIBA grant may use this endpoint. */
export function checkGrantType(client: Client): void {
  if (!client.grant_types.includes(CIBA_GRANT))
    throw new OAuthError('unauthorized_client', 'the client is not registered for the CIBA grant');
}

/** §7.1.1: a client that registered a signing alg (or is FAPI-CIBA) sends only signed requests. */
export function requiresSignedRequest(client: Client): boolean {
  return !!client.backchannel_authentication_request_signing_alg || client.security_profile === 'fapi-ciba';
}

/** §7.1.1 the algorithms a client's request objects may use: the registered one, else asymmetric ones (FAPI: PS256/ES256). */
export function requestObjectAlgorithms(client: Client): readonly string[] {
  if (client.backchannel_authentication_request_signing_alg)
    return [client.backchannel_authentication_request_signing_alg];
  return client.security_profile === 'fapi-ciba' ? FAPI_ALGS : REQUEST_OBJECT_ALGS;
}

/**
 * §7.1.1: an unsigned request from a client that must sign is refused; `request` must have been verified and unpacked
 * before (functions/core/request-object.ts); request_uri is not defined for CIBA.
 */
export function rejectUnsupported(params: Params, client: Client, signed = false): void {
  if (params.has('request_uri'))
    throw new OAuthError('invalid_request', 'request_uri is not supported at the backchannel authentication endpoint');
  if (params.has('request')) throw new OAuthError('invalid_request', 'request must be a signed request object');
  if (!signed && requiresSignedRequest(client))
    throw new OAuthError(
      'invalid_request',
      'this client must send signed authentication requests (request parameter, CIBA section 7.1.1)',
    );
}

/** FAPI-CIBA §5.2.2: a binding_message or a request_context must make the authorization context unique. */
export function checkFapiContext(params: Params, client: Client, bindingMessage: string | undefined): void {
  if (client.security_profile !== 'fapi-ciba' || bindingMessage !== undefined || params.get('request_context')) return;
  throw new OAuthError('invalid_request', 'binding_message or request_context is required for this client (FAPI-CIBA)');
}

/** §7.1 scope is required and must contain openid; every value must be registered for the client. */
export function checkScope(params: Params, client: Client): string {
  const scope = params.get('scope');
  if (!scope) throw new OAuthError('invalid_request', 'scope is required');
  const values = scope.split(' ');
  if (values.some((v) => v === '' || !/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(v)))
    throw new OAuthError('invalid_scope', 'scope is malformed');
  if (!values.includes('openid')) throw new OAuthError('invalid_request', 'scope must contain openid');
  const allowed = new Set(client.scope.split(' '));
  const denied = values.filter((v) => !allowed.has(v));
  if (denied.length) throw new OAuthError('invalid_scope', `scope not allowed for this client: ${denied.join(' ')}`);
  return [...new Set(values)].join(' ');
}

/**
 * RFC 9396 §3 authorization_details (form parameter or request object claim): only the types the client registered
 * (§10) and, when the operator lists them, the server supports; 400 invalid_authorization_details otherwise.
 */
export function checkAuthorizationDetails(
  params: Params,
  client: Client,
  policy: Pick<RequestPolicy, 'authorizationDetailsTypes'>,
): AuthorizationDetail[] | undefined {
  return parseAuthorizationDetails(params.get('authorization_details'), {
    clientTypes: client.authorization_details_types,
    serverTypes: policy.authorizationDetailsTypes,
  });
}

/** RFC 8707 §2 resource: absolute URIs without a fragment (repeated in the form, a string or array claim); else invalid_target. */
export function checkResource(params: Params): string[] | undefined {
  return parseResources(params.get('resource'));
}

/** §7.1 exactly one of login_hint_token, id_token_hint, login_hint (resolved by functions/usecases/hints.ts). */
export function checkHint(params: Params): Hint {
  return checkOneHint(params);
}

/** §7.1 user_code: required when the client registered backchannel_user_code_parameter (§13 missing_user_code). */
export function checkUserCode(params: Params, client: Client): string | undefined {
  const code = params.get('user_code');
  if (!client.backchannel_user_code_parameter) {
    if (code !== undefined)
      throw new OAuthError(
        'invalid_request',
        'user_code is not enabled for this client (backchannel_user_code_parameter)',
      );
    return undefined;
  }
  if (code === undefined) throw new OAuthError('missing_user_code', 'user_code is required for this client');
  if (code.length > 64) throw new OAuthError('invalid_user_code', 'user_code is invalid');
  return code;
}

/**
 * §7.1 client_notification_token: required for ping and push clients (≤ 1024 characters, RFC 6750 §2.1 syntax);
 * a poll client's is ignored, as it would never be used.
 */
export function checkNotificationToken(params: Params, client: Client): string | undefined {
  if (client.backchannel_token_delivery_mode === 'poll') return undefined;
  const token = params.get('client_notification_token');
  if (token === undefined || token === '')
    throw new OAuthError(
      'invalid_request',
      `client_notification_token is required for ${client.backchannel_token_delivery_mode} clients`,
    );
  if (token.length > NOTIFICATION_TOKEN_MAX)
    throw new OAuthError(
      'invalid_request',
      `client_notification_token must not exceed ${NOTIFICATION_TOKEN_MAX} characters`,
    );
  if (!NOTIFICATION_TOKEN_SYNTAX.test(token))
    throw new OAuthError(
      'invalid_request',
      'client_notification_token must have the Bearer token syntax (RFC 6750 section 2.1)',
    );
  return token;
}

/** §7.1 requested_expiry: a positive integer (sent as a string or a JSON number); clamped to the configured range. */
export function checkRequestedExpiry(raw: string | number | undefined, policy: ExpiryPolicy): number {
  if (raw === undefined) return policy.defaultExpiresIn;
  const value = typeof raw === 'number' ? raw : /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(value) || value <= 0)
    throw new OAuthError('invalid_request', 'requested_expiry must be a positive integer');
  return Math.min(Math.max(value, policy.minExpiresIn), policy.maxExpiresIn);
}

/** §7.1 acr_values: space-separated values in order of preference. */
export function checkAcrValues(params: Params): string | undefined {
  const acr = params.get('acr_values');
  if (acr === undefined) return undefined;
  if (acr.length > 512 || !acr.split(' ').every((v) => /^[\x21\x23-\x5B\x5D-\x7E]+$/.test(v))) {
    throw new OAuthError('invalid_request', 'acr_values is malformed');
  }
  return acr;
}

/**
 * §7.2 steps 3 and 6 for an authenticated client (hint resolution, step 4-5, needs the user store). `params` are the
 * form parameters, or the claims of a verified request object (`signed`).
 */
export function validateBackchannelRequest(
  params: Params,
  client: Client,
  policy: RequestPolicy,
  signed = false,
): BackchannelRequest {
  checkGrantType(client);
  rejectUnsupported(params, client, signed);
  const scope = checkScope(params, client);
  const authorizationDetails = checkAuthorizationDetails(params, client, policy);
  const resource = checkResource(params);
  const hint = checkHint(params);
  const bindingMessage = validateBindingMessage(params.get('binding_message'), policy);
  checkFapiContext(params, client, bindingMessage);
  const userCode = checkUserCode(params, client);
  const acrValues = checkAcrValues(params);
  const notificationToken = checkNotificationToken(params, client);
  const expiresIn = checkRequestedExpiry(params.get('requested_expiry'), policy);
  return {
    scope,
    hint,
    expiresIn,
    ...(authorizationDetails !== undefined ? { authorizationDetails } : {}),
    ...(resource !== undefined ? { resource } : {}),
    ...(bindingMessage !== undefined ? { bindingMessage } : {}),
    ...(userCode !== undefined ? { userCode } : {}),
    ...(acrValues !== undefined ? { acrValues } : {}),
    ...(notificationToken !== undefined ? { notificationToken } : {}),
  };
}

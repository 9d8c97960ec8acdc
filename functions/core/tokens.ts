// Token contents: ID token (OIDC Core §2, CIBA §10.1.1), JWT access token (RFC 9068), userinfo claims (OIDC Core §5.4).
// Signing lives in functions/adapters/keys.ts; this module only decides the claims.
import { halfHash, randomId } from './crypto.ts';
import { SCOPE_CLAIMS } from './capabilities.ts';
import { accessTokenAudience } from './resource.ts';
import type { AuthorizationDetail, AuthRequest, SigningAlg, User } from './model.ts';

export type Grant = {
  clientId: string;
  sub: string;
  scope: string;
  /** RFC 9396: the granted authorization details (absent or empty: none). */
  authorizationDetails?: AuthorizationDetail[];
  /** RFC 8707: the resources of the grant, its access tokens' aud; absent: this server. */
  resource?: string[];
  /** RFC 8707 §2.2: the resources this access token is for, when the token request narrowed them (else resource). */
  audience?: string[];
  /** Epoch seconds of the user's authentication on the device. */
  authTime?: number;
  acr?: string;
  amr?: string[];
};

export type Lifetimes = { accessTokenTtl: number; idTokenTtl: number };

/**
 * OIDC Core §2 / CIBA §7.1 acr_values: the acr asserted is the most preferred requested value that the device
 * authentication satisfies. With `supported` configured only those values qualify (none → no acr); without it the
 * device approval is deemed to satisfy whatever was requested.
 */
export function acrFor(acrValues: string | undefined, supported?: readonly string[]): string | undefined {
  return acrValues?.split(' ').find((v) => !supported || supported.includes(v));
}

/**
 * The grant an approved CIBA request stands for (CIBA §10.1.1): its client, user, what the user granted (the request,
 * or the narrower scope and authorization details of the approval, RFC 9396 §3), resources and authentication.
 */
export function grantFromRequest(req: AuthRequest, supportedAcr?: readonly string[]): Grant {
  const details = req.granted_authorization_details ?? req.authorization_details;
  return {
    clientId: req.client_id,
    sub: req.sub,
    scope: req.granted_scope ?? req.scope,
    ...(details?.length ? { authorizationDetails: details } : {}),
    ...(req.resource?.length ? { resource: req.resource } : {}),
    authTime: req.auth_time,
    acr: acrFor(req.acr_values, supportedAcr),
    amr: req.amr,
  };
}

export type AccessTokenOptions = {
  /** RFC 8705 §3.1: bound to the client's TLS certificate (cnf.x5t#S256). */
  certificateThumbprint?: string;
  /** RFC 9449 §6.1: bound to a DPoP key (cnf.jkt, its RFC 7638 thumbprint). */
  jkt?: string;
  /** The grant (refresh token family) it was issued under. */
  grantId?: string;
};

/**
 * RFC 9068 JWT access token. A confirmation (`cnf`) binds it to the client's TLS certificate or to a DPoP key, so only
 * a holder of that private key can use it. `aud` is the requested resources (RFC 8707), else this server; the granted
 * authorization details ride along (RFC 9396 §9.1).
 */
export function accessTokenClaims(
  issuer: string,
  grant: Grant,
  nowS: number,
  ttl: number,
  options: AccessTokenOptions = {},
): Record<string, unknown> {
  const { certificateThumbprint, jkt, grantId } = options;
  return {
    ...(certificateThumbprint ? { cnf: { 'x5t#S256': certificateThumbprint } } : jkt ? { cnf: { jkt } } : {}),
    // The grant (refresh token family) it was issued under: revoking the refresh token revokes it too (RFC 7009 §2.1).
    ...(grantId ? { grant_id: grantId } : {}),
    iss: issuer,
    sub: grant.sub,
    aud: accessTokenAudience(issuer, grant.audience ?? grant.resource),
    client_id: grant.clientId,
    scope: grant.scope,
    iat: nowS,
    exp: nowS + ttl,
    jti: randomId(16),
    ...(grant.authTime !== undefined ? { auth_time: grant.authTime } : {}),
    ...(grant.acr ? { acr: grant.acr } : {}),
    ...(grant.authorizationDetails?.length ? { authorization_details: grant.authorizationDetails } : {}),
  };
}

export type IdTokenExtras = {
  /** Push mode (CIBA §10.3.1): auth_req_id, at_hash and rt_hash bind the ID token to what it travels with. */
  authReqId?: string;
  accessToken?: string;
  refreshToken?: string;
};

export function idTokenClaims(
  issuer: string,
  grant: Grant,
  alg: SigningAlg,
  nowS: number,
  ttl: number,
  extras: IdTokenExtras = {},
): Record<string, unknown> {
  return {
    iss: issuer,
    sub: grant.sub,
    aud: grant.clientId,
    iat: nowS,
    exp: nowS + ttl,
    ...(grant.authTime !== undefined ? { auth_time: grant.authTime } : {}),
    ...(grant.acr ? { acr: grant.acr } : {}),
    ...(grant.amr?.length ? { amr: grant.amr } : {}),
    ...(extras.authReqId ? { 'urn:openid:params:jwt:claim:auth_req_id': extras.authReqId } : {}),
    ...(extras.accessToken ? { at_hash: halfHash(extras.accessToken, alg) } : {}),
    ...(extras.refreshToken ? { 'urn:openid:params:jwt:claim:rt_hash': halfHash(extras.refreshToken, alg) } : {}),
  };
}

/** OIDC Core §5.4: the profile claims released for the granted scopes, plus sub. */
export function userinfoClaims(user: User, scope: string): Record<string, unknown> {
  const out: Record<string, unknown> = { sub: user.sub };
  for (const s of scope.split(' ')) {
    for (const claim of Object.hasOwn(SCOPE_CLAIMS, s) ? SCOPE_CLAIMS[s]! : []) {
      const value = (user as Record<string, unknown>)[claim];
      if (value !== undefined) out[claim] = value;
    }
  }
  return out;
}

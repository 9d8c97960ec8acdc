// Token contents: ID token (OIDC Core §2, CIBA §10.1.1), JWT access token (RFC 9068), userinfo claims (OIDC Core §5.4).
// Signing lives in functions/adapters/keys.ts; this module only decides the claims.
import { halfHash, randomId } from './crypto.ts';
import { SCOPE_CLAIMS } from './capabilities.ts';
import type { AuthRequest, SigningAlg, User } from './model.ts';

export type Grant = {
  clientId: string;
  sub: string;
  scope: string;
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

/** The grant an approved CIBA request stands for (CIBA §10.1.1): its client, user, scope and authentication. */
export function grantFromRequest(req: AuthRequest, supportedAcr?: readonly string[]): Grant {
  return {
    clientId: req.client_id,
    sub: req.sub,
    scope: req.scope,
    authTime: req.auth_time,
    acr: acrFor(req.acr_values, supportedAcr),
    amr: req.amr,
  };
}

/**
 * RFC 9068 JWT access token. `certificateThumbprint` binds it to the client's TLS certificate (RFC 8705 §3.1:
 * cnf.x5t#S256), so only a holder of that certificate's key can use it.
 */
export function accessTokenClaims(
  issuer: string,
  grant: Grant,
  nowS: number,
  ttl: number,
  certificateThumbprint?: string,
): Record<string, unknown> {
  return {
    ...(certificateThumbprint ? { cnf: { 'x5t#S256': certificateThumbprint } } : {}),
    iss: issuer,
    sub: grant.sub,
    aud: issuer,
    client_id: grant.clientId,
    scope: grant.scope,
    iat: nowS,
    exp: nowS + ttl,
    jti: randomId(16),
    ...(grant.authTime !== undefined ? { auth_time: grant.authTime } : {}),
    ...(grant.acr ? { acr: grant.acr } : {}),
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

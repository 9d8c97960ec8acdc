// What a token's holder may learn about it and how it is revoked (RFC 7662 introspection, RFC 9701 JWT response,
// RFC 7009 revocation). Pure: the use case finds and verifies the token; these rules decide what is said.
import { randomId } from './crypto.ts';
import { boundJkt } from './dpop.ts';

/** A token this server issued, as found: an RFC 9068 access token's claims, or a stored refresh token. */
export type FoundToken =
  | { kind: 'access_token'; claims: Record<string, unknown>; revoked: boolean }
  | {
      kind: 'refresh_token';
      record: {
        client_id: string;
        sub: string;
        scope: string;
        expires_at: number;
        used_at?: number;
        auth_time?: number;
        /** RFC 9396: the granted authorization details, as JSON text. */
        authorization_details?: string;
      };
      revoked: boolean;
    };

/** Whose token it is (RFC 7009 §2.1, RFC 7662 §2.2: a client learns about and revokes only its own tokens). */
export function ownerOf(token: FoundToken): string {
  return token.kind === 'access_token' ? String(token.claims.client_id) : token.record.client_id;
}

/**
 * RFC 7662 §2.2: `active` with the token's meta-information for the client it was issued to; `{active: false}`
 * for anything else (unknown, expired, revoked, used, another client's), without saying which.
 */
export function introspection(token: FoundToken | undefined, clientId: string, nowMs: number): Record<string, unknown> {
  if (!token || token.revoked || ownerOf(token) !== clientId) return { active: false };
  if (token.kind === 'refresh_token') {
    const { record } = token;
    if (record.used_at !== undefined || record.expires_at <= nowMs) return { active: false };
    return {
      active: true,
      token_type: 'refresh_token',
      client_id: record.client_id,
      sub: record.sub,
      scope: record.scope,
      exp: Math.floor(record.expires_at / 1000),
      ...(record.auth_time !== undefined ? { auth_time: record.auth_time } : {}),
      // RFC 9396 §9.2: the authorization details the token grants.
      ...(record.authorization_details ? { authorization_details: JSON.parse(record.authorization_details) } : {}),
    };
  }
  const c = token.claims;
  if (typeof c.exp !== 'number' || c.exp * 1000 <= nowMs) return { active: false };
  const { grant_id: _grant, ...claims } = c;
  // RFC 9449 §6.2: a DPoP-bound token is of type DPoP, its cnf.jkt among the claims (RFC 9396 §9.2: and details).
  return { active: true, token_type: boundJkt(c.cnf) ? 'DPoP' : 'Bearer', ...claims };
}

/** RFC 9701 §5: the signed introspection response's claims (aud = the client that asked). */
export function introspectionJwtClaims(
  issuer: string,
  clientId: string,
  response: Record<string, unknown>,
  nowS: number,
): Record<string, unknown> {
  return { iss: issuer, aud: clientId, iat: nowS, jti: randomId(16), token_introspection: response };
}

/** RFC 9701 §4: the client asks for a JWT response with this Accept media type. */
export const INTROSPECTION_JWT_TYPE = 'application/token-introspection+jwt';

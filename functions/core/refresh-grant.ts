// refresh_token grant at the token endpoint (RFC 6749 §6; rotation and reuse detection per RFC 9700 §4.14.2):
// what a refresh request gets for the token as stored. Pure; the token is consumed only after every check passed,
// so a refused request (another client's token, a wider scope) neither uses it up nor revokes its family.
import { tokenError, type OAuthError } from './errors.ts';
import { randomId } from './crypto.ts';
import type { AuthRequest } from './model.ts';
import { isRedeemed } from './token-grant.ts';
import { grantFromRequest, type Grant } from './tokens.ts';

/**
 * A refresh token as stored: a row of its own keyed by its SHA-256 (every rotated token, and a push grant's first), or,
 * for the first token of a grant redeemed at the token endpoint, fields of the request row (firstRefreshTokenRecord).
 */
export type RefreshTokenRecord = {
  client_id: string;
  sub: string;
  scope: string;
  /** Rotation family: every token rotated from one grant; reuse of any of them revokes all. */
  family: string;
  auth_time?: number;
  acr?: string;
  amr?: string[];
  /** RFC 9449: the DPoP key (JWK thumbprint) the grant is bound to; every refresh must prove it. */
  jkt?: string;
  /** RFC 9396: the granted authorization details, as JSON text (functions/adapters/store/requests.ts says why). */
  authorization_details?: string;
  /** RFC 8707: the resources the grant's access tokens are for. */
  resource?: string[];
  /** Epoch ms. */
  expires_at: number;
  /** Epoch ms of its (single) use. */
  used_at?: number;
};

export type RefreshDecision =
  | { kind: 'error'; error: OAuthError; revokeFamily?: true }
  /** Consume the token (single use) and issue tokens for `scope`. */
  | { kind: 'use'; scope: string };

/** Decide a refresh request from the stored token (undefined: unknown). `now` in ms. */
export function decideRefresh(
  record: RefreshTokenRecord | undefined,
  clientId: string,
  requestedScope: string | undefined,
  now: number,
): RefreshDecision {
  const invalid = (why: string) => ({ kind: 'error' as const, error: tokenError('invalid_grant', why) });
  if (!record || record.expires_at <= now) return invalid('refresh_token is invalid, expired or already used');
  // RFC 6749 §6: the token must have been issued to the authenticated client; another client learns nothing more.
  if (record.client_id !== clientId) return invalid('refresh_token is invalid, expired or already used');
  // RFC 9700 §4.14.2: a rotated token used again means it leaked: revoke the family.
  if (record.used_at !== undefined)
    return { ...invalid('refresh_token is invalid, expired or already used'), revokeFamily: true };
  if (requestedScope === undefined) return { kind: 'use', scope: record.scope };
  // RFC 6749 §6: the scope may narrow, never widen.
  const granted = new Set(record.scope.split(' '));
  const requested = requestedScope.split(' ').filter(Boolean);
  if (requested.length === 0 || !requested.every((s) => granted.has(s))) {
    return { kind: 'error', error: tokenError('invalid_scope', 'scope exceeds the original grant') };
  }
  return { kind: 'use', scope: requested.join(' ') };
}

// ---- the first refresh token of a grant redeemed at the token endpoint (poll and ping) ----
// It is `<request id>.<256 random bits>`, and its SHA-256 is written by the very poll that redeems (with the DPoP key),
// so a redemption is one write (docs/tokens.md, "Where refresh tokens live"). Rotated tokens are opaque and stored on
// their own; the dot tells the two apart.

const FIRST_TOKEN = /^([A-Za-z0-9_-]{43})\.[A-Za-z0-9_-]{43}$/;

/** A fresh candidate first refresh token for request `requestId` (handed out only if its poll redeems). */
export const newFirstRefreshToken = (requestId: string): string => `${requestId}.${randomId(32)}`;

/** The request id a first refresh token names, or undefined for any other string. */
export const firstRefreshTokenRequest = (token: string): string | undefined => FIRST_TOKEN.exec(token)?.[1];

/** What a refresh token of `grant` stores: the grant as a refresh will rebuild it, its family, expiry and DPoP key. */
export function refreshTokenRecord(
  grant: Grant,
  family: string,
  expiresAt: number,
  jkt: string | undefined,
): RefreshTokenRecord {
  return {
    client_id: grant.clientId,
    sub: grant.sub,
    scope: grant.scope,
    family,
    ...(grant.authTime !== undefined ? { auth_time: grant.authTime } : {}),
    ...(grant.acr !== undefined ? { acr: grant.acr } : {}),
    ...(grant.amr !== undefined ? { amr: grant.amr } : {}),
    ...(jkt ? { jkt } : {}),
    ...(grant.authorizationDetails?.length
      ? { authorization_details: JSON.stringify(grant.authorizationDetails) }
      : {}),
    ...(grant.resource?.length ? { resource: grant.resource } : {}),
    expires_at: expiresAt,
  };
}

/**
 * The refresh token record a redeemed request holds (undefined: none, or not redeemed). Its family is the request id;
 * it expires `refresh_ttl_s` after the redemption. `supportedAcr`: the server's acr values (as at redemption).
 */
export function firstRefreshTokenRecord(
  req: AuthRequest,
  supportedAcr?: readonly string[],
): RefreshTokenRecord | undefined {
  if (!isRedeemed(req) || !req.refresh_token_hash || req.refresh_ttl_s === undefined || req.polled_at === undefined)
    return undefined;
  const record = refreshTokenRecord(
    grantFromRequest(req, supportedAcr),
    req.id,
    req.polled_at + req.refresh_ttl_s * 1000,
    req.refresh_jkt,
  );
  return req.refresh_used_at !== undefined ? { ...record, used_at: req.refresh_used_at } : record;
}

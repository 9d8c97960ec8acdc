// refresh_token grant at the token endpoint (RFC 6749 §6; rotation and reuse detection per RFC 9700 §4.14.2):
// what a refresh request gets for the token as stored. Pure; the token is consumed only after every check passed,
// so a refused request (another client's token, a wider scope) neither uses it up nor revokes its family.
import { tokenError, type OAuthError } from './errors.ts';

/** A stored refresh token (its SHA-256 is the key). */
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

// Revocation (RFC 7009) and introspection (RFC 7662, JWT response RFC 9701) of the tokens this server issues: finds
// the token (an RFC 9068 access token verified with our keys, or a refresh token by its hash), asks core/token-status.ts
// what may be said or done, and records revocations (a denylist for access tokens, the family for refresh tokens).
import { jwtVerify } from 'jose';
import { ACCESS_TOKEN_ALG, ID_TOKEN_ALGS } from '../core/capabilities.ts';
import { introspection, introspectionJwtClaims, ownerOf, type FoundToken } from '../core/token-status.ts';
import type { Client } from '../core/model.ts';
import { ownKeys, signJwt } from '../adapters/keys.ts';
import * as store from '../adapters/store.ts';
import { log } from '../runtime/log.ts';
import { config } from '../config.ts';

/**
 * The claims of an access token this server issued and that is still within its lifetime, else undefined. Its `aud`
 * is not checked here: a token for other resources (RFC 8707) is still one of ours to introspect and revoke; userinfo
 * checks that it is meant for this server.
 */
export async function verifiedAccessToken(token: string): Promise<Record<string, unknown> | undefined> {
  const { issuer } = config();
  try {
    const { payload } = await jwtVerify(token, await ownKeys(), {
      issuer,
      typ: 'at+jwt',
      algorithms: [ACCESS_TOKEN_ALG],
      requiredClaims: ['sub', 'exp', 'scope', 'client_id', 'jti', 'aud'],
    });
    return payload as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Whether an access token was revoked: itself (denylist) or the grant it was issued under. */
export async function accessTokenRevoked(claims: Record<string, unknown>): Promise<boolean> {
  const [denied, familyRevoked] = await Promise.all([
    store.isAccessTokenDenied(String(claims.jti)),
    typeof claims.grant_id === 'string' ? store.isFamilyRevoked(claims.grant_id) : false,
  ]);
  return denied || familyRevoked;
}

/** A token by its value: access tokens are JWTs (three dots' worth of structure), refresh tokens opaque. */
async function find(token: string, hint: string | undefined): Promise<FoundToken | undefined> {
  const looksJwt = token.split('.').length === 3;
  const tryAccess = async (): Promise<FoundToken | undefined> => {
    const claims = looksJwt ? await verifiedAccessToken(token) : undefined;
    return claims ? { kind: 'access_token', claims, revoked: await accessTokenRevoked(claims) } : undefined;
  };
  const tryRefresh = async (): Promise<FoundToken | undefined> => {
    const record = looksJwt ? undefined : await store.getRefreshToken(token);
    return record ? { kind: 'refresh_token', record, revoked: await store.isFamilyRevoked(record.family) } : undefined;
  };
  // RFC 7009 §2.1 / RFC 7662 §2.1: the hint only says where to look first.
  return hint === 'refresh_token' ? ((await tryRefresh()) ?? tryAccess()) : ((await tryAccess()) ?? tryRefresh());
}

/** RFC 7009 §2: revokes the client's own token; anything else is silently ignored (the answer is 200 either way). */
export async function revokeToken(client: Client, token: string, hint: string | undefined): Promise<void> {
  const found = await find(token, hint);
  if (!found || ownerOf(found) !== client.client_id) return;
  if (found.kind === 'refresh_token') {
    // The whole family: every refresh token rotated from this grant and the access tokens minted under it.
    const record = await store.getRefreshToken(token);
    if (record) await store.revokeFamily(record.family, record.expires_at);
  } else {
    await store.denyAccessToken(String(found.claims.jti), Number(found.claims.exp));
  }
  log.info('token revoked', { clientId: client.client_id, tokenType: found.kind });
}

/** RFC 7662 §2.2, or its RFC 9701 signed form when `asJwt`. */
export async function introspectToken(
  client: Client,
  token: string,
  hint: string | undefined,
  asJwt: boolean,
): Promise<{ json: Record<string, unknown> } | { jwt: string }> {
  const response = introspection(await find(token, hint), client.client_id, Date.now());
  if (!asJwt) return { json: response };
  const claims = introspectionJwtClaims(config().issuer, client.client_id, response, Math.floor(Date.now() / 1000));
  const alg = ID_TOKEN_ALGS.includes(client.id_token_signed_response_alg)
    ? client.id_token_signed_response_alg
    : 'RS256';
  return { jwt: await signJwt(claims, alg, 'token-introspection+jwt') };
}

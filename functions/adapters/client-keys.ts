// A client's public keys (RFC 7591 jwks / jwks_uri) as a jose key resolver, for private_key_jwt, signed requests and
// login_hint_token. jwks_uri sets are cached per container and refetched when a JWS names a kid the cache lacks
// (jose's remote key set: 10 min cache, at most one refetch per CIBA_JWKS_REFETCH_COOLDOWN, default 30 s).
import { createLocalJWKSet, createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';
import type { Client } from '../core/model.ts';
import { config } from '../config.ts';

const remote = new Map<string, JWTVerifyGetKey>();
const MAX_REMOTE_SETS = 500;

/** The key resolver for `client`, or undefined when it registered no keys. */
export function clientKeys(client: Client): JWTVerifyGetKey | undefined {
  if (client.jwks) return createLocalJWKSet(client.jwks);
  if (!client.jwks_uri) return undefined;
  let set = remote.get(client.jwks_uri);
  if (!set) {
    if (remote.size >= MAX_REMOTE_SETS) remote.delete(remote.keys().next().value!);
    set = createRemoteJWKSet(new URL(client.jwks_uri), {
      timeoutDuration: 3000,
      cooldownDuration: config().jwksRefetchCooldown * 1000,
      cacheMaxAge: 600_000,
    });
    remote.set(client.jwks_uri, set);
  }
  return set;
}

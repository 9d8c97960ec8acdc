// The refresh_token grant (RFC 6749 §6): the rule is core/refresh-grant.ts (decideRefresh); this reads the token,
// applies the rule, and only then consumes it (a conditional write: exactly one use wins; a lost race is reuse).
// A DPoP-bound grant is refreshed only with a proof of its key (core/dpop.ts dpopBinding).
import { tokenError } from '../core/errors.ts';
import { REFRESH_GRANT, type AuthorizationDetail } from '../core/model.ts';
import type { Params } from '../core/params.ts';
import { decideRefresh } from '../core/refresh-grant.ts';
import { dpopBinding, type DPoPProof } from '../core/dpop.ts';
import { narrowResources } from '../core/resource.ts';
import type { Grant } from '../core/tokens.ts';
import * as store from '../adapters/store.ts';
import { authenticateForGrant, type Presented } from './client-auth.ts';
import { certificateBinding, mintTokens, type TokenSet } from './tokens.ts';
import { recordDPoPProof } from './dpop.ts';
import { log } from '../runtime/log.ts';

const REUSED = 'refresh_token is invalid, expired or already used';

/** `proof`: the request's checked DPoP proof (RFC 9449), if it carried one. */
export async function refreshGrant(params: Params, presented: Presented, proof?: DPoPProof): Promise<TokenSet> {
  const token = params.get('refresh_token');
  const { client, record } = await authenticateForGrant(
    presented,
    REFRESH_GRANT,
    token ? store.getRefreshToken(token) : Promise.resolve(undefined),
  );
  const binding = certificateBinding(client, presented.certificate);
  if (!token) throw tokenError('invalid_request', 'refresh_token is required');
  const now = Date.now();
  const decision = decideRefresh(record, client.client_id, params.get('scope'), now);
  if (decision.kind === 'error') {
    if (decision.revokeFamily) await revoke(record!.family, record!.expires_at, client.client_id);
    throw decision.error;
  }
  // RFC 9449 §5: a DPoP-bound grant is refreshed only with a proof of its key; a Bearer grant refreshed with a proof
  // becomes bound to that key. RFC 8707 §2.2: resource may narrow the granted resources.
  const jkt = dpopBinding(client, proof?.jkt, record!.jkt);
  const resource = narrowResources(record!.resource, params.get('resource'));
  const [revoked, user] = await Promise.all([store.isFamilyRevoked(record!.family), store.getUser(record!.sub)]);
  if (revoked) throw tokenError('invalid_grant', 'refresh_token has been revoked');
  if (!user) throw tokenError('invalid_grant', 'the end-user no longer exists');
  if (user.disabled) throw tokenError('invalid_grant', 'the end-user is disabled');
  // RFC 9449 §11.1: the proof is used once; recorded only now that nothing but the token's own use is left.
  if (proof) await recordDPoPProof(proof);
  if (!(await store.useRefreshToken(token, now))) {
    // Used by a concurrent request between our read and this write: the same token twice is reuse.
    await revoke(record!.family, record!.expires_at, client.client_id);
    throw tokenError('invalid_grant', REUSED);
  }
  const { sub, auth_time: authTime, acr, amr, family, authorization_details: details } = record!;
  const grant: Grant = {
    clientId: client.client_id,
    sub,
    scope: decision.scope,
    authTime,
    acr,
    amr,
    ...(details ? { authorizationDetails: JSON.parse(details) as AuthorizationDetail[] } : {}),
    // The grant keeps all its resources; this access token is for those the request named (RFC 8707 §2.2).
    ...(record!.resource ? { resource: record!.resource } : {}),
    ...(resource ? { audience: resource } : {}),
  };
  return mintTokens(client, grant, family, jkt ? { ...binding, jkt } : binding);
}

async function revoke(family: string, untilMs: number, clientId: string): Promise<void> {
  await store.revokeFamily(family, untilMs);
  log.warn('refresh token reuse detected; family revoked', { clientId });
}

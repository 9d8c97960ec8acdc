// The CIBA grant at the token endpoint (CIBA Core §10.1, §11): the rule is core/token-grant.ts (decidePoll); this
// applies it to the stored request, records polls (slow_down) and redeems exactly once. Tokens are bound to the
// client's certificate or the request's DPoP proof (RFC 9449) and may be narrowed to some resources (RFC 8707 §2.2).
import { sha256b64u } from '../core/crypto.ts';
import { tokenError } from '../core/errors.ts';
import { CIBA_GRANT, REFRESH_GRANT } from '../core/model.ts';
import { newFirstRefreshToken } from '../core/refresh-grant.ts';
import type { Params } from '../core/params.ts';
import { decidePoll, POLL_TOLERANCE_MS, SLOW_DOWN_PENALTY_S } from '../core/token-grant.ts';
import { grantFromRequest } from '../core/tokens.ts';
import type { DPoPProof } from '../core/dpop.ts';
import { narrowResources } from '../core/resource.ts';
import * as store from '../adapters/store.ts';
import { authenticateForGrantType, type Presented } from './client-auth.ts';
import { mintTokens, tokenBinding, type TokenSet } from './tokens.ts';
import { recordDPoPProof } from './dpop.ts';
import { log } from '../runtime/log.ts';
import { config } from '../config.ts';

/**
 * `proof`: the request's checked DPoP proof (RFC 9449), if it carried one. One write per poll: it counts the poll and
 * returns the request (adapters/store/requests.ts countPoll); the first poll counted after an approval redeems it, and
 * the same write has recorded the grant's first refresh token.
 */
export async function cibaGrant(params: Params, presented: Presented, proof?: DPoPProof): Promise<TokenSet> {
  const authReqId = params.get('auth_req_id');
  const id = authReqId ? sha256b64u(authReqId) : undefined;
  const client = await authenticateForGrantType(presented, CIBA_GRANT);
  const binding = tokenBinding(client, presented.certificate, proof);
  if (!id) throw tokenError('invalid_request', 'auth_req_id is required');
  const requested = params.get('resource');

  for (let attempt = 0; attempt < 2; attempt++) {
    const now = Date.now();
    // A client that gets refresh tokens: every poll records a fresh first refresh token, handed out only if it redeems.
    const refreshToken = client.grant_types.includes(REFRESH_GRANT) ? newFirstRefreshToken(id) : undefined;
    const counted = await store.countPoll(
      id,
      client.client_id,
      now,
      POLL_TOLERANCE_MS,
      refreshToken ? { hash: sha256b64u(refreshToken), ...(binding.jkt ? { jkt: binding.jkt } : {}) } : undefined,
    );
    if (!counted) {
      const refused = await store.pollRefused(id, client.client_id, now, SLOW_DOWN_PENALTY_S);
      if (refused === 'changed') continue;
      if (refused === 'redeemed') throw tokenError('invalid_grant', 'auth_req_id was already redeemed');
      if (refused === 'slow_down')
        throw tokenError('slow_down', `polled too early: wait ${SLOW_DOWN_PENALTY_S} s more between polls from now on`);
      const answer = decidePoll(refused, client.client_id, now);
      if (answer.kind === 'error') throw answer.error;
      continue;
    }
    // Counted: pending, an error, or (approved) the one redemption (core/token-grant.ts isRedeemed).
    const answer = decidePoll(counted, client.client_id, now);
    if (answer.kind === 'error') throw answer.error;
    if (answer.kind === 'pending') throw tokenError('authorization_pending', 'the end-user has not yet decided');
    // Refusals before any token is made give the redemption back (uncountPoll): nothing is consumed.
    let resource: string[] | undefined;
    try {
      // RFC 8707 §2.2: resource may narrow the requested resources for this access token (invalid_target otherwise).
      resource = narrowResources(counted.resource, requested);
      // RFC 9449 §11.1: a proof is used once; recorded only for the poll that redeems (a pending poll does not use it).
      if (proof) await recordDPoPProof(proof);
    } catch (e) {
      await store.uncountPoll(counted.id, counted.polls ?? 0);
      throw e;
    }
    log.info('auth_req_id redeemed', { requestId: counted.id, clientId: client.client_id });
    const grant = { ...grantFromRequest(counted, config().acrValues), ...(resource ? { audience: resource } : {}) };
    // A user disabled or removed after approving is not read here: disabling or removing withdraws the approvals not
    // yet redeemed (adapters/store/registry.ts withdrawApprovals), so they answer access_denied above.
    // The grant (refresh token family) is named after the request; its first refresh token is the one this poll
    // recorded, when the request was made for a client allowed one (refresh_ttl_s) and the client still is.
    const refresh = refreshToken && counted.refresh_ttl_s !== undefined ? { token: refreshToken } : ('none' as const);
    return mintTokens(client, grant, counted.id, { ...binding, refresh });
  }
  throw tokenError('invalid_grant', 'auth_req_id cannot be redeemed');
}

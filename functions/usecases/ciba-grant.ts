// The CIBA grant at the token endpoint (CIBA Core §10.1, §11): the rule is core/token-grant.ts (decidePoll); this
// applies it to the stored request, records polls (slow_down) and redeems exactly once. Tokens are bound to the
// client's certificate or the request's DPoP proof (RFC 9449) and may be narrowed to some resources (RFC 8707 §2.2).
import { randomId, sha256b64u } from '../core/crypto.ts';
import { tokenError } from '../core/errors.ts';
import { CIBA_GRANT } from '../core/model.ts';
import type { Params } from '../core/params.ts';
import { decidePoll, POLL_TOLERANCE_MS, SLOW_DOWN_PENALTY_S } from '../core/token-grant.ts';
import { grantFromRequest } from '../core/tokens.ts';
import type { DPoPProof } from '../core/dpop.ts';
import { narrowResources } from '../core/resource.ts';
import * as store from '../adapters/store.ts';
import { authenticateForGrant, type Presented } from './client-auth.ts';
import { mintTokens, tokenBinding, type TokenSet } from './tokens.ts';
import { recordDPoPProof } from './dpop.ts';
import { log } from '../runtime/log.ts';
import { config } from '../config.ts';

/** `proof`: the request's checked DPoP proof (RFC 9449), if it carried one. */
export async function cibaGrant(params: Params, presented: Presented, proof?: DPoPProof): Promise<TokenSet> {
  const authReqId = params.get('auth_req_id');
  const id = authReqId ? sha256b64u(authReqId) : undefined;
  // Client and request are independent reads: one round trip on the critical path.
  const { client, record: stored } = await authenticateForGrant(
    presented,
    CIBA_GRANT,
    id ? store.getAuthRequest(id) : Promise.resolve(undefined),
  );
  const binding = tokenBinding(client, presented.certificate, proof);
  if (!id) throw tokenError('invalid_request', 'auth_req_id is required');

  let req = stored;
  let proofRecorded = false;
  for (let attempt = 0; attempt < 2; attempt++) {
    const now = Date.now();
    const decision = decidePoll(req, client.client_id, now);
    if (decision.kind === 'error') throw decision.error;
    // RFC 8707 §2.2: resource may narrow the requested resources for this access token (invalid_target otherwise).
    const resource = narrowResources(req!.resource, params.get('resource'));
    if (decision.kind === 'pending') {
      const polled = await store.recordPoll(req!, now, POLL_TOLERANCE_MS, SLOW_DOWN_PENALTY_S);
      if (polled === 'ok') throw tokenError('authorization_pending', 'the end-user has not yet decided');
      if (polled === 'slow_down') {
        throw tokenError('slow_down', `poll no more often than every ${req!.interval + SLOW_DOWN_PENALTY_S} s`);
      }
    } else {
      // RFC 9449 §11.1: the proof is used once; recorded only now that nothing but redemption is left.
      if (proof && !proofRecorded) {
        await recordDPoPProof(proof);
        proofRecorded = true;
      }
      const [redeemed, user] = await Promise.all([
        store.redeemAuthRequest(req!.id, client.client_id, now),
        store.getUser(req!.sub),
      ]);
      if (redeemed) {
        log.info('auth_req_id redeemed', { requestId: redeemed.id, clientId: client.client_id });
        // The user may have been removed while the request was pending: no tokens for a subject that is gone.
        if (!user) throw tokenError('invalid_grant', 'the end-user no longer exists');
        // Disabled since approving: no tokens (the request stays redeemed, so it cannot be retried either).
        if (user.disabled) throw tokenError('access_denied', 'the end-user is disabled');
        const grant = {
          ...grantFromRequest(redeemed, config().acrValues),
          ...(resource ? { audience: resource } : {}),
        };
        return mintTokens(client, grant, randomId(16), binding);
      }
    }
    // The request changed between read and write (decided, redeemed or expired meanwhile): decide again on fresh state.
    req = await store.getAuthRequest(id);
  }
  throw tokenError('invalid_grant', 'auth_req_id cannot be redeemed');
}

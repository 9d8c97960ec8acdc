// POST /token: the CIBA grant (CIBA Core §10.1, §11) and refresh_token (RFC 6749 §6) at the token endpoint.
import { httpHandler, json, bodyText } from '../lib/http.ts';
import { parseForm, type Params } from '../core/params.ts';
import { certificateThumbprint } from '../core/mtls.ts';
import { presentClient, verifyClient, type Presented } from '../lib/client-authn.ts';
import { tokenError } from '../core/errors.ts';
import { randomId, sha256b64u } from '../core/crypto.ts';
import { mintTokens } from '../lib/issue-tokens.ts';
import { decidePoll, POLL_TOLERANCE_MS, SLOW_DOWN_PENALTY_S } from '../core/token-grant.ts';
import { grantFromRequest, type Grant } from '../core/tokens.ts';
import { CIBA_GRANT, REFRESH_GRANT, type Client } from '../core/model.ts';
import * as store from '../adapters/store.ts';
import { config } from '../config.ts';
import { log } from '../lib/log.ts';

export const handler = httpHandler('token', async (event) => {
  const params = parseForm(event.headers['content-type'], bodyText(event));
  const grantType = params.get('grant_type');
  if (!grantType) throw tokenError('invalid_request', 'grant_type is required');
  if (grantType !== CIBA_GRANT && grantType !== REFRESH_GRANT) throw tokenError('unsupported_grant_type', 'unsupported grant_type');
  const presented = presentClient(event, params);
  if (grantType === CIBA_GRANT) return cibaGrant(params, presented);
  return refreshGrant(params, presented);
});

async function cibaGrant(params: Params, presented: Presented) {
  const authReqId = params.get('auth_req_id');
  const id = authReqId ? sha256b64u(authReqId) : undefined;
  // Client and request are independent reads: one round trip on the critical path.
  const [registered, stored] = await Promise.all([store.getClient(presented.credentials.clientId), id ? store.getAuthRequest(id) : undefined]);
  const client = await verifyClient(registered, presented);
  const binding = certificateBinding(client, presented);
  if (!client.grant_types.includes(CIBA_GRANT)) throw tokenError('unauthorized_client', 'the client is not registered for the CIBA grant');
  if (!authReqId || !id) throw tokenError('invalid_request', 'auth_req_id is required');

  let req = stored;
  for (let attempt = 0; attempt < 2; attempt++) {
    const now = Date.now();
    const decision = decidePoll(req, client.client_id, now);
    if (decision.kind === 'error') throw decision.error;
    if (decision.kind === 'pending') {
      const polled = await store.recordPoll(req!, now, POLL_TOLERANCE_MS, SLOW_DOWN_PENALTY_S);
      if (polled === 'ok') throw tokenError('authorization_pending', 'the end-user has not yet decided');
      if (polled === 'slow_down') throw tokenError('slow_down', `poll no more often than every ${req!.interval + SLOW_DOWN_PENALTY_S} s`);
    } else {
      const [redeemed, user] = await Promise.all([store.redeemAuthRequest(req!.id, client.client_id, now), store.getUser(req!.sub)]);
      if (redeemed) {
        log.info('auth_req_id redeemed', { requestId: redeemed.id, clientId: client.client_id });
        // The user may have been removed while the request was pending: no tokens for a subject that is gone.
        if (!user) throw tokenError('invalid_grant', 'the end-user no longer exists');
        return issueTokens(client, grantFromRequest(redeemed, config().acrValues), randomId(16), binding);
      }
    }
    // The request changed between read and write (decided, redeemed or expired meanwhile): decide again on fresh state.
    req = await store.getAuthRequest(id);
  }
  throw tokenError('invalid_grant', 'auth_req_id cannot be redeemed');
}

async function refreshGrant(params: Params, presented: Presented) {
  const token = params.get('refresh_token');
  const client = await verifyClient(await store.getClient(presented.credentials.clientId), presented);
  const binding = certificateBinding(client, presented);
  if (!client.grant_types.includes(REFRESH_GRANT)) throw tokenError('unauthorized_client', 'the client is not registered for refresh_token');
  if (!token) throw tokenError('invalid_request', 'refresh_token is required');
  const now = Date.now();
  const used = await store.useRefreshToken(sha256b64u(token), now);
  if (!used.ok) {
    if (used.reason === 'reused') {
      // RFC 9700 §4.14.2: a rotated refresh token used again means theft; revoke the whole family.
      await store.revokeFamily(used.record.family, used.record.expires_at);
      log.warn('refresh token reuse detected; family revoked', { clientId: client.client_id });
    }
    throw tokenError('invalid_grant', 'refresh_token is invalid, expired or already used');
  }
  const record = used.record;
  if (record.client_id !== client.client_id) throw tokenError('invalid_grant', 'refresh_token was issued to another client');
  const [revoked, user] = await Promise.all([store.isFamilyRevoked(record.family), store.getUser(record.sub)]);
  if (revoked) throw tokenError('invalid_grant', 'refresh_token has been revoked');
  if (!user) throw tokenError('invalid_grant', 'the end-user no longer exists');
  let scope = record.scope;
  const requested = params.get('scope');
  if (requested) {
    const granted = new Set(record.scope.split(' '));
    if (!requested.split(' ').every((s) => granted.has(s))) throw tokenError('invalid_scope', 'scope exceeds the original grant');
    scope = requested;
  }
  const grant: Grant = { clientId: client.client_id, sub: record.sub, scope, authTime: record.auth_time, acr: record.acr, amr: record.amr };
  return issueTokens(client, grant, record.family, binding);
}

/**
 * RFC 8705 §3: a client registered for certificate-bound access tokens (FAPI-CIBA requires them) must call over mutual
 * TLS; its access tokens carry the certificate's thumbprint.
 */
function certificateBinding(client: Client, presented: Presented): string | undefined {
  if (!client.tls_client_certificate_bound_access_tokens) return undefined;
  if (!presented.certificate) throw tokenError('invalid_request', 'this client gets certificate-bound access tokens: call the token endpoint with its TLS client certificate (mtls_endpoint_aliases)');
  return certificateThumbprint(presented.certificate);
}

/** The token response (OIDC Core §3.1.3.3): JWT access token, ID token, and a refresh token for clients allowed one. */
async function issueTokens(client: Client, grant: Grant, family: string, certificateThumbprint?: string) {
  return json(200, await mintTokens(client, grant, family, certificateThumbprint ? { certificateThumbprint } : {}));
}

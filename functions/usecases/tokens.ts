// Minting a token set (OIDC Core §3.1.3.3, RFC 9068, CIBA §10.1.1 / §10.3.1): used by the token endpoint (poll, ping,
// refresh) and by push delivery. The claims come from functions/core/tokens.ts; signing from the keys adapter.
import type { X509Certificate } from 'node:crypto';
import { randomId, sha256b64u } from '../core/crypto.ts';
import { tokenError } from '../core/errors.ts';
import { certificateThumbprint } from '../core/mtls.ts';
import { dpopBinding, type DPoPProof } from '../core/dpop.ts';
import { accessTokenClaims, idTokenClaims, type Grant } from '../core/tokens.ts';
import { refreshTokenRecord } from '../core/refresh-grant.ts';
import { ACCESS_TOKEN_ALG } from '../core/capabilities.ts';
import { REFRESH_GRANT, type AuthorizationDetail, type Client } from '../core/model.ts';
import * as store from '../adapters/store.ts';
import { signJwt } from '../adapters/keys.ts';
import { config } from '../config.ts';

export type TokenSet = {
  access_token: string;
  /** RFC 9449 §5: DPoP for a DPoP-bound access token. */
  token_type: 'Bearer' | 'DPoP';
  expires_in: number;
  scope: string;
  /** RFC 9396 §7: the granted authorization details. */
  authorization_details?: AuthorizationDetail[];
  id_token?: string;
  refresh_token?: string;
};

export type MintOptions = {
  /** Push only: adds the CIBA §10.3.1 claims auth_req_id, at_hash and rt_hash to the ID token. */
  authReqId?: string;
  /** RFC 8705 §3: bind the access token to this certificate (cnf.x5t#S256). */
  certificateThumbprint?: string;
  /** RFC 9449 §6: bind the access token to this DPoP key (cnf.jkt), and the grant's refresh tokens with it. */
  jkt?: string;
  /**
   * The refresh token: by default, for a client allowed one, a new one stored on a row of its own. `{ token }`: one
   * already recorded with the grant (the first token of a redemption at the token endpoint, written by the poll that
   * redeemed). `'none'`: no refresh token.
   */
  refresh?: { token: string } | 'none';
};

/**
 * JWT access token, ID token (with openid), and a refresh token for clients allowed one (stored as its SHA-256 under
 * `family` for rotation, with what the grant is: scope, authorization details, resources, DPoP key; or already
 * recorded, options.refresh).
 */
export async function mintTokens(
  client: Client,
  grant: Grant,
  family: string,
  options: MintOptions = {},
): Promise<TokenSet> {
  const { authReqId, certificateThumbprint, jkt, refresh } = options;
  const cfg = config();
  const nowS = Math.floor(Date.now() / 1000);
  const recorded = typeof refresh === 'object' ? refresh.token : undefined;
  const refreshToken =
    recorded ?? (refresh !== 'none' && client.grant_types.includes(REFRESH_GRANT) ? randomId(32) : undefined);
  const binding = certificateThumbprint ? { certificateThumbprint } : jkt ? { jkt } : {};
  const alg = client.id_token_signed_response_alg;
  // The refresh token is stored while the tokens are signed (the ID token's at_hash needs the access token first).
  const [{ accessToken, idToken }] = await Promise.all([
    (async () => {
      const accessToken = await signJwt(
        accessTokenClaims(cfg.issuer, grant, nowS, cfg.accessTokenTtl, { ...binding, grantId: family }),
        ACCESS_TOKEN_ALG,
        'at+jwt',
      );
      const extras = authReqId ? { authReqId, accessToken, ...(refreshToken ? { refreshToken } : {}) } : {};
      return {
        accessToken,
        idToken: grant.scope.split(' ').includes('openid')
          ? await signJwt(idTokenClaims(cfg.issuer, grant, alg, nowS, cfg.idTokenTtl, extras), alg)
          : undefined,
      };
    })(),
    refreshToken && !recorded
      ? store.putRefreshToken(
          sha256b64u(refreshToken),
          refreshTokenRecord(grant, family, Date.now() + cfg.refreshTokenTtl * 1000, jkt),
        )
      : undefined,
  ]);
  return {
    access_token: accessToken,
    token_type: jkt && !certificateThumbprint ? 'DPoP' : 'Bearer',
    expires_in: cfg.accessTokenTtl,
    scope: grant.scope,
    ...(grant.authorizationDetails?.length ? { authorization_details: grant.authorizationDetails } : {}),
    ...(idToken ? { id_token: idToken } : {}),
    ...(refreshToken ? { refresh_token: refreshToken } : {}),
  };
}

/**
 * RFC 8705 §3: a client registered for certificate-bound access tokens (FAPI-CIBA requires them) must call over mutual
 * TLS; its access tokens carry the certificate's thumbprint.
 */
export function certificateBinding(client: Client, certificate: X509Certificate | undefined): MintOptions {
  if (!client.tls_client_certificate_bound_access_tokens) return {};
  if (!certificate) {
    throw tokenError(
      'invalid_request',
      'this client gets certificate-bound access tokens: call the token endpoint with its TLS client certificate ' +
        '(mtls_endpoint_aliases)',
    );
  }
  return { certificateThumbprint: certificateThumbprint(certificate) };
}

/**
 * What the tokens of a token request are bound to: the client's certificate (RFC 8705 §3) or the key of its DPoP
 * proof (RFC 9449 §5; rules in core/dpop.ts dpopBinding). `grantJkt`: the DPoP key a refreshed grant is bound to.
 */
export function tokenBinding(
  client: Client,
  certificate: X509Certificate | undefined,
  proof: DPoPProof | undefined,
  grantJkt?: string,
): MintOptions {
  const certificateBound = certificateBinding(client, certificate);
  const jkt = dpopBinding(client, proof?.jkt, grantJkt);
  return jkt ? { ...certificateBound, jkt } : certificateBound;
}

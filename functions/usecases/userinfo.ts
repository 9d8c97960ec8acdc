// UserInfo (OIDC Core §5.3) for RFC 9068 JWT access tokens issued by this server: Bearer tokens (RFC 6750) and
// DPoP-bound tokens (RFC 9449 §7: `Authorization: DPoP <token>` with a proof naming the token). The checks in order:
// the token, its audience (RFC 8707), its binding (DPoP or certificate), revocation, scope, the user.
import { bodyText, type HttpEvent } from '../runtime/http.ts';
import { OAuthError } from '../core/errors.ts';
import { userinfoClaims } from '../core/tokens.ts';
import { boundJkt } from '../core/dpop.ts';
import { DPOP_ALGS } from '../core/capabilities.ts';
import { getUser } from '../adapters/store.ts';
import { confirmsCertificate } from '../core/mtls.ts';
import { presentedCertificate } from './client-auth.ts';
import { checkDPoP, recordDPoPProof, withHeaders } from './dpop.ts';
import { accessTokenRevoked, verifiedAccessToken } from './token-status.ts';
import { PATHS } from '../routes.ts';
import { config } from '../config.ts';

type Scheme = 'Bearer' | 'DPoP';

/** A quoted-string of a WWW-Authenticate parameter holds no `"` or `\` (and only what RFC 6749 allows in a description). */
const quoted = (text: string) => text.replace(/[^\x20-\x21\x23-\x5B\x5D-\x7E]/g, '');

/**
 * RFC 6750 §3 / RFC 9449 §7.1: a 401 (or `status`) with the challenge of the scheme the token is used with; the DPoP
 * challenge also names the accepted proof algorithms.
 */
function challenge(
  scheme: Scheme,
  error: 'invalid_token' | 'invalid_request' | 'insufficient_scope' | 'invalid_dpop_proof' | 'use_dpop_nonce',
  description: string,
  options: { status?: number; extra?: string } = {},
): OAuthError {
  const params = [
    `error="${error}"`,
    `error_description="${quoted(description)}"`,
    ...(options.extra ? [options.extra] : []),
  ];
  if (scheme === 'DPoP') params.push(`algs="${DPOP_ALGS.join(' ')}"`);
  return new OAuthError(error, description, {
    status: options.status ?? 401,
    headers: { 'WWW-Authenticate': `${scheme} realm="ciba", ${params.join(', ')}` },
  });
}

/**
 * RFC 6750 §2.1 `Bearer` or RFC 9449 §7.1 `DPoP` header (schemes are case-insensitive), or the §2.2 form body (Bearer),
 * not both; undefined when the request carries none.
 */
function presentedToken(
  authorization: string | undefined,
  contentType: string | undefined,
  body: string,
): { scheme: Scheme; token: string } | undefined {
  const [, scheme, value] = /^(bearer|dpop) +(\S+) *$/i.exec(authorization ?? '') ?? [];
  const fromHeader =
    scheme && value
      ? { scheme: (scheme.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer') as Scheme, token: value }
      : undefined;
  const fromBody = contentType?.startsWith('application/x-www-form-urlencoded')
    ? (new URLSearchParams(body).get('access_token') ?? undefined)
    : undefined;
  if (fromHeader && fromBody) throw new OAuthError('invalid_request', 'access token sent more than once');
  return fromHeader ?? (fromBody ? { scheme: 'Bearer', token: fromBody } : undefined);
}

export type UserinfoAnswer =
  /** RFC 6750 §3.1: a request without any authentication gets the challenge and no error code. */
  { kind: 'unauthenticated' } | { kind: 'claims'; claims: Record<string, unknown>; headers: Record<string, string> };

export async function userinfo(event: HttpEvent): Promise<UserinfoAnswer> {
  const presented = presentedToken(event.headers.authorization, event.headers['content-type'], bodyText(event));
  if (!presented) return { kind: 'unauthenticated' };
  const { scheme, token } = presented;
  const payload = await verifiedAccessToken(token);
  if (!payload) throw challenge(scheme, 'invalid_token', 'the access token is invalid or expired');
  // RFC 8707: a token for other resources is not for this server, unless the issuer is among them.
  const audience = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  if (!audience.includes(config().issuer))
    throw challenge(scheme, 'invalid_token', 'the access token is not for this server (aud)');
  const jkt = boundJkt(payload.cnf);
  // RFC 9449 §7.2: a DPoP-bound token is never accepted as a Bearer token; a Bearer token is not sent as DPoP.
  if (jkt && scheme === 'Bearer')
    throw challenge(
      'DPoP',
      'invalid_token',
      'the access token is DPoP-bound: send it with the DPoP scheme and a proof',
    );
  if (!jkt && scheme === 'DPoP')
    throw challenge('Bearer', 'invalid_token', 'the access token is not DPoP-bound: send it with the Bearer scheme');
  // RFC 9449 §7.1: the proof names this request and this token (ath); its errors become DPoP challenges.
  const dpop = jkt ? await checkProof(event, token) : { headers: {} };
  try {
    if (jkt && dpop.proof?.jkt !== jkt)
      throw challenge(
        'DPoP',
        'invalid_token',
        'the DPoP proof is not signed with the key the access token is bound to',
      );
    // RFC 8705 §3: a certificate-bound token is accepted only over mutual TLS with that certificate.
    if (!jkt && payload.cnf !== undefined && !confirmsCertificate(payload.cnf, presentedCertificate(event))) {
      throw challenge(
        scheme,
        'invalid_token',
        'the access token is bound to a client certificate that was not presented',
      );
    }
    // RFC 7009: a revoked token (or one of a revoked grant) no longer works; nor one of a user who is gone.
    const [revoked, user] = await Promise.all([accessTokenRevoked(payload), getUser(String(payload.sub))]);
    if (revoked) throw challenge(scheme, 'invalid_token', 'the access token has been revoked');
    const scope = String(payload.scope);
    if (!scope.split(' ').includes('openid')) {
      throw challenge(scheme, 'insufficient_scope', 'the openid scope is required', {
        status: 403,
        extra: 'scope="openid"',
      });
    }
    if (!user) throw challenge(scheme, 'invalid_token', 'the subject no longer exists');
    // RFC 9449 §11.1: the proof is used once; recorded only now that the request passed every other check.
    if (dpop.proof) await recordDPoPProof(dpop.proof).catch((e: unknown) => Promise.reject(asChallenge(e)));
    return { kind: 'claims', claims: userinfoClaims(user, scope), headers: dpop.headers };
  } catch (e) {
    throw withHeaders(e, dpop.headers);
  }
}

/** RFC 9449 §7.1, §9: the proof of a DPoP-bound token; a missing one is invalid_dpop_proof too. */
async function checkProof(event: HttpEvent, token: string) {
  if (event.headers.dpop === undefined)
    throw challenge('DPoP', 'invalid_dpop_proof', 'a DPoP proof is required with a DPoP-bound access token');
  try {
    return await checkDPoP(event, PATHS.userinfo, token);
  } catch (e) {
    throw asChallenge(e);
  }
}

/** The token endpoint's form of a DPoP error (400 JSON) as a resource server answers it (401 with a DPoP challenge). */
function asChallenge(e: unknown): unknown {
  if (!(e instanceof OAuthError) || (e.error !== 'invalid_dpop_proof' && e.error !== 'use_dpop_nonce')) return e;
  const answer = challenge('DPoP', e.error, e.message);
  return withHeaders(answer, { ...e.headers, ...answer.headers });
}

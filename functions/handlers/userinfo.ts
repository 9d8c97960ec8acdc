// GET|POST /userinfo (OIDC Core §5.3) for RFC 9068 JWT access tokens issued by this server (RFC 6750 bearer usage).
import { jwtVerify, type JWTPayload } from 'jose';
import { httpHandler, json, bodyText } from '../runtime/http.ts';
import { OAuthError } from '../core/errors.ts';
import { userinfoClaims } from '../core/tokens.ts';
import { ACCESS_TOKEN_ALG } from '../core/capabilities.ts';
import { ownKeys } from '../adapters/keys.ts';
import { getUser } from '../adapters/store.ts';
import { confirmsCertificate } from '../core/mtls.ts';
import { presentedCertificate } from '../usecases/client-auth.ts';
import { config } from '../config.ts';

const challenge = (error?: string, description?: string) =>
  new OAuthError('invalid_token', description ?? 'access token required', {
    headers: {
      'WWW-Authenticate': error
        ? `Bearer realm="ciba", error="${error}", error_description="${description}"`
        : 'Bearer realm="ciba"',
    },
  });

/** RFC 6750 §2.1 header or §2.2 form body, not both. */
function bearerToken(authorization: string | undefined, contentType: string | undefined, body: string): string {
  const fromHeader = authorization?.toLowerCase().startsWith('bearer ') ? authorization.slice(7).trim() : undefined;
  const fromBody = contentType?.startsWith('application/x-www-form-urlencoded')
    ? (new URLSearchParams(body).get('access_token') ?? undefined)
    : undefined;
  if (fromHeader && fromBody) throw new OAuthError('invalid_request', 'access token sent more than once');
  const token = fromHeader ?? fromBody;
  if (!token) throw challenge();
  return token;
}

export const handler = httpHandler('userinfo', async (event) => {
  const cfg = config();
  const token = bearerToken(event.headers.authorization, event.headers['content-type'], bodyText(event));
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, await ownKeys(), {
      issuer: cfg.issuer,
      audience: cfg.issuer,
      typ: 'at+jwt',
      algorithms: [ACCESS_TOKEN_ALG],
      requiredClaims: ['sub', 'exp', 'scope', 'client_id'],
    }));
  } catch {
    throw challenge('invalid_token', 'the access token is invalid or expired');
  }
  // RFC 8705 §3: a certificate-bound token is accepted only over mutual TLS with that certificate.
  if (payload.cnf !== undefined && !confirmsCertificate(payload.cnf, presentedCertificate(event))) {
    throw challenge('invalid_token', 'the access token is bound to a client certificate that was not presented');
  }
  const scope = String(payload.scope);
  if (!scope.split(' ').includes('openid')) {
    throw new OAuthError('insufficient_scope', 'the openid scope is required', {
      headers: { 'WWW-Authenticate': 'Bearer realm="ciba", error="insufficient_scope", scope="openid"' },
    });
  }
  const user = await getUser(String(payload.sub));
  if (!user) throw challenge('invalid_token', 'the subject no longer exists');
  return json(200, userinfoClaims(user, scope));
});

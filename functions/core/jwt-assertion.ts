// Client authentication with a JWT (RFC 7523 §2.2, §3; OIDC Core §9 client_secret_jwt and private_key_jwt;
// FAPI 1 Advanced §5.2.2-14): signature by jose, iss = sub = client_id, aud names this server and nothing else
// (draft-ietf-oauth-rfc7523bis, FAPI 2.0; see jws.ts audienceVerdict), short-lived, with a jti.
// Any failure is 401 invalid_client. The caller makes the jti single use until exp.
import { decodeJwt, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { audienceProblem, compactJwsAlg, verificationFailure } from './jws.ts';
import { OAuthError } from './errors.ts';
import { CLIENT_ID_SYNTAX } from './model.ts';
import type { Params } from './params.ts';

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const ASSERTION_JTI_MAX = 256;

export type AssertionPolicy = {
  clientId: string;
  /**
   * Accepted audiences: the issuer, the token endpoint URL and the backchannel endpoint URL (and their mTLS aliases).
   * `aud` must be exactly one of them: a string, or an array of one element; never an array of several.
   */
  audiences: readonly string[];
  /** Allowed JWS algs: HS256 for client_secret_jwt; PS256/ES256/RS256 for private_key_jwt (caller decides; FAPI: PS256/ES256). */
  algorithms: readonly string[];
  /** Epoch seconds. */
  now: number;
  /** Seconds of clock skew allowed on exp, nbf and iat, e.g. 30. */
  clockTolerance: number;
  /** Seconds an assertion may live from now (exp − now), e.g. 600. */
  maxLifetime: number;
};

/** The client's key resolver (private_key_jwt) or its shared secret as bytes (client_secret_jwt). */
export type AssertionKey = JWTVerifyGetKey | Uint8Array;

const fail = (why: string) => new OAuthError('invalid_client', why);

/** RFC 7521 §4.2: client_assertion_type and client_assertion come together, and the type must be jwt-bearer (RFC 7523 §2.2). */
export function assertionParams(params: Params): { assertion: string } | undefined {
  const type = params.get('client_assertion_type');
  const assertion = params.get('client_assertion');
  if (type === undefined && assertion === undefined) return undefined;
  if (type === undefined) throw fail('client_assertion requires client_assertion_type');
  if (type !== CLIENT_ASSERTION_TYPE) throw fail(`client_assertion_type must be ${CLIENT_ASSERTION_TYPE}`);
  if (assertion === undefined) throw fail('client_assertion_type requires client_assertion');
  return { assertion };
}

/**
 * RFC 7523 §3: the client the assertion claims to be (sub, else iss), decoded WITHOUT verification, only to know which
 * client's keys to load. Undefined when the JWT is malformed or names no possible client_id.
 */
export function assertionClientId(jwt: string): string | undefined {
  let claims: JWTPayload;
  try {
    claims = decodeJwt(jwt);
  } catch {
    return undefined;
  }
  for (const value of [claims.sub, claims.iss]) {
    if (typeof value === 'string' && CLIENT_ID_SYNTAX.test(value)) return value;
  }
  return undefined;
}

const MALFORMED = 'client_assertion is not a well-formed signed JWT';

/** RFC 7523 §3 (and §3.1 for the error): verify a client assertion; returns jti and exp for the replay cache. */
export async function verifyClientAssertion(
  jwt: string,
  key: AssertionKey,
  policy: AssertionPolicy,
): Promise<{ jti: string; exp: number }> {
  const alg = compactJwsAlg(jwt);
  if (alg === undefined) throw fail(MALFORMED);
  if (alg === 'none') throw fail('client_assertion must be signed (alg none is not allowed)');
  if (!policy.algorithms.includes(alg)) {
    throw fail(`client_assertion alg is not allowed for this client (allowed: ${policy.algorithms.join(', ')})`);
  }

  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(jwt, key, {
      algorithms: [...policy.algorithms],
      currentDate: new Date(policy.now * 1000),
      clockTolerance: policy.clockTolerance,
    }));
  } catch (e) {
    if (e instanceof OAuthError) throw e;
    throw fail(
      verificationFailure(e, 'client_assertion', {
        malformed: MALFORMED,
        unknownKey: 'client_assertion is not signed by a key registered for this client',
      }),
    );
  }

  const { iss, sub, aud, exp, iat, jti } = payload;
  if (iss === undefined) throw fail('client_assertion iss is required');
  if (iss !== policy.clientId) throw fail('client_assertion iss must be the client_id');
  if (sub === undefined) throw fail('client_assertion sub is required');
  if (sub !== policy.clientId) throw fail('client_assertion sub must be the client_id');
  // One audience, ours (jws.ts audienceVerdict): an array naming another party too is refused, not searched.
  const audience = audienceProblem(aud, policy.audiences, 'client_assertion', 'name this authorization server');
  if (audience) throw fail(audience);
  if (exp === undefined) throw fail('client_assertion exp is required');
  if (exp - policy.now > policy.maxLifetime + policy.clockTolerance) {
    throw fail(`client_assertion exp is more than ${policy.maxLifetime} s in the future`);
  }
  if (iat !== undefined && iat > policy.now + policy.clockTolerance)
    throw fail('client_assertion iat is in the future');
  if (jti === undefined) throw fail('client_assertion jti is required');
  if (typeof jti !== 'string' || jti === '' || jti.length > ASSERTION_JTI_MAX) {
    throw fail(`client_assertion jti must be a non-empty string of at most ${ASSERTION_JTI_MAX} characters`);
  }
  return { jti, exp };
}

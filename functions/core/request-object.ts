// Signed authentication requests (CIBA Core §7.1.1; FAPI-CIBA §5.2.2): the request parameters as claims of a JWT the
// client signs with an asymmetric key it registered, bound to this server (aud) and short-lived (nbf, exp). Any
// failure is 400 invalid_request. The caller makes the jti single use until exp.
import { jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { audienceProblem, compactJwsAlg, isSymmetricAlg, verificationFailure } from './jws.ts';
import { OAuthError } from './errors.ts';
import type { Params } from './params.ts';

export const REQUEST_OBJECT_JTI_MAX = 256;

export type RequestObjectPolicy = {
  /** The only accepted aud value: a string, or an array of exactly this one element (jws.ts audienceVerdict). */
  issuer: string;
  /** The required iss. */
  clientId: string;
  /** Asymmetric algs only: the client's registered backchannel_authentication_request_signing_alg, else PS256/ES256/RS256 (FAPI: PS256/ES256). */
  algorithms: readonly string[];
  /** Epoch seconds. */
  now: number;
  /** Seconds iat and nbf may lie in the future (and exp in the past), e.g. 30. */
  clockTolerance: number;
  /** Longest accepted exp − nbf in seconds, e.g. 3600. */
  maxLifetime: number;
  /** Oldest accepted nbf, in seconds before now, e.g. 3600. */
  maxAge: number;
};

/** JWT claims (RFC 7519 §4.1) that describe the request object itself and are not authentication request parameters. */
const ENVELOPE_CLAIMS = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'jti']);
/** The only form parameters allowed next to `request` (§7.1.1): the request object and client authentication. */
const OUTSIDE_ALLOWED = new Set(['request', 'client_id', 'client_secret', 'client_assertion', 'client_assertion_type']);

const invalid = (why: string) => new OAuthError('invalid_request', why);
const MALFORMED = 'request must be a signed JWT (JWS compact serialization)';

/** §7.1.1: with `request`, every authentication request parameter must be inside it; only client authentication may sit outside. */
export function checkOnlyRequestObject(params: Params): void {
  if (!params.has('request')) return;
  for (const name of params.keys()) {
    if (!OUTSIDE_ALLOWED.has(name))
      throw invalid(`parameter ${name.slice(0, 64)} must be sent inside the signed request object`);
  }
}

/** §7.1.1 and FAPI-CIBA §5.2.2: verify a signed authentication request; returns its parameters and jti/exp for the replay cache. */
export async function verifyRequestObject(
  jwt: string,
  getKey: JWTVerifyGetKey,
  policy: RequestObjectPolicy,
): Promise<{ params: Map<string, string>; jti: string; exp: number }> {
  const alg = compactJwsAlg(jwt);
  if (alg === undefined) throw invalid(MALFORMED);
  if (alg === 'none') throw invalid('request object must be signed (alg none is not allowed)');
  if (isSymmetricAlg(alg)) throw invalid('request object must be signed with an asymmetric algorithm');
  const algorithms = policy.algorithms.filter((a) => !isSymmetricAlg(a));
  if (!algorithms.includes(alg))
    throw invalid(`request object alg is not allowed for this client (allowed: ${algorithms.join(', ')})`);

  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(jwt, getKey, {
      algorithms,
      currentDate: new Date(policy.now * 1000),
      clockTolerance: policy.clockTolerance,
    }));
  } catch (e) {
    if (e instanceof OAuthError) throw e;
    throw invalid(
      verificationFailure(e, 'request object', {
        malformed: MALFORMED,
        unknownKey: 'request object is not signed by a key registered for this client',
      }),
    );
  }

  const { iss, aud, exp, iat, nbf, jti } = payload;
  // §7.1.1: aud is the issuer, as the sole audience (jws.ts audienceVerdict).
  const audience = audienceProblem(aud, [policy.issuer], 'request object', 'be the issuer');
  if (audience) throw invalid(audience);
  if (iss === undefined) throw invalid('request object iss is required');
  if (iss !== policy.clientId) throw invalid('request object iss must be the client_id');
  if (exp === undefined) throw invalid('request object exp is required');
  if (iat === undefined) throw invalid('request object iat is required');
  if (nbf === undefined) throw invalid('request object nbf is required');
  if (jti === undefined) throw invalid('request object jti is required');
  if (typeof jti !== 'string' || jti === '' || jti.length > REQUEST_OBJECT_JTI_MAX) {
    throw invalid(`request object jti must be a non-empty string of at most ${REQUEST_OBJECT_JTI_MAX} characters`);
  }
  // jose checked that exp, iat and nbf are numbers, that exp has not passed and that nbf is not in the future.
  if (iat > policy.now + policy.clockTolerance) throw invalid('request object iat is in the future');
  if (nbf < policy.now - policy.maxAge) throw invalid(`request object nbf is more than ${policy.maxAge} s in the past`);
  if (exp - nbf > policy.maxLifetime)
    throw invalid(`request object lifetime (exp - nbf) exceeds ${policy.maxLifetime} s`);

  return { params: requestParams(payload, policy.clientId), jti, exp };
}

/** §7.1.1: every claim except the JWT envelope is an authentication request parameter, as the form would carry it. */
function requestParams(payload: JWTPayload, clientId: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const [name, value] of Object.entries(payload)) {
    if (ENVELOPE_CLAIMS.has(name)) continue;
    if (name === 'request' || name === 'request_uri') throw invalid(`request object must not contain ${name}`);
    if (name === 'client_id' && value !== clientId)
      throw invalid('request object client_id must be the authenticated client');
    // Like an empty form value (params.ts), an empty or null claim counts as absent.
    if (value === null || value === '') continue;
    if (name === 'requested_expiry') {
      const ok =
        typeof value === 'number'
          ? Number.isSafeInteger(value) && value > 0
          : typeof value === 'string' && /^[0-9]{1,15}$/.test(value) && Number(value) > 0;
      if (!ok) throw invalid('requested_expiry must be a positive integer');
      params.set(name, String(Number(value)));
      continue;
    }
    params.set(name, typeof value === 'string' ? value : JSON.stringify(value));
  }
  return params;
}

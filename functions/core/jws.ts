// What every JWT this server receives goes through first (RFC 7515 compact serialization, RFC 7519): client
// assertions (jwt-assertion.ts), request objects (request-object.ts) and hints (hints.ts). Verification itself is jose's.
import { decodeJwt, decodeProtectedHeader, errors } from 'jose';

/** The `alg` of a compact JWS whose header and payload decode as JSON; undefined for anything else. */
export function compactJwsAlg(jwt: string): string | undefined {
  try {
    if (jwt.split('.').length !== 3) return undefined;
    const { alg } = decodeProtectedHeader(jwt);
    decodeJwt(jwt);
    return typeof alg === 'string' ? alg : undefined;
  } catch {
    return undefined;
  }
}

/** `none` and the HMAC algorithms: not acceptable where an asymmetric signature is required (CIBA §7.1.1). */
export const isSymmetricAlg = (alg: string): boolean => alg === 'none' || alg.startsWith('HS');

/**
 * Why jose's jwtVerify refused `what` when it ran with no claim options: only the signature, the key lookup and the
 * time claims can fail. `malformed` and `unknownKey` are the caller's wording for those two cases.
 */
export function verificationFailure(e: unknown, what: string, wording: { malformed: string; unknownKey: string }): string {
  if (e instanceof errors.JWTExpired) return `${what} has expired (exp)`;
  if (e instanceof errors.JWTClaimValidationFailed) return e.reason === 'invalid' ? `${what} ${e.claim} must be a number` : `${what} ${e.claim} is in the future`;
  if (e instanceof errors.JWSSignatureVerificationFailed) return `${what} signature is invalid`;
  if (e instanceof errors.JWTInvalid || e instanceof errors.JWSInvalid) return wording.malformed;
  return wording.unknownKey;
}

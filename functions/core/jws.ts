// What every JWT this server receives goes through (RFC 7515 compact serialization, RFC 7519): client assertions
// (jwt-assertion.ts), request objects (request-object.ts), hints (hints.ts) and, for the audience rule, device
// assertions (device-assertion.ts). Verification itself is jose's.
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
export function verificationFailure(
  e: unknown,
  what: string,
  wording: { malformed: string; unknownKey: string },
): string {
  if (e instanceof errors.JWTExpired) return `${what} has expired (exp)`;
  if (e instanceof errors.JWTClaimValidationFailed)
    return e.reason === 'invalid' ? `${what} ${e.claim} must be a number` : `${what} ${e.claim} is in the future`;
  if (e instanceof errors.JWSSignatureVerificationFailed) return `${what} signature is invalid`;
  if (e instanceof errors.JWTInvalid || e instanceof errors.JWSInvalid) return wording.malformed;
  return wording.unknownKey;
}

/** What audienceVerdict finds: `ok`, or why not. */
export type AudienceVerdict = 'ok' | 'missing' | 'multiple' | 'foreign';

/**
 * The audience rule for every JWT addressed to this server: client assertions (jwt-assertion.ts), device assertions
 * (device-assertion.ts), signed authentication requests (request-object.ts) and login_hint_tokens (hints.ts). After
 * draft-ietf-oauth-rfc7523bis and the FAPI 2.0 Security Profile, `aud` names this server as its sole value: a JWT
 * addressed to several parties can be replayed to this server by any of them, so a foreign audience must never ride
 * along with ours.
 *  - Accepted: a string that is one of `accepted`, or an array holding exactly one such string (RFC 7519 §4.1.3 allows
 *    a single audience as either; the draft asks senders for the string, and a one-element array still names one
 *    audience, so existing clients keep working).
 *  - Refused: any array of more than one element, even when every element names this server; any value not in
 *    `accepted` (compared exactly, RFC 3986 §6.2.1 simple string comparison); anything but strings.
 * `accepted` is the caller's: the issuer, and for client assertions also the endpoint URLs RFC 7523 §3 used to allow.
 * The caller turns the verdict into its own error (401 invalid_client, 400 invalid_request, ...).
 */
export function audienceVerdict(aud: unknown, accepted: readonly string[]): AudienceVerdict {
  if (aud === undefined) return 'missing';
  const values: readonly unknown[] = Array.isArray(aud) ? aud : [aud];
  if (values.length > 1) return 'multiple';
  const only = values[0];
  return typeof only === 'string' && accepted.includes(only) ? 'ok' : 'foreign';
}

/**
 * Why `aud` of `what` (e.g. `client_assertion`) breaks the audience rule, in words for error_description; undefined
 * when it is fine. `expected` completes "aud must …" for a foreign value, e.g. `be the issuer`.
 */
export function audienceProblem(
  aud: unknown,
  accepted: readonly string[],
  what: string,
  expected: string,
): string | undefined {
  switch (audienceVerdict(aud, accepted)) {
    case 'ok':
      return undefined;
    case 'missing':
      return `${what} aud is required`;
    case 'multiple':
      return `${what} aud must be a single audience (this server), not an array of ${(aud as unknown[]).length}`;
    case 'foreign':
      return `${what} aud must ${expected}`;
  }
}

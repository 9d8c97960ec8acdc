// Enrolling an authentication device (docs/device-api.md, "Enrolling devices"): a one-time code, and a proof that
// the new device holds the private key of the public key it registers. Pure rules; the enrol use case does the I/O.
import { importJWK, jwtVerify, type JWK } from 'jose';
import { OAuthError } from './errors.ts';
import { audienceProblem, compactJwsAlg } from './jws.ts';
import { validateChannel, type DeviceChannel } from './device-channel.ts';

/** 256 bits of randomness, base64url: far beyond guessing (the contract asks at least 128). */
export const ENROLMENT_CODE_BYTES = 32;
export const ENROLMENT_CODE_SYNTAX = /^[A-Za-z0-9_-]{43}$/;
/** A proof's `iat` may be at most this old (and this far ahead, for clock skew). */
export const PROOF_MAX_AGE_S = 60;
export const DEVICE_NAME_MAX = 64;

/** The link a person opens on the new device: the code rides in the fragment, so it never reaches a server log. */
export function enrolUrl(issuer: string, code: string): string {
  return `${issuer}/device/#enrol=${code}`;
}

export type EnrolmentRequest = { code: string; jwk: JWK; name?: string; channel?: DeviceChannel; proof: string };

const invalidRequest = (why: string) => new OAuthError('invalid_request', why);
const invalidGrant = (why: string) => new OAuthError('invalid_grant', why);

/** A P-256 public key as a JWK: no private part, nothing but what identifies the key. */
export function publicP256Jwk(value: unknown): JWK | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const { kty, crv, x, y, d } = value as Record<string, unknown>;
  const coord = /^[A-Za-z0-9_-]{43}$/;
  if (kty !== 'EC' || crv !== 'P-256' || d !== undefined) return undefined;
  if (typeof x !== 'string' || typeof y !== 'string' || !coord.test(x) || !coord.test(y)) return undefined;
  return { kty, crv, x, y };
}

/** A device name a person gave or the app derived: one line of displayable text. */
export function validateDeviceName(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalidRequest('name must be a string');
  const name = value.normalize('NFC').trim();
  if (name.length === 0 || [...name].length > DEVICE_NAME_MAX || /[\p{C}\u2028\u2029]/u.test(name)) {
    throw invalidRequest(`name must be one line of at most ${DEVICE_NAME_MAX} characters`);
  }
  return name;
}

/** `POST /device/enrol` body: {code, jwk, name?, channel?, proof}; anything malformed is invalid_request. */
export function parseEnrolmentRequest(body: unknown, options: { localMode: boolean }): EnrolmentRequest {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw invalidRequest('body must be a JSON object');
  const { code, jwk, name, channel, proof } = body as Record<string, unknown>;
  if (typeof code !== 'string' || code.length === 0 || code.length > 256) throw invalidRequest('code is required');
  const key = publicP256Jwk(jwk);
  if (!key) throw invalidRequest('jwk must be a P-256 public key (kty EC, crv P-256, x, y)');
  if (typeof proof !== 'string' || compactJwsAlg(proof) === undefined)
    throw invalidRequest('proof must be a compact JWS');
  const deviceName = validateDeviceName(name);
  const deviceChannel = channel === undefined || channel === null ? undefined : validateChannel(channel, options);
  return {
    code,
    jwk: key,
    proof,
    ...(deviceName !== undefined ? { name: deviceName } : {}),
    ...(deviceChannel ? { channel: deviceChannel } : {}),
  };
}

/**
 * Proof of possession: a compact JWS (ES256) made with the private key of `jwk`, claims `aud` = issuer (sole),
 * `iat` within PROOF_MAX_AGE_S, `jti`, and `code` = the enrolment code. Returns the jti and its expiry for the
 * replay cache; anything else is invalid_grant (the contract's answer for "a proof not made with jwk").
 */
export async function verifyEnrolmentProof(
  request: EnrolmentRequest,
  issuer: string,
  nowS: number,
): Promise<{ jti: string; exp: number }> {
  if (compactJwsAlg(request.proof) !== 'ES256') throw invalidGrant('proof must be signed with ES256');
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(request.proof, await importJWK(request.jwk, 'ES256'), {
      algorithms: ['ES256'],
      currentDate: new Date(nowS * 1000),
    }));
  } catch {
    throw invalidGrant('proof is not signed by the key in jwk');
  }
  const audience = audienceProblem(payload.aud, [issuer], 'proof', 'be the issuer');
  if (audience) throw invalidGrant(audience);
  const { iat, jti, code } = payload;
  if (typeof iat !== 'number' || Math.abs(nowS - iat) > PROOF_MAX_AGE_S) {
    throw invalidGrant(`proof iat must be within ${PROOF_MAX_AGE_S} s of now`);
  }
  if (typeof jti !== 'string' || jti.length < 16 || jti.length > 256) throw invalidGrant('proof jti is required');
  if (code !== request.code) throw invalidGrant('proof is for another code');
  return { jti, exp: iat + PROOF_MAX_AGE_S };
}

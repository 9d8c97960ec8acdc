// Device assertions (docs/device-api.md): a compact JWS signed by the authentication device's own key, bound to
// the issuer (its sole audience), the HTTP method and URL, short-lived (≤ 120 s) and single use. Anything wrong is
// 401 invalid_token.
import { decodeJwt, importJWK, jwtVerify, type JWK, type JWTPayload } from 'jose';
import { OAuthError } from './errors.ts';
import { audienceProblem } from './jws.ts';
import { DEVICE_ID_SYNTAX, type Device } from './model.ts';

export const DEVICE_ASSERTION_MAX_LIFETIME_S = 120;
const CLOCK_SKEW_S = 30;

export type DeviceAssertionContext = {
  issuer: string;
  method: string;
  /** The request URL without query, as the device must name it in `htu`. */
  url: string;
  loadDevice(deviceId: string): Promise<Device | undefined>;
  /** Records the jti until `exp`; false when it was seen before. */
  useJti(device: Device, jti: string, exp: number): Promise<boolean>;
  nowS: number;
};

const unauthorized = (why: string) =>
  new OAuthError('invalid_token', why, {
    headers: { 'WWW-Authenticate': `Bearer error="invalid_token", error_description="${why}"` },
  });

/** Verify the `Authorization: Bearer <device assertion>` header; returns the authenticated device. */
export async function verifyDeviceAssertion(
  authorization: string | undefined,
  ctx: DeviceAssertionContext,
): Promise<Device> {
  if (!authorization?.toLowerCase().startsWith('bearer ')) throw unauthorized('device assertion required');
  const token = authorization.slice(7).trim();
  let iss: string | undefined;
  try {
    iss = decodeJwt(token).iss;
  } catch {
    throw unauthorized('malformed device assertion');
  }
  // Only a syntactically possible device id is looked up (it becomes a table key).
  const device = typeof iss === 'string' && DEVICE_ID_SYNTAX.test(iss) ? await ctx.loadDevice(iss) : undefined;
  if (!device) throw unauthorized('unknown device');
  let payload: JWTPayload;
  try {
    const key = await importJWK(device.jwk as JWK, 'ES256');
    ({ payload } = await jwtVerify(token, key, {
      algorithms: ['ES256'],
      issuer: device.device_id,
      requiredClaims: ['iat', 'exp', 'jti', 'htm', 'htu'],
      clockTolerance: CLOCK_SKEW_S,
      currentDate: new Date(ctx.nowS * 1000),
    }));
  } catch {
    throw unauthorized('invalid device assertion');
  }
  type Claims = { aud: unknown; iat: number; exp: number; jti: unknown; htm: unknown; htu: unknown };
  const { aud, iat, exp, jti, htm, htu } = payload as Claims;
  // The issuer as the sole audience (jws.ts audienceVerdict): not jose's `audience` option, which accepts an array
  // that merely contains it.
  const audience = audienceProblem(aud, [ctx.issuer], 'device assertion', 'be the issuer');
  if (audience) throw unauthorized(audience);
  if (exp - iat > DEVICE_ASSERTION_MAX_LIFETIME_S)
    throw unauthorized(`device assertion lifetime exceeds ${DEVICE_ASSERTION_MAX_LIFETIME_S} s`);
  if (iat > ctx.nowS + CLOCK_SKEW_S) throw unauthorized('device assertion issued in the future');
  if (htm !== ctx.method) throw unauthorized('device assertion is bound to another method');
  if (htu !== ctx.url) throw unauthorized('device assertion is bound to another URL');
  if (typeof jti !== 'string' || jti.length < 8 || jti.length > 256)
    throw unauthorized('device assertion jti is invalid');
  if (!(await ctx.useJti(device, jti, exp + CLOCK_SKEW_S))) throw unauthorized('device assertion was already used');
  return device;
}

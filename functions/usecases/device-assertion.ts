// Shared by the device API handlers (functions/handlers/device-*.ts): authenticate the calling authentication
// device (device assertions, docs/device-api.md). A device of a disabled (or removed) user does not authenticate.
import { verifyDeviceAssertion } from '../core/device-assertion.ts';
import { OAuthError } from '../core/errors.ts';
import type { Device, User } from '../core/model.ts';
import { getDevice, getUser, useOnce } from '../adapters/store.ts';
import { config } from '../config.ts';
import { requestUrl, type HttpEvent } from '../runtime/http.ts';

const userRefused = (why: string) =>
  new OAuthError('invalid_token', why, {
    headers: { 'WWW-Authenticate': `Bearer error="invalid_token", error_description="${why}"` },
  });

/**
 * Verify the device assertion. `readAlongside`, for read-only follow-ups, starts once the signature has been
 * verified and runs in parallel with the replay-cache write and the read of the device's user (one round trip
 * fewer); its result is returned only when the assertion turns out fresh and the user enabled.
 */
export async function authenticateDevice<T = undefined>(
  event: HttpEvent,
  readAlongside?: (device: Device) => Promise<T>,
): Promise<{ device: Device; read: T | undefined }> {
  const { issuer } = config();
  const nowS = Math.floor(Date.now() / 1000);
  let read: Promise<T> | undefined;
  let owner: Promise<User | undefined> | undefined;
  const device = await verifyDeviceAssertion(event.headers.authorization, {
    issuer,
    method: event.requestContext.http.method,
    url: requestUrl(issuer, event),
    loadDevice: getDevice,
    useJti: (verified, jti, exp) => {
      owner = getUser(verified.sub);
      read = readAlongside?.(verified);
      // Awaited below; a replayed assertion discards them.
      owner.catch(() => undefined);
      read?.catch(() => undefined);
      return useOnce(`device:${verified.device_id}`, jti, exp, nowS);
    },
    nowS,
  });
  const user = await owner;
  if (!user) throw userRefused('the device has no user');
  if (user.disabled) throw userRefused('the user of this device is disabled');
  return { device, read: read ? await read : undefined };
}

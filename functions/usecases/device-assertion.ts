// Shared by the device API handlers (functions/handlers/device-*.ts): authenticate the calling authentication
// device (device assertions, docs/device-api.md).
import { verifyDeviceAssertion } from '../core/device-assertion.ts';
import type { Device } from '../core/model.ts';
import { getDevice, useOnce } from '../adapters/store.ts';
import { config } from '../config.ts';
import { requestUrl, type HttpEvent } from '../runtime/http.ts';

/**
 * Verify the device assertion. `readAlongside`, for read-only follow-ups, starts once the signature has been
 * verified and runs in parallel with the replay-cache write (one round trip fewer); its result is returned only
 * when the assertion turns out fresh.
 */
export async function authenticateDevice<T = undefined>(
  event: HttpEvent,
  readAlongside?: (device: Device) => Promise<T>,
): Promise<{ device: Device; read: T | undefined }> {
  const { issuer } = config();
  const nowS = Math.floor(Date.now() / 1000);
  let read: Promise<T> | undefined;
  const device = await verifyDeviceAssertion(event.headers.authorization, {
    issuer,
    method: event.requestContext.http.method,
    url: requestUrl(issuer, event),
    loadDevice: getDevice,
    useJti: (verified, jti, exp) => {
      read = readAlongside?.(verified);
      read?.catch(() => undefined); // awaited below; a replayed assertion discards it
      return useOnce(`device:${verified.device_id}`, jti, exp, nowS);
    },
    nowS,
  });
  return { device, read: read ? await read : undefined };
}

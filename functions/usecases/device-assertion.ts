// Shared by the device API handlers (functions/handlers/device-*.ts): authenticate the calling authentication
// device (device assertions, docs/device-api.md). A removed device, or a device of a disabled (or removed) user, does
// not authenticate.
//
// Round trips: the device's key is remembered by this instance (a device's key and user never change), so a call
// usually costs one conditional write on the device row, after the signature is verified: it checks the device still
// exists and its user is not disabled, and records the jti (adapters/store/devices.ts touchDevice). Reads that only
// depend on the device's user run alongside that write.
import { verifyDeviceAssertion } from '../core/device-assertion.ts';
import { OAuthError } from '../core/errors.ts';
import type { Device } from '../core/model.ts';
import { getDevice, touchDevice } from '../adapters/store.ts';
import { config } from '../config.ts';
import { requestUrl, type HttpEvent } from '../runtime/http.ts';

const refused = (why: string) =>
  new OAuthError('invalid_token', why, {
    headers: { 'WWW-Authenticate': `Bearer error="invalid_token", error_description="${why}"` },
  });

/** What a device of a disabled user is answered (401), also when the disable lands while its call is under way. */
export const userDisabled = (): OAuthError => refused('the user of this device is disabled');

/** Devices this instance has read: the key (to verify before any write) and the jtis it saw expire (to prune). */
const devices = new Map<string, { device: Device; expired: string[] }>();
const DEVICE_CACHE_MAX = 10_000;

async function loadDevice(deviceId: string): Promise<Device | undefined> {
  const hit = devices.get(deviceId);
  if (hit) return hit.device;
  const device = await getDevice(deviceId);
  if (device) {
    if (devices.size >= DEVICE_CACHE_MAX) devices.clear();
    devices.set(deviceId, { device, expired: [] });
  }
  return device;
}

/**
 * Verify the device assertion. `readAlongside`, for read-only follow-ups, starts once the signature has been
 * verified and runs in parallel with the device-row write; its result is returned only when the assertion turns out
 * fresh and the device and its user still enabled.
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
    loadDevice,
    useJti: async (verified, jti, exp) => {
      read = readAlongside?.(verified);
      // Awaited below; a refused assertion discards it.
      read?.catch(() => undefined);
      const entry = devices.get(verified.device_id);
      const touched = await touchDevice(verified.device_id, jti, exp, entry?.expired ?? []);
      if (touched.kind === 'gone') {
        devices.delete(verified.device_id);
        throw refused('unknown device');
      }
      if (touched.kind === 'disabled') throw userDisabled();
      if (touched.kind === 'replayed') return false;
      if (entry) entry.expired = Object.keys(touched.jtis).filter((j) => touched.jtis[j]! < nowS);
      return true;
    },
    nowS,
  });
  return { device, read: read ? await read : undefined };
}

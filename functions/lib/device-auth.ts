// Shared by the device API handlers (functions/handlers/device-*.ts): authenticate the calling authentication device (CONTRACT.md device API).
import { verifyDeviceAssertion } from '../core/device-assertion.ts';
import type { Device } from '../core/model.ts';
import { getDevice, useOnce } from '../adapters/store.ts';
import { config } from '../config.ts';
import { requestUrl, type HttpEvent } from './http.ts';

export function authenticateDevice(event: HttpEvent): Promise<Device> {
  const { issuer } = config();
  const nowS = Math.floor(Date.now() / 1000);
  return verifyDeviceAssertion(event.headers.authorization, {
    issuer,
    method: event.requestContext.http.method,
    url: requestUrl(issuer, event),
    loadDevice: getDevice,
    useJti: (deviceId, jti, exp) => useOnce(`device:${deviceId}`, jti, exp, nowS),
    nowS,
  });
}

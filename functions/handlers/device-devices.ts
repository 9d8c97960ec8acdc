// GET /device/devices: the devices of the calling device's user, `current` marking the caller (docs/device-api.md).
import { httpHandler, json } from '../runtime/http.ts';
import { authenticateDevice } from '../usecases/device-assertion.ts';
import { deviceListEntry, listDevices } from '../usecases/devices.ts';

export const handler = httpHandler('device-devices', async (event) => {
  const { device, read: devices } = await authenticateDevice(event, (d) => listDevices(d.sub));
  return json(200, { devices: (devices ?? []).map((d) => deviceListEntry(d, device.device_id)) });
});

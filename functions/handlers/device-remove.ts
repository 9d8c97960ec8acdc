// DELETE /device/devices/{id}: removes one of the user's devices, the caller included (docs/device-api.md); its
// assertions get 401 from then on. Another user's device, or none: 404.
import { httpHandler, json, noContent } from '../runtime/http.ts';
import { DEVICE_ID_SYNTAX } from '../core/model.ts';
import { authenticateDevice } from '../usecases/device-assertion.ts';
import { removeUserDevice } from '../usecases/devices.ts';

export const handler = httpHandler('device-remove', async (event) => {
  const { device } = await authenticateDevice(event);
  const id = event.pathParameters?.id ?? '';
  if (!DEVICE_ID_SYNTAX.test(id) || !(await removeUserDevice(device.sub, id))) return json(404, { error: 'not_found' });
  return noContent();
});

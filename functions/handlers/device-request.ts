// GET /device/requests/{id}: one pending, unexpired request of the calling device's user (docs/device-api.md);
// 404 for an unknown id, another user's request, or one decided or expired.
import { httpHandler, json } from '../runtime/http.ts';
import { getAuthRequest } from '../adapters/store.ts';
import { authenticateDevice } from '../usecases/device-assertion.ts';
import { deviceView } from './device-list.ts';

const REQUEST_ID = /^[A-Za-z0-9_-]{43}$/;

export const handler = httpHandler('device-request', async (event) => {
  const id = event.pathParameters?.id ?? '';
  const { device, read: request } = await authenticateDevice(event, async () =>
    REQUEST_ID.test(id) ? getAuthRequest(id) : undefined,
  );
  if (!request || request.sub !== device.sub || request.status !== 'pending' || request.expires_at <= Date.now()) {
    return json(404, { error: 'not_found' });
  }
  return json(200, deviceView(request));
});

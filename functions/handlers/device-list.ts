// GET /device/requests: the pending, unexpired requests of the calling device's user (docs/device-api.md).
import { httpHandler, json } from '../runtime/http.ts';
import { listPendingRequests } from '../adapters/store.ts';
import type { AuthRequest, DeviceRequestView } from '../core/model.ts';
import { authenticateDevice } from '../usecases/device-assertion.ts';

const toSeconds = (ms: number) => Math.floor(ms / 1000);

export function deviceView(r: AuthRequest): DeviceRequestView {
  return {
    id: r.id,
    client_id: r.client_id,
    ...(r.client_name ? { client_name: r.client_name } : {}),
    ...(r.binding_message ? { binding_message: r.binding_message } : {}),
    scope: r.scope,
    ...(r.acr_values ? { acr_values: r.acr_values } : {}),
    // RFC 9396: what else the client asks for; the approval may keep a subset (device-decide.ts).
    ...(r.authorization_details ? { authorization_details: r.authorization_details } : {}),
    created_at: toSeconds(r.created_at),
    expires_at: toSeconds(r.expires_at),
  };
}

export const handler = httpHandler('device-list', async (event) => {
  const { read: pending } = await authenticateDevice(event, (device) => listPendingRequests(device.sub, Date.now()));
  return json(200, { requests: (pending ?? []).map(deviceView) });
});

// GET /device/config: what a device app needs before it subscribes to Web Push (docs/device-api.md): the VAPID public
// key (RFC 8292), the `applicationServerKey` of PushManager.subscribe().
import { httpHandler, json } from '../runtime/http.ts';
import { vapidPublicKey } from '../adapters/vapid.ts';

export const handler = httpHandler('device-config', async () =>
  json(200, { vapid_public_key: await vapidPublicKey() }, { 'Cache-Control': 'public, max-age=300', Pragma: '' }),
);

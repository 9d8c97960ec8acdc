// PUT /device/channel: sets (or, with null, clears) how the calling device is reached: a Web Push subscription or a
// native app's push token for SNS mobile push (docs/device-api.md, "Channels").
import { httpHandler, jsonBody, noContent } from '../runtime/http.ts';
import { authenticateDevice } from '../usecases/device-assertion.ts';
import { setChannel } from '../usecases/devices.ts';

export const handler = httpHandler('device-channel', async (event) => {
  const { device } = await authenticateDevice(event);
  await setChannel(device, jsonBody(event));
  return noContent();
});

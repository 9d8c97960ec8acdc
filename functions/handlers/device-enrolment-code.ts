// POST /device/enrolment-codes: a one-time code, from a device of the user, that enrols another device of the same
// user (docs/device-api.md, "Enrolling devices"). The body is `{}`.
import { httpHandler, json } from '../runtime/http.ts';
import { authenticateDevice } from '../usecases/device-assertion.ts';
import { issueEnrolmentCode } from '../usecases/enrolment.ts';

export const handler = httpHandler('device-enrolment-code', async (event) => {
  const { device } = await authenticateDevice(event);
  return json(201, await issueEnrolmentCode(device.sub, `device:${device.device_id}`));
});

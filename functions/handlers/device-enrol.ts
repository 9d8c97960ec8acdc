// POST /device/enrol: a new authentication device registers its public key with a one-time code and a proof made
// with that key (docs/device-api.md, "Enrolling devices"). No device assertion: the proof authenticates.
import { httpHandler, json, jsonBody } from '../runtime/http.ts';
import { enrolDevice } from '../usecases/enrolment.ts';

export const handler = httpHandler('device-enrol', async (event) => {
  const result = await enrolDevice(jsonBody(event), event.requestContext.http.sourceIp);
  if (!result.ok) {
    return json(409, { error: result.error, error_description: 'the user has as many devices as allowed' });
  }
  return json(201, { device_id: result.deviceId });
});

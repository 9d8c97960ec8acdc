// POST /device/requests/{id}: the user approves or denies on the authentication device (docs/device-api.md). An
// approval may narrow what is granted (RFC 9396 §3: core/device-decision.ts); then the request is read to check it.
// The decision is a conditional write first (DynamoDB is the source of truth), then it resumes the workflow.
import { httpHandler, json, noContent, bodyText } from '../runtime/http.ts';
import { decideAuthRequest, getAuthRequest } from '../adapters/store.ts';
import { sendDecision } from '../adapters/workflow.ts';
import { grantedByDecision, narrows, parseDecision, type Granted } from '../core/device-decision.ts';
import { log } from '../runtime/log.ts';
import { authenticateDevice, userDisabled } from '../usecases/device-assertion.ts';

const REQUEST_ID = /^[A-Za-z0-9_-]{43}$/;

export const handler = httpHandler('device-decide', async (event) => {
  const id = event.pathParameters?.id ?? '';
  const parsed = parseDecision(event.headers['content-type'], bodyText(event));
  const narrowing = !('error' in parsed) && narrows(parsed) && REQUEST_ID.test(id);
  // A narrowing approval is checked against the request: read alongside the device authentication.
  const { device, read: request } = await authenticateDevice(event, narrowing ? () => getAuthRequest(id) : undefined);
  if ('error' in parsed) return json(400, { error: 'invalid_request', error_description: parsed.error });
  if (!REQUEST_ID.test(id)) return json(404, { error: 'not_found' });
  const now = Date.now();

  let granted: Granted = {};
  if (narrowing) {
    if (!request || request.sub !== device.sub) return json(404, { error: 'not_found' });
    if (request.status !== 'pending' || request.expires_at <= now) {
      return json(409, {
        error: request.status === 'pending' || request.status === 'expired' ? 'expired' : 'already_decided',
      });
    }
    const checked = grantedByDecision(request, parsed);
    if ('error' in checked) return json(400, { error: 'invalid_request', error_description: checked.error });
    granted = checked;
  }

  // The device key proves possession of the user's registered authenticator (RFC 8176 "hwk").
  const result = await decideAuthRequest(id, device.sub, parsed.decision, now, ['hwk'], granted);
  if (!result.ok) {
    if (result.reason === 'not_found') return json(404, { error: 'not_found' });
    // The user was disabled after this device's assertion was checked: answered as if it had been before.
    if (result.reason === 'held') throw userDisabled();
    return json(409, { error: result.reason });
  }
  // No task token yet means the workflow has not reached its wait; notify-device sees the decision and resumes itself.
  // (The user's pending cap forgets the request when it next needs the room: usecases/rate-limit.ts admitUser.)
  const resumed = result.taskToken ? await sendDecision(result.taskToken, parsed.decision) : false;
  log.info('device decision', {
    requestId: id,
    decision: parsed.decision,
    deviceId: device.device_id,
    workflowResumed: resumed,
    ...(narrowing ? { narrowed: true } : {}),
  });
  return noContent();
});

// POST /device/requests/{id}: the user approves or denies on the authentication device (docs/device-api.md).
// The decision is a conditional write first (DynamoDB is the source of truth), then it resumes the workflow.
import { httpHandler, json, noContent, bodyText } from '../runtime/http.ts';
import { decideAuthRequest, releasePendingSlot } from '../adapters/store.ts';
import { sendDecision } from '../adapters/workflow.ts';
import { log } from '../runtime/log.ts';
import { authenticateDevice } from '../usecases/device-assertion.ts';

const REQUEST_ID = /^[A-Za-z0-9_-]{43}$/;

function parseDecision(contentType: string | undefined, body: string): 'approved' | 'denied' | undefined {
  if (!contentType?.toLowerCase().startsWith('application/json')) return undefined;
  try {
    const parsed = JSON.parse(body) as { decision?: unknown };
    return parsed.decision === 'approve' ? 'approved' : parsed.decision === 'deny' ? 'denied' : undefined;
  } catch {
    return undefined;
  }
}

export const handler = httpHandler('device-decide', async (event) => {
  const { device } = await authenticateDevice(event);
  const id = event.pathParameters?.id ?? '';
  const decision = parseDecision(event.headers['content-type'], bodyText(event));
  if (!decision)
    return json(400, {
      error: 'invalid_request',
      error_description: 'body must be JSON {"decision": "approve" | "deny"}',
    });
  if (!REQUEST_ID.test(id)) return json(404, { error: 'not_found' });

  // The device key proves possession of the user's registered authenticator (RFC 8176 "hwk").
  const result = await decideAuthRequest(id, device.sub, decision, Date.now(), ['hwk']);
  if (!result.ok) {
    if (result.reason === 'not_found') return json(404, { error: 'not_found' });
    return json(409, { error: result.reason });
  }
  // No task token yet means the workflow has not reached its wait; notify-device sees the decision and resumes itself.
  // The user has answered: the request no longer counts against the user's pending cap.
  const [resumed] = await Promise.all([
    result.taskToken ? sendDecision(result.taskToken, decision) : false,
    releasePendingSlot(device.sub, id),
  ]);
  log.info('device decision', { requestId: id, decision, deviceId: device.device_id, workflowResumed: resumed });
  return noContent();
});

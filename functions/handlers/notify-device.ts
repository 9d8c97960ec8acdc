// Workflow task (AwaitDecision in statemachines/poll.asl.json and notify.asl.json): keep the callback task token server-side and
// notify the user's device through the SNS device topic. Neither the token nor the auth_req_id leaves this function.
import { lambdaHandler } from '../runtime/handler.ts';
import { storeTaskToken } from '../adapters/store.ts';
import { notifyDevice } from '../adapters/device-notifier.ts';
import { sendDecision } from '../adapters/workflow.ts';
import { errorFields, log } from '../runtime/log.ts';
import { WORKFLOW_ERRORS } from '../names.ts';

export type NotifyDeviceEvent = { requestId: string; expiresIn: number; taskToken: string };

class NotifyFailed extends Error {
  override readonly name = WORKFLOW_ERRORS.notifyFailed;
}

/** bc-authorize writes the row and starts this workflow in parallel: give the row a moment to land. */
const ROW_WAIT_MS = [25, 50, 100, 200, 400];

async function storeTokenWhenRowExists(requestId: string, taskToken: string) {
  for (const wait of [0, ...ROW_WAIT_MS]) {
    if (wait) await new Promise((r) => setTimeout(r, wait));
    const req = await storeTaskToken(requestId, taskToken);
    if (req) return req;
  }
  // Still missing: the row write failed. The workflow retries this task, then records the failure.
  throw new NotifyFailed(`authentication request ${requestId} not found`);
}

export const handler = lambdaHandler<NotifyDeviceEvent, { notified: boolean }>(
  'notify-device',
  async ({ requestId, taskToken }) => {
    const req = await storeTokenWhenRowExists(requestId, taskToken);
    // The device may have decided before the token was stored; then resume the workflow here.
    if (req.status === 'approved' || req.status === 'denied' || req.status === 'redeemed') {
      await sendDecision(taskToken, req.status === 'denied' ? 'denied' : 'approved');
      return { notified: false };
    }
    if (req.status !== 'pending' || req.expires_at <= Date.now()) return { notified: false };
    try {
      await notifyDevice({
        type: 'ciba.authentication_request',
        requestId: req.id,
        sub: req.sub,
        clientId: req.client_id,
        ...(req.client_name ? { clientName: req.client_name } : {}),
        ...(req.binding_message ? { bindingMessage: req.binding_message } : {}),
        scope: req.scope,
        expiresAt: Math.floor(req.expires_at / 1000),
      });
    } catch (e) {
      log.error('device notification failed', { requestId, ...errorFields(e) });
      throw new NotifyFailed('device notification failed', { cause: e });
    }
    log.info('device notified', { requestId, sub: req.sub });
    return { notified: true };
  },
);

// Workflow task (statemachines/notify.asl.json Deliver): one delivery attempt for a ping or push client. Records how
// the wait ended when no decision was made (expired / device unreachable), keeps the attempt's callback token
// server-side and publishes a delivery request (no secrets) to the delivery topic; the deliver function does the POST.
import { lambdaHandler } from '../runtime/handler.ts';
import { endPendingRequest, prepareDelivery } from '../adapters/store.ts';
import { publishDelivery } from '../adapters/delivery.ts';
import { errorFields, log } from '../runtime/log.ts';
import { WORKFLOW_ERRORS } from '../names.ts';

/** `decision` is the wait's result: the device callback output `{outcome}`, or the caught error `{Error, Cause}`. */
export type EnqueueDeliveryEvent = {
  requestId: string;
  taskToken: string;
  decision?: { Error?: string; outcome?: string } | null;
};

class EnqueueFailed extends Error {
  override readonly name = WORKFLOW_ERRORS.enqueueFailed;
}
/** Not retried by the workflow: there is nothing to deliver. */
class NothingToDeliver extends Error {
  override readonly name = WORKFLOW_ERRORS.nothingToDeliver;
}

export const handler = lambdaHandler<EnqueueDeliveryEvent, { attempt: number }>(
  'enqueue-delivery',
  async ({ requestId, taskToken, decision }) => {
    const waitError = decision?.Error;
    // The wait ended without a decision: States.Timeout is expiry (CIBA §10.2/§12 expired_token); any other error
    // means the device could not be notified. A decision (approved or denied) is already in the row.
    if (waitError === WORKFLOW_ERRORS.timeout) await endPendingRequest(requestId, 'expired');
    else if (waitError) await endPendingRequest(requestId, 'failed');

    const req = await prepareDelivery(requestId, taskToken, Date.now());
    if (!req) throw new NothingToDeliver(`authentication request ${requestId} not found`);
    if (req.mode === 'poll') throw new NothingToDeliver(`authentication request ${requestId} is a poll request`);
    const attempt = req.delivery_attempts ?? 1;
    try {
      await publishDelivery({ type: 'ciba.delivery', requestId, clientId: req.client_id, mode: req.mode, attempt });
    } catch (e) {
      log.error('delivery request not published', { requestId, attempt, ...errorFields(e) });
      throw new EnqueueFailed('delivery request not published', { cause: e });
    }
    log.info('delivery enqueued', { requestId, clientId: req.client_id, mode: req.mode, status: req.status, attempt });
    return { attempt };
  },
);

// Device topic subscriber: every message (an authentication request, or a device enrolment) reaches the user on each
// of their channels (functions/usecases/notify-user.ts, docs/notifications.md).
import type { SNSEvent } from 'aws-lambda';
import { lambdaHandler } from '../runtime/handler.ts';
import { notifyUser } from '../usecases/notify-user.ts';
import { parseNotice } from '../core/user-notification.ts';
import { TOPIC_SUBSCRIBERS } from '../routes.ts';
import { log } from '../runtime/log.ts';

const NAME = 'dispatch-notifications';
/** The function's timeout (functions/routes.ts); retries stop a few seconds before it, so outcomes are recorded. */
const TIMEOUT_MS = (TOPIC_SUBSCRIBERS.find((s) => s.name === NAME)?.timeoutSeconds ?? 60) * 1000;
const MARGIN_MS = 5000;

function parse(message: string): unknown {
  try {
    return JSON.parse(message);
  } catch {
    return undefined;
  }
}

export const handler = lambdaHandler<SNSEvent, void>(NAME, async (event) => {
  const started = Date.now();
  await Promise.all(
    event.Records.map(async ({ Sns: sns }) => {
      const notice = parseNotice(parse(sns.Message));
      if (!notice) return log.warn('device topic message ignored: not a notice', { messageId: sns.MessageId });
      await notifyUser(notice, {
        messageId: sns.MessageId,
        receivedAt: Date.parse(sns.Timestamp) || started,
        deadline: started + TIMEOUT_MS - MARGIN_MS,
        leaseUntil: started + TIMEOUT_MS,
      });
    }),
  );
});

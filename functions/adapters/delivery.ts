// Ping/push delivery I/O: the delivery topic (workflow → deliver function; no secret in the message) and the HTTP
// POST to the client's notification endpoint (CIBA §10.2, §10.3), which never follows redirects.
import { PublishCommand } from '@aws-sdk/client-sns';
import { sns } from './sns.ts';
import { config } from '../config.ts';
import { classifyNetworkError, classifyResponse, type AttemptResult } from '../core/notification.ts';
import type { DeliveryMode } from '../core/model.ts';

/** The delivery topic message: which request and which attempt. The deliver function reads the rest from the row. */
export type DeliveryMessage = {
  type: 'ciba.delivery';
  requestId: string;
  clientId: string;
  mode: Exclude<DeliveryMode, 'poll'>;
  attempt: number;
};

export async function publishDelivery(message: DeliveryMessage): Promise<void> {
  await sns().send(
    new PublishCommand({
      TopicArn: config().deliveryTopicArn,
      Message: JSON.stringify(message),
      MessageAttributes: {
        type: { DataType: 'String', StringValue: message.type },
        mode: { DataType: 'String', StringValue: message.mode },
        clientId: { DataType: 'String', StringValue: message.clientId },
      },
    }),
  );
}

/** One POST attempt; never throws for what the network or the client did (that is the AttemptResult). */
export async function postNotification(
  endpoint: string,
  bearer: string,
  body: Record<string, unknown>,
  timeoutMs: number,
): Promise<AttemptResult> {
  let response: Response;
  try {
    response = await fetch(endpoint, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}`, 'user-agent': 'ciba-server' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    const err = e as { name?: string; cause?: { code?: string } };
    return classifyNetworkError(
      err.name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : (err.cause?.code ?? err.name ?? 'error'),
    );
  }
  // Whatever the client answered with is not used: release the connection without reading it.
  await response.body?.cancel().catch(() => undefined);
  return classifyResponse(response.status);
}

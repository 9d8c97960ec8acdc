// The delivery dead-letter queue (SQS): one record per ping/push delivery that failed for good, written by the deliver
// function (functions/usecases/delivery.ts) before it fails the workflow's Deliver task, and read, redriven and
// deleted by the admin CLI (functions/admin/dead-letters.ts). A record never carries a secret: no auth_req_id,
// client_notification_token or token, only what an operator needs to find the request and the reason.
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { awsClient } from './aws.ts';
import { config } from '../config.ts';

const sqsClient = awsClient('SQS', () => new SQSClient({}));

/** A dead letter as sent (JSON body of the SQS message). */
export type DeadLetter = {
  requestId: string;
  clientId: string;
  mode: string;
  /** The workflow error: Delivery.Rejected or Delivery.Exhausted. */
  error: string;
  /** Why, e.g. `HTTP 401 from the notification endpoint`. */
  cause: string;
  /** Delivery attempts made. */
  attempts: number;
  /** The execution's name (the request id) and, when known, its ARN. */
  executionName: string;
  execution?: string;
  /** When the delivery was given up (ISO 8601). */
  at: string;
};

/** A dead letter as received: the record, its SQS message id and receipt handle, and when SQS got it (epoch ms). */
export type ReceivedDeadLetter = {
  messageId: string;
  receiptHandle: string;
  sentAt?: number;
  /** The record, or undefined when the body is not one (shown raw). */
  letter?: DeadLetter;
  body: string;
};

function queueUrl(): string {
  const url = config().deliveryDeadLetterQueueUrl;
  if (!url) throw new Error('configuration: DELIVERY_DLQ_URL (the delivery dead-letter queue) is not set');
  return url;
}

export async function sendDeadLetter(letter: DeadLetter): Promise<void> {
  await sqsClient().send(
    new SendMessageCommand({
      QueueUrl: queueUrl(),
      MessageBody: JSON.stringify(letter),
      MessageAttributes: {
        requestId: { DataType: 'String', StringValue: letter.requestId },
        clientId: { DataType: 'String', StringValue: letter.clientId },
        error: { DataType: 'String', StringValue: letter.error },
      },
    }),
  );
}

function parseLetter(body: string): DeadLetter | undefined {
  try {
    const value = JSON.parse(body) as Partial<DeadLetter> | null;
    return value && typeof value === 'object' && typeof value.requestId === 'string' && value.requestId
      ? (value as DeadLetter)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Every message now visible in the queue, each hidden from other readers for `visibilitySeconds` (so one pass sees
 * each message once): ReceiveMessage until it answers none. Hand them back with release() or remove them with
 * remove(). A message another reader holds is not seen.
 */
export async function receiveAll(visibilitySeconds: number): Promise<ReceivedDeadLetter[]> {
  const out: ReceivedDeadLetter[] = [];
  const seen = new Set<string>();
  for (let round = 0; round < 1000; round++) {
    const res = await sqsClient().send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl(),
        MaxNumberOfMessages: 10,
        VisibilityTimeout: visibilitySeconds,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ['SentTimestamp'],
      }),
    );
    const messages = res.Messages ?? [];
    if (messages.length === 0) break;
    for (const m of messages) {
      if (!m.MessageId || !m.ReceiptHandle || seen.has(m.MessageId)) continue;
      seen.add(m.MessageId);
      const body = m.Body ?? '';
      const sent = Number(m.Attributes?.SentTimestamp);
      const letter = parseLetter(body);
      out.push({
        messageId: m.MessageId,
        receiptHandle: m.ReceiptHandle,
        ...(Number.isFinite(sent) && sent > 0 ? { sentAt: sent } : {}),
        ...(letter ? { letter } : {}),
        body,
      });
    }
  }
  return out.sort((a, b) => (a.sentAt ?? 0) - (b.sentAt ?? 0));
}

/** Makes received messages visible again at once (ChangeMessageVisibility 0). */
export async function release(messages: readonly ReceivedDeadLetter[]): Promise<void> {
  await Promise.all(
    messages.map((m) =>
      sqsClient().send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queueUrl(),
          ReceiptHandle: m.receiptHandle,
          VisibilityTimeout: 0,
        }),
      ),
    ),
  );
}

/** Deletes received messages (handled). */
export async function remove(messages: readonly ReceivedDeadLetter[]): Promise<void> {
  for (const m of messages)
    await sqsClient().send(new DeleteMessageCommand({ QueueUrl: queueUrl(), ReceiptHandle: m.receiptHandle }));
}

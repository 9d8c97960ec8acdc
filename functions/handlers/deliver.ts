// Delivery topic subscriber: one ping or push delivery attempt per SNS record (functions/usecases/delivery.ts).
import { lambdaHandler } from '../runtime/handler.ts';
import type { SNSEvent } from 'aws-lambda';
import type { DeliveryMessage } from '../adapters/delivery.ts';
import { deliver } from '../usecases/delivery.ts';

export const handler = lambdaHandler<SNSEvent, void>('deliver', async (event) => {
  // One message per record; records are independent.
  await Promise.all(event.Records.map((record) => deliver(JSON.parse(record.Sns.Message) as DeliveryMessage)));
});

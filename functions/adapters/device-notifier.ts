// Device notifications through the SNS device topic. The message names the request by its public id and carries
// what the device shows (client name, binding message, scope); no auth_req_id, token or user code.
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { awsClient } from './aws.ts';
import { config } from '../config.ts';

const snsClient = awsClient('SNS', () => new SNSClient({}));

export type DeviceNotification = {
  type: 'ciba.authentication_request';
  requestId: string;
  sub: string;
  clientId: string;
  clientName?: string;
  bindingMessage?: string;
  scope: string;
  /** Epoch seconds. */
  expiresAt: number;
};

export async function notifyDevice(n: DeviceNotification): Promise<void> {
  await snsClient().send(
    new PublishCommand({
      TopicArn: config().deviceTopicArn,
      Subject: 'Sign-in request',
      Message: JSON.stringify(n),
      // Subscribers (push, SMS, e-mail channels) filter on the user.
      MessageAttributes: {
        sub: { DataType: 'String', StringValue: n.sub },
        type: { DataType: 'String', StringValue: n.type },
      },
    }),
  );
}

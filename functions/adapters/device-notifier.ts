// Device notifications through the SNS device topic. The message names the request by its public id and carries
// what the device shows (client name, binding message, scope); no auth_req_id, token or user code. The
// dispatch-notifications function (subscribed to the topic) turns each message into Web Push, SNS mobile push, SMS,
// e-mail and operator-hook sends (docs/notifications.md); only the operator hook gets the binding message.
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

/** Published when a device is enrolled: the user's other devices are told (functions/core/user-notification.ts). */
export type DeviceEnrolledNotice = { type: 'ciba.device_enrolled'; sub: string; device_id: string; name?: string };

export async function publishDeviceEnrolled(n: Omit<DeviceEnrolledNotice, 'type'>): Promise<void> {
  const message: DeviceEnrolledNotice = { type: 'ciba.device_enrolled', ...n };
  await snsClient().send(
    new PublishCommand({
      TopicArn: config().deviceTopicArn,
      Subject: 'New device',
      Message: JSON.stringify(message),
      MessageAttributes: {
        sub: { DataType: 'String', StringValue: n.sub },
        type: { DataType: 'String', StringValue: message.type },
      },
    }),
  );
}

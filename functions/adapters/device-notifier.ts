// Device notifications through the SNS device topic. The message names the request by its public id and carries
// what the device shows (client name, binding message, scope); no auth_req_id, token or user code. The
// dispatch-notifications function (subscribed to the topic) turns each message into Web Push, SNS mobile push, SMS,
// e-mail and operator-hook sends (docs/notifications.md); only the operator hook gets the binding message.
import { PublishCommand } from '@aws-sdk/client-sns';
import { sns } from './sns.ts';
import { config } from '../config.ts';
import type { Notice } from '../core/user-notification.ts';

/** A new authentication request, as published (the dispatcher's Notice, functions/core/user-notification.ts). */
export type DeviceNotification = Extract<Notice, { type: 'ciba.authentication_request' }>;

/** Published when a device is enrolled: the user's other devices are told (functions/core/user-notification.ts). */
export type DeviceEnrolledNotice = { type: 'ciba.device_enrolled'; sub: string; device_id: string; name?: string };

/** One message on the device topic, with the user and the type as attributes for subscribers that filter. */
async function publish(message: DeviceNotification | DeviceEnrolledNotice, subject: string): Promise<void> {
  await sns().send(
    new PublishCommand({
      TopicArn: config().deviceTopicArn,
      Subject: subject,
      Message: JSON.stringify(message),
      MessageAttributes: {
        sub: { DataType: 'String', StringValue: message.sub },
        type: { DataType: 'String', StringValue: message.type },
      },
    }),
  );
}

export const notifyDevice = (n: DeviceNotification): Promise<void> => publish(n, 'Sign-in request');

export const publishDeviceEnrolled = (n: Omit<DeviceEnrolledNotice, 'type'>): Promise<void> =>
  publish({ type: 'ciba.device_enrolled', ...n }, 'New device');

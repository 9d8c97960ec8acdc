// The device API's messages as the app uses them (docs/device-api.md).
import type { AuthorizationDetail } from './describe.ts';

export type DeviceRequest = {
  id: string;
  client_id: string;
  client_name?: string;
  binding_message?: string;
  scope: string;
  acr_values?: string;
  authorization_details?: AuthorizationDetail[];
  created_at: number;
  expires_at: number;
};

/** The body of `POST /device/requests/{id}`; narrowed values only when the user narrowed. */
export type Decision =
  | { decision: 'deny' }
  | { decision: 'approve'; scope?: string; authorization_details?: AuthorizationDetail[] };

export type EnrolledDevice = { device_id: string; name?: string; created_at?: number; current?: boolean };

export type EnrolmentCode = { code: string; expires_at: number; enrol_url: string };

export type WebPushChannel = {
  type: 'webpush';
  subscription: { endpoint: string; keys: { p256dh: string; auth: string } };
};

/** A Web Push payload (decrypted by the browser). */
export type PushMessage =
  | { type: 'ciba.authentication_request'; request_id: string; expires_at?: number }
  | { type: 'ciba.device_enrolled'; device_id: string; name?: string };

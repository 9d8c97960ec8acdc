// Reaching the user (docs/notifications.md): what each channel carries, which channels a notice goes to, what a push
// service's, an AWS service's or the operator hook's answer means, and when to try again. Pure: the use case
// (functions/usecases/notify-user.ts) does the I/O. No channel payload carries a secret or the binding message; only
// the operator hook (the operator's own endpoint, signed) gets the request's details.
import type { Device, User } from './model.ts';
import { classifyNetworkError, classifyResponse } from './notification.ts';

/** A message on the device topic, as the dispatcher reads it. */
export type Notice =
  | {
      type: 'ciba.authentication_request';
      /** The public request id (device API `id`). */
      requestId: string;
      sub: string;
      clientId: string;
      clientName?: string;
      bindingMessage?: string;
      scope: string;
      /** Epoch seconds. */
      expiresAt: number;
    }
  | { type: 'ciba.device_enrolled'; sub: string; deviceId: string; name?: string };

const text = (v: unknown, max = 2048): v is string => typeof v === 'string' && v !== '' && v.length <= max;

/**
 * The device topic message as a notice, or undefined when it is not one this dispatcher handles. Authentication
 * requests come from notify-device (functions/adapters/device-notifier.ts), enrolment notices from the enrolment
 * endpoint: `{type: "ciba.device_enrolled", sub, device_id, name}`.
 */
export function parseNotice(raw: unknown): Notice | undefined {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const m = raw as Record<string, unknown>;
  if (m.type === 'ciba.authentication_request') {
    if (!text(m.requestId, 128) || !text(m.sub, 255) || !text(m.clientId, 128) || typeof m.scope !== 'string')
      return undefined;
    if (typeof m.expiresAt !== 'number' || !Number.isFinite(m.expiresAt)) return undefined;
    return {
      type: m.type,
      requestId: m.requestId,
      sub: m.sub,
      clientId: m.clientId,
      ...(text(m.clientName) ? { clientName: m.clientName } : {}),
      ...(text(m.bindingMessage) ? { bindingMessage: m.bindingMessage } : {}),
      scope: m.scope,
      expiresAt: m.expiresAt,
    };
  }
  if (m.type === 'ciba.device_enrolled') {
    if (!text(m.sub, 255) || !text(m.device_id, 128)) return undefined;
    return {
      type: m.type,
      sub: m.sub,
      deviceId: m.device_id,
      ...(text(m.name, 256) ? { name: m.name } : {}),
    };
  }
  return undefined;
}

/** What a device receives (Web Push payload, SNS mobile push): no secret, no binding message. */
export type DevicePayload =
  | { type: 'ciba.authentication_request'; request_id: string; expires_at: number }
  | { type: 'ciba.device_enrolled'; device_id: string; name?: string };

export function devicePayload(notice: Notice): DevicePayload {
  if (notice.type === 'ciba.authentication_request')
    return { type: notice.type, request_id: notice.requestId, expires_at: notice.expiresAt };
  return { type: notice.type, device_id: notice.deviceId, ...(notice.name ? { name: notice.name } : {}) };
}

/** The operator hook's body (absent fields omitted). */
export function webhookBody(notice: Notice): Record<string, unknown> {
  if (notice.type === 'ciba.device_enrolled')
    return {
      type: notice.type,
      sub: notice.sub,
      device_id: notice.deviceId,
      ...(notice.name ? { name: notice.name } : {}),
    };
  return {
    type: notice.type,
    request_id: notice.requestId,
    sub: notice.sub,
    client_id: notice.clientId,
    ...(notice.clientName ? { client_name: notice.clientName } : {}),
    ...(notice.bindingMessage ? { binding_message: notice.bindingMessage } : {}),
    scope: notice.scope,
    expires_at: notice.expiresAt,
  };
}

/**
 * The SNS mobile push message (MessageStructure json): the device payload as `default`, as FCM data (string values)
 * and for APNs with a visible alert that says nothing about the request; the app fetches the details itself.
 */
export function snsPushMessage(payload: DevicePayload): string {
  const json = JSON.stringify(payload);
  const data = Object.fromEntries(Object.entries(payload).map(([k, v]) => [k, String(v)]));
  const title = payload.type === 'ciba.authentication_request' ? 'Sign-in request' : 'New device';
  const apns = JSON.stringify({
    aps: { alert: { title, body: 'Open the app to review it.' }, sound: 'default' },
    ciba: payload,
  });
  return JSON.stringify({ default: json, GCM: JSON.stringify({ data }), APNS: apns, APNS_SANDBOX: apns });
}

/** RFC 8292 §2.1: the VAPID `sub` is a contact for the push service's operator, a `mailto:` or an `https:` URL. */
export const VAPID_SUBJECT = /^(mailto:[^\s@]+@[^\s@]+|https:\/\/[^\s/?#]+[^\s]*)$/;

/** The device app's link for a request (`<issuer>/device/#request=<id>`): the fragment never reaches a server log. */
export function deviceAppLink(issuer: string, requestId: string): string {
  return `${issuer}/device/#request=${encodeURIComponent(requestId)}`;
}

const CLIENT_NAME_MAX = 40;

/** The SMS and e-mail fallback: a short text with a link to the device app, nothing secret, no binding message. */
export function fallbackMessage(
  notice: Extract<Notice, { type: 'ciba.authentication_request' }>,
  issuer: string,
): { subject: string; text: string } {
  const raw = notice.clientName ?? '';
  const client = raw.length > CLIENT_NAME_MAX ? `${raw.slice(0, CLIENT_NAME_MAX - 1)}…` : raw;
  return {
    subject: 'Sign-in request',
    text: `${client ? `${client} asks you to sign in` : 'A sign-in request is waiting'}. Review it in your device app: ${deviceAppLink(issuer, notice.requestId)}`,
  };
}

// ---- Which channels ---------------------------------------------------------------------------------------------

export type WebPushTarget = {
  channel: 'webpush';
  key: string;
  deviceId: string;
  subscription: { endpoint: string; keys: { p256dh: string; auth: string } };
};
export type Target =
  | WebPushTarget
  | { channel: 'sns'; key: string; deviceId: string; endpointArn: string }
  | { channel: 'webhook'; key: 'webhook' }
  | { channel: 'sms'; key: 'sms'; phoneNumber: string }
  | { channel: 'email'; key: 'email'; address: string };
export type ChannelName = Target['channel'];

/** What the operator configured besides the devices' own channels. */
export type ChannelOptions = { webhook: boolean; sms: boolean; email: boolean };

export type Plan = {
  targets: Target[];
  /** Targets that reach the user (every target but the operator hook). */
  userTargets: number;
  /** The user's devices (other than an enrolled one) without a channel: apps that poll the device API themselves. */
  pollingDevices: number;
};

/** E.164, after dropping the spaces, dashes, dots and parentheses people write. */
export function smsNumber(user: User | undefined): string | undefined {
  if (!user?.phone_number || user.phone_number_verified === false) return undefined;
  const number = user.phone_number.replace(/[ ().-]/g, '');
  return /^\+[1-9][0-9]{6,14}$/.test(number) ? number : undefined;
}

/** Only a verified address. */
export function emailAddress(user: User | undefined): string | undefined {
  if (!user?.email || user.email_verified !== true) return undefined;
  return /^[^\s@<>"]{1,64}@[^\s@<>"]{1,255}$/.test(user.email) ? user.email : undefined;
}

const deviceTargets = (devices: Device[]): Target[] =>
  devices.flatMap((d): Target[] => {
    if (d.channel?.type === 'webpush')
      return [
        {
          channel: 'webpush',
          key: `webpush#${d.device_id}`,
          deviceId: d.device_id,
          subscription: d.channel.subscription,
        },
      ];
    if (d.channel?.type === 'sns')
      return [
        { channel: 'sns', key: `sns#${d.device_id}`, deviceId: d.device_id, endpointArn: d.channel.endpoint_arn },
      ];
    return [];
  });

/** The devices a notice is about: all of the user's, but never the device an enrolment notice announces. */
export function devicesToNotify(notice: Notice, devices: Device[]): Device[] {
  return devices.filter(
    (d) => d.sub === notice.sub && (notice.type !== 'ciba.device_enrolled' || d.device_id !== notice.deviceId),
  );
}

/** Whether the plan needs the user's profile: only for the SMS/e-mail fallback of a request nobody's device gets. */
export function needsProfile(notice: Notice, devices: Device[], options: ChannelOptions): boolean {
  return (
    notice.type === 'ciba.authentication_request' &&
    (options.sms || options.email) &&
    deviceTargets(devicesToNotify(notice, devices)).length === 0
  );
}

/**
 * Every device of the user that has a channel; the operator hook when configured; and, for an authentication request
 * that no device channel carries, SMS and e-mail when configured and the user has a number / a verified address.
 * Enrolment notices go to the user's other devices and the hook only. A disabled user gets nothing.
 */
export function planTargets(notice: Notice, devices: Device[], user: User | undefined, options: ChannelOptions): Plan {
  if (user?.disabled) return { targets: [], userTargets: 0, pollingDevices: 0 };
  const mine = devicesToNotify(notice, devices);
  const targets = deviceTargets(mine);
  if (notice.type === 'ciba.authentication_request' && targets.length === 0) {
    const phoneNumber = options.sms ? smsNumber(user) : undefined;
    const address = options.email ? emailAddress(user) : undefined;
    if (phoneNumber) targets.push({ channel: 'sms', key: 'sms', phoneNumber });
    if (address) targets.push({ channel: 'email', key: 'email', address });
  }
  const userTargets = targets.length;
  if (options.webhook) targets.push({ channel: 'webhook', key: 'webhook' });
  return { targets, userTargets, pollingDevices: mine.filter((d) => !d.channel).length };
}

// ---- What an answer means -----------------------------------------------------------------------------------------

/**
 * What one send came to: `delivered` (the service accepted it), `retry` (worth another attempt), `rejected` (final),
 * `gone` (final, and the Web Push subscription no longer exists: the channel is dropped).
 */
export type SendResult = { kind: 'delivered' | 'retry' | 'rejected' | 'gone'; detail: string };

/**
 * RFC 8030 §5, §6.2, §7.3: 201 (any 2xx) accepted; 404 and 410 mean the subscription is gone for good; 429, 408 and
 * 5xx are worth retrying; redirects are not followed and, like other 4xx (400 bad VAPID, 413 too large), are final.
 */
export function classifyPushService(status: number): SendResult {
  if (status === 404 || status === 410)
    return { kind: 'gone', detail: `HTTP ${status} from the push service: the subscription has expired` };
  return classifyResponse(status, 'the push service');
}

/** The operator hook's answers mean what a ping client's do (functions/core/notification.ts classifyResponse). */
export function classifyWebhook(status: number): SendResult {
  return classifyResponse(status, 'the webhook');
}

/** No HTTP answer (refused, reset, DNS, TLS, timeout): retried. */
export function classifyNoAnswer(target: 'the push service' | 'the webhook', code: string): SendResult {
  return classifyNetworkError(code, target);
}

/**
 * An AWS SDK error of SNS or SES (after the SDK's own retries): throttling and server faults are retried; a
 * disabled platform endpoint, an opted-out number, a rejected address and other client faults are final.
 */
export function classifyAwsError(e: unknown): SendResult {
  const err = (e ?? {}) as { name?: string; $fault?: string; $retryable?: unknown };
  const name = err.name ?? 'Error';
  if (name === 'EndpointDisabledException' || name === 'EndpointDisabled')
    return {
      kind: 'rejected',
      detail: 'the platform endpoint is disabled (the app was uninstalled or its token expired)',
    };
  if (err.$fault === 'server' || err.$retryable || /Throttl|TooManyRequests|LimitExceeded|Timeout|Network/i.test(name))
    return { kind: 'retry', detail: `${name} from AWS` };
  if (err.$fault === 'client') return { kind: 'rejected', detail: `${name} from AWS` };
  return { kind: 'retry', detail: `${name} (no answer)` };
}

// ---- When to try again ---------------------------------------------------------------------------------------------

/** In-function retries: short, because a prompt that arrives late is of little use (docs/notifications.md). */
export const RETRY = { firstDelayMs: 500, maxDelayMs: 8000, maxAttempts: 6 } as const;

/**
 * The wait before the next attempt after `failed` failed attempts (exponential from 0.5 s, capped at 8 s, equal
 * jitter), or undefined when there is none: attempts used up, or the next one would start after `deadline` (the
 * request's expiry or the invocation's own time limit, whichever comes first).
 */
export function nextAttemptDelay(
  failed: number,
  now: number,
  deadline: number,
  random = Math.random(),
): number | undefined {
  if (failed >= RETRY.maxAttempts) return undefined;
  const cap = Math.min(RETRY.maxDelayMs, RETRY.firstDelayMs * 2 ** (failed - 1));
  const delay = Math.round(cap / 2 + (cap / 2) * random);
  return now + delay < deadline ? delay : undefined;
}

/** Web Push TTL (RFC 8030 §5.2): a request prompt is worth keeping until the request expires; a notice for a day. */
export function pushTtlSeconds(notice: Notice, nowMs: number): number {
  if (notice.type === 'ciba.device_enrolled') return 86_400;
  return Math.max(0, Math.floor(notice.expiresAt - nowMs / 1000));
}

/** Until when sending a notice makes sense (epoch ms): a request until it expires; an enrolment notice for an hour. */
export function noticeDeadline(notice: Notice, receivedAtMs: number): number {
  return notice.type === 'ciba.authentication_request' ? notice.expiresAt * 1000 : receivedAtMs + 3_600_000;
}

/**
 * The idempotency key of a notice: the request id for requests (so a second publish for the same request, e.g. a
 * retried notify task, notifies nobody twice); the SNS message id for enrolment notices.
 */
export function noticeKey(notice: Notice, messageId: string): string {
  return notice.type === 'ciba.authentication_request' ? `REQ#${notice.requestId}` : `MSG#${messageId}`;
}

/**
 * A user could not be reached at all: a request whose every user channel failed for good, or a request for a user
 * with no channel, no fallback and no device at all. A user whose devices poll the device API, or a notice some other
 * invocation is handling (`skipped`), is not counted. Enrolment notices never count.
 */
export function isUnreachable(
  notice: Notice,
  plan: Plan,
  results: { key: string; kind: SendResult['kind'] | 'skipped' }[],
): boolean {
  if (notice.type !== 'ciba.authentication_request') return false;
  const user = results.filter((r) => r.key !== 'webhook');
  if (user.some((r) => r.kind === 'delivered' || r.kind === 'skipped')) return false;
  if (plan.userTargets === 0) return plan.pollingDevices === 0;
  return true;
}

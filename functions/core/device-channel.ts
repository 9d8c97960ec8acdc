// How a device is reached (docs/device-api.md, "Channels"): a W3C Push API subscription (Web Push, RFC 8030/8291),
// or a native app's push token for SNS mobile push (FCM, APNs). Pure validation of what a device registers.
import { OAuthError } from './errors.ts';

export type WebPushSubscription = { endpoint: string; keys: { p256dh: string; auth: string } };
export type SnsPlatform = 'fcm' | 'apns' | 'apns_sandbox';
export const SNS_PLATFORMS: readonly SnsPlatform[] = ['fcm', 'apns', 'apns_sandbox'];

export type DeviceChannel =
  | { type: 'webpush'; subscription: WebPushSubscription }
  | { type: 'sns'; platform: SnsPlatform; token: string };

const invalid = (why: string) => new OAuthError('invalid_request', `channel: ${why}`);
const b64u = (bytes: number) => new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((bytes * 4) / 3)}}={0,2}$`);
const LOOPBACK = /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?\//;

/** A push service endpoint: https, or loopback http on the local stack; no credentials, no fragment. */
function validEndpoint(value: unknown, localMode: boolean): value is string {
  if (typeof value !== 'string' || value.length > 2048 || !URL.canParse(value)) return false;
  const url = new URL(value);
  if (url.username || url.password || url.hash) return false;
  return url.protocol === 'https:' || (localMode && LOOPBACK.test(value));
}

export function validateChannel(value: unknown, options: { localMode: boolean }): DeviceChannel {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw invalid('must be an object or null');
  const channel = value as Record<string, unknown>;
  if (channel.type === 'webpush') {
    const sub = channel.subscription as Record<string, unknown> | undefined;
    const keys = sub?.keys as Record<string, unknown> | undefined;
    if (!sub || !validEndpoint(sub.endpoint, options.localMode)) {
      throw invalid(`subscription.endpoint must be an https URL${options.localMode ? ' (or loopback http)' : ''}`);
    }
    // RFC 8291 §3.1: p256dh is the uncompressed P-256 point (65 bytes), auth a 16-byte secret; base64url.
    if (typeof keys?.p256dh !== 'string' || !b64u(65).test(keys.p256dh))
      throw invalid('subscription.keys.p256dh is invalid');
    if (typeof keys?.auth !== 'string' || !b64u(16).test(keys.auth)) throw invalid('subscription.keys.auth is invalid');
    return {
      type: 'webpush',
      subscription: { endpoint: sub.endpoint, keys: { p256dh: keys.p256dh, auth: keys.auth } },
    };
  }
  if (channel.type === 'sns') {
    if (!SNS_PLATFORMS.includes(channel.platform as SnsPlatform))
      throw invalid(`platform must be ${SNS_PLATFORMS.join(', ')}`);
    if (typeof channel.token !== 'string' || !/^[\x21-\x7E]{1,4096}$/.test(channel.token))
      throw invalid('token is invalid');
    return { type: 'sns', platform: channel.platform as SnsPlatform, token: channel.token };
  }
  throw invalid('type must be webpush or sns');
}

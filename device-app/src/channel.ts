// A Push API subscription as the device API's channel (`{"type": "webpush", "subscription": …}`).
import { base64url } from './jws.ts';
import type { WebPushChannel } from './types.ts';

export function channelOf(subscription: PushSubscription): WebPushChannel | undefined {
  const p256dh = subscription.getKey('p256dh');
  const auth = subscription.getKey('auth');
  if (!p256dh || !auth) return undefined;
  return {
    type: 'webpush',
    subscription: {
      endpoint: subscription.endpoint,
      keys: { p256dh: base64url(new Uint8Array(p256dh)), auth: base64url(new Uint8Array(auth)) },
    },
  };
}

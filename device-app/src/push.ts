// Notifications: the service worker (app/sw.js, scope /device/) and a Web Push subscription with the server's VAPID
// key, registered as the device's channel. Where the browser cannot (no Push API, an iPhone outside the Home Screen,
// a headless browser without a push service, permission refused), the app polls while it is open instead.
import type { DeviceApi } from './api.ts';
import { channelOf } from './channel.ts';
import { fromBase64url } from './jws.ts';

export type PushState =
  /** Subscribed and registered with the server. */
  | 'on'
  /** Possible: the user has not turned it on (or it did not work out); a button offers it. */
  | 'off'
  /** The user (or the browser's settings) refused notifications for this site. */
  | 'blocked'
  /** iOS/iPadOS: Web Push only for an app added to the Home Screen. */
  | 'needs-install'
  /** No service worker or Push API here. */
  | 'unsupported';

const isAppleMobile = () =>
  /iPhone|iPad|iPod/.test(navigator.userAgent) ||
  (navigator.maxTouchPoints > 1 && /Macintosh/.test(navigator.userAgent));
const standalone = () =>
  matchMedia('(display-mode: standalone)').matches || (navigator as { standalone?: boolean }).standalone === true;

/** A window event (detail: the PushState) when notifications were turned on, or that was tried. */
export const PUSH_EVENT = 'ciba-push-state';

export function pushSupport(): PushState | 'supported' {
  if (!('serviceWorker' in navigator)) return 'unsupported';
  if (!('PushManager' in window) || !('Notification' in window))
    return isAppleMobile() && !standalone() ? 'needs-install' : 'unsupported';
  return 'supported';
}

/** Registers app/sw.js for the whole app (/device/); its Service-Worker-Allowed header permits that scope. */
export async function registerServiceWorker(base: URL): Promise<void> {
  if (!('serviceWorker' in navigator)) return;
  try {
    await navigator.serviceWorker.register(new URL('app/sw.js', base), { scope: base.href });
  } catch {
    // No service worker (e.g. a private window): the app works without, by polling.
  }
}

/** The service worker's registration, if it becomes active within `ms`. */
async function activeRegistration(ms = 5000): Promise<ServiceWorkerRegistration | undefined> {
  const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms));
  return Promise.race([navigator.serviceWorker.ready, timeout]);
}

/** Where notifications stand now, without asking the user anything. */
export async function pushState(): Promise<PushState> {
  const support = pushSupport();
  if (support !== 'supported') return support;
  if (Notification.permission === 'denied') return 'blocked';
  if (Notification.permission !== 'granted') return 'off';
  const registration = await navigator.serviceWorker.getRegistration();
  return (await registration?.pushManager.getSubscription()) ? 'on' : 'off';
}

const sameKey = (a: ArrayBuffer | null, b: Uint8Array) =>
  a !== null && a.byteLength === b.length && new Uint8Array(a).every((v, i) => v === b[i]);

/**
 * Subscribes with the server's VAPID key and registers the subscription as this device's channel. `permission` is
 * the answer to Notification.requestPermission(), which the caller must ask for in the click handler itself (browsers
 * only ask during a user gesture).
 */
export async function turnOnPush(api: DeviceApi, permission: Promise<NotificationPermission>): Promise<PushState> {
  const support = pushSupport();
  if (support !== 'supported') return support;
  try {
    if ((await permission) !== 'granted') return Notification.permission === 'denied' ? 'blocked' : 'off';
    const vapid = await api.vapidPublicKey();
    const registration = await activeRegistration();
    if (!vapid || !registration) return 'off';
    const key = fromBase64url(vapid);
    let subscription = await registration.pushManager.getSubscription();
    if (subscription && !sameKey(subscription.options.applicationServerKey, key)) {
      await subscription.unsubscribe();
      subscription = null;
    }
    subscription ??= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    const channel = channelOf(subscription);
    if (!channel) return 'off';
    await api.setChannel(channel);
    return 'on';
  } catch {
    // No push service (headless browsers, some privacy settings) or the server refused the channel: poll instead.
    return 'off';
  }
}

/** Asks for permission now: call it synchronously from a click handler. */
export function askPermission(): Promise<NotificationPermission> {
  if (pushSupport() !== 'supported') return Promise.resolve('denied');
  try {
    return Notification.requestPermission();
  } catch {
    return Promise.resolve('denied');
  }
}

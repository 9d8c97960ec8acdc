// The service worker (served as app/sw.js, scope /device/): shows a notification for each Web Push message and opens
// the request when it is tapped. A request's notification names the client and the binding message when the device
// API answers in time (the service worker signs with the same non-extractable key, from IndexedDB); the push message
// itself carries only the request id and its expiry.
/// <reference lib="webworker" />
import { DeviceApi } from './api.ts';
import { loadStoredDevice } from './keystore.ts';
import { channelOf } from './channel.ts';
import type { PushMessage } from './types.ts';

declare const self: ServiceWorkerGlobalScope;

/** …/device/: this worker is …/device/app/sw.js. */
const base = new URL('../', self.location.href);

self.addEventListener('install', () => void self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

async function deviceApi(): Promise<DeviceApi | undefined> {
  const device = await loadStoredDevice();
  if (!device) return undefined;
  const api = new DeviceApi(base, device.issuer);
  api.device = device;
  return api;
}

function parse(event: PushEvent): PushMessage | undefined {
  try {
    const message = event.data?.json() as PushMessage | undefined;
    return message && typeof message.type === 'string' ? message : undefined;
  } catch {
    return undefined;
  }
}

async function onPush(message: PushMessage | undefined): Promise<void> {
  // Open pages fetch at once instead of waiting for their next poll.
  for (const client of await self.clients.matchAll({ type: 'window' })) client.postMessage({ type: 'refresh' });
  if (message?.type === 'ciba.device_enrolled') {
    await self.registration.showNotification('New device added', {
      body: `“${message.name ?? message.device_id}” can now approve sign-ins to your account. Not you? Remove it under Devices.`,
      tag: `device-${message.device_id}`,
      data: { url: new URL('#devices', base).href },
    });
    return;
  }
  if (message?.type !== 'ciba.authentication_request') {
    await self.registration.showNotification('Sign-in approvals', {
      body: 'Open the app to see what changed.',
      data: { url: base.href },
    });
    return;
  }
  const url = new URL(`#request=${encodeURIComponent(message.request_id)}`, base).href;
  let title = 'Sign-in request';
  let body = 'Someone asks to sign you in. Tap to check and answer.';
  try {
    const request = await (await deviceApi())?.request(message.request_id);
    if (request) {
      title = `${request.client_name ?? request.client_id} asks you to sign in`;
      body = request.binding_message ? `Check the code: ${request.binding_message}` : 'Tap to check and answer.';
    }
  } catch {
    // offline or refused: the generic text
  }
  await self.registration.showNotification(title, {
    body,
    tag: message.request_id,
    requireInteraction: true,
    data: { url },
  });
}

self.addEventListener('push', (event) => event.waitUntil(onPush(parse(event))));

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = (event.notification.data as { url?: string } | null)?.url ?? base.href;
  event.waitUntil(
    (async () => {
      for (const client of await self.clients.matchAll({ type: 'window', includeUncontrolled: true })) {
        if (client.url.startsWith(base.href)) {
          const focused = await client.focus();
          await focused.navigate(url).catch(() => undefined);
          return;
        }
      }
      await self.clients.openWindow(url);
    })(),
  );
});

// The push service replaced the subscription: register the new one as this device's channel.
self.addEventListener('pushsubscriptionchange', (event) => {
  const change = event as Event & { oldSubscription?: PushSubscription | null; waitUntil(p: Promise<unknown>): void };
  change.waitUntil(
    (async () => {
      const api = await deviceApi();
      const key = change.oldSubscription?.options.applicationServerKey ?? (await api?.vapidPublicKey());
      if (!api || !key) return;
      const subscription = await self.registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: key,
      });
      const channel = channelOf(subscription);
      if (channel) await api.setChannel(channel);
    })().catch(() => undefined),
  );
});

// A user's authentication devices (docs/device-api.md, "Managing devices"): listing them, removing one, and changing
// how a device is reached. Used by the device API handlers and the admin CLI (scripts/admin.ts).
import { validateChannel } from '../core/device-channel.ts';
import { OAuthError } from '../core/errors.ts';
import type { Device, StoredChannel } from '../core/model.ts';
import { getDevice, listUserDevices, removeDevice, setDeviceChannel } from '../adapters/store.ts';
import { deletePlatformEndpoint, requirePlatform } from '../adapters/push-endpoints.ts';
import { storedChannel } from './enrolment.ts';
import { errorFields, log } from '../runtime/log.ts';
import { config } from '../config.ts';

/** One device as `GET /device/devices` lists it; `created_at` in epoch seconds, `current` marks the caller. */
export type DeviceListEntry = { device_id: string; name?: string; created_at: number; current: boolean };

export function deviceListEntry(device: Device, currentId?: string): DeviceListEntry {
  return {
    device_id: device.device_id,
    ...(device.name !== undefined ? { name: device.name } : {}),
    created_at: Math.floor((device.created_at ?? 0) / 1000),
    current: device.device_id === currentId,
  };
}

export const listDevices = listUserDevices;

/**
 * Removes a device of `sub` (its assertions get 401 from then on, and it is no longer notified). Returns the removed
 * device, or undefined when `sub` has no such device.
 */
export async function removeUserDevice(sub: string, deviceId: string): Promise<Device | undefined> {
  const removed = await removeDevice(sub, deviceId);
  if (!removed) return undefined;
  log.info('device removed', { sub, deviceId });
  if (removed.channel) await retireChannel(sub, removed.channel);
  return removed;
}

/** Removes a device whoever its user is (operators); undefined when there is no such device. */
export async function removeDeviceById(deviceId: string): Promise<Device | undefined> {
  const device = await getDevice(deviceId);
  return device && removeUserDevice(device.sub, deviceId);
}

/**
 * `PUT /device/channel` body `{"channel": <channel> | null}`: sets or clears how the calling device is reached.
 * A malformed body or channel is invalid_request, and so is an sns platform this server has no application for
 * (checked before any endpoint is made).
 */
export async function setChannel(device: Device, body: unknown): Promise<void> {
  if (!body || typeof body !== 'object' || Array.isArray(body) || !('channel' in body)) {
    throw new OAuthError('invalid_request', 'body must be JSON {channel: <channel> | null}');
  }
  const raw = (body as { channel: unknown }).channel;
  const channel = raw === null ? undefined : validateChannel(raw, { localMode: config().localMode });
  if (channel?.type === 'sns') requirePlatform(channel.platform);
  const stored = channel && (await storedChannel(channel));
  const replaced = await setDeviceChannel(device.sub, device.device_id, stored);
  if (!replaced) {
    // Removed since its assertion was checked: nothing to set.
    if (stored) await retireChannel(device.sub, stored);
    throw new OAuthError('invalid_token', 'unknown device', {
      headers: { 'WWW-Authenticate': 'Bearer error="invalid_token", error_description="unknown device"' },
    });
  }
  log.info('device channel set', { sub: device.sub, deviceId: device.device_id, channel: channel?.type ?? 'none' });
  const previous = replaced.previous;
  if (previous && !(stored?.type === 'sns' && previous.type === 'sns' && stored.endpoint_arn === previous.endpoint_arn))
    await retireChannel(device.sub, previous);
}

/**
 * A channel no device of this one's user uses any more: an SNS platform endpoint is deleted, unless another of the
 * user's devices shares it (SNS gives the same endpoint for the same push token, e.g. an app enrolled twice on one
 * phone). A failure is logged: the device change stands.
 */
async function retireChannel(sub: string, channel: StoredChannel): Promise<void> {
  if (channel.type !== 'sns') return;
  try {
    const shared = (await listUserDevices(sub)).some(
      (d) => d.channel?.type === 'sns' && d.channel.endpoint_arn === channel.endpoint_arn,
    );
    if (!shared) await deletePlatformEndpoint(channel.endpoint_arn);
  } catch (e) {
    log.error('deleting a push endpoint failed', { sub, ...errorFields(e) });
  }
}

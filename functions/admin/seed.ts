// Seed loader (docs/seed-file.md): clients, users and their devices. Idempotent: loading the same seed twice
// leaves the same state. Used by the local stack at start and by `npm run seed` against a deployed table.
// Seeded devices count against the user's device cap (CIBA_MAX_DEVICES_PER_USER) like enrolled ones (one is left
// out when the user has enrolled up to the cap since), and keep the time they were first seeded; a user's `disabled`
// flag stays as it is (e.g. set with `npm run admin -- users disable`) unless the seed sets it.
import { ClientMetadataError, parseClientMetadata } from '../core/client-metadata.ts';
import { SchemaError, seedSchema, userSchema, validate } from '../core/schema.ts';
import { seal, sealContext } from '../adapters/sealer.ts';
import { hashUserCode, verifyUserCode } from '../core/crypto.ts';
import { validateDeviceName } from '../core/enrolment.ts';
import { OAuthError } from '../core/errors.ts';
import { DEVICE_ID_SYNTAX, type Device, type StoredChannel, type User } from '../core/model.ts';
import { SNS_PLATFORMS, validateChannel, type SnsPlatform } from '../core/device-channel.ts';
import {
  LoginConflictError,
  claimDeviceSlot,
  getDevice,
  getUser,
  putClient,
  putDevice,
  putUser,
  setUserDisabled,
} from '../adapters/store.ts';
import { log } from '../runtime/log.ts';
import { config } from '../config.ts';

export class SeedError extends Error {
  override readonly name = 'SeedError';
}

type Raw = Record<string, unknown>;
const isObject = (v: unknown): v is Raw => !!v && typeof v === 'object' && !Array.isArray(v);

const PROFILE_STRINGS = ['email', 'phone_number', 'name', 'given_name', 'family_name'] as const;
const PROFILE_BOOLEANS = ['email_verified', 'phone_number_verified'] as const;

function parseDevice(raw: unknown, sub: string): Device {
  if (!isObject(raw) || typeof raw.device_id !== 'string' || !DEVICE_ID_SYNTAX.test(raw.device_id)) {
    throw new SeedError(`user ${sub}: each device needs a device_id of 1-128 visible ASCII characters`);
  }
  const jwk = raw.jwk;
  if (
    !isObject(jwk) ||
    jwk.kty !== 'EC' ||
    jwk.crv !== 'P-256' ||
    typeof jwk.x !== 'string' ||
    typeof jwk.y !== 'string'
  ) {
    throw new SeedError(`device ${raw.device_id}: jwk must be a P-256 EC public key (kty EC, crv P-256, x, y)`);
  }
  if ('d' in jwk)
    throw new SeedError(`device ${raw.device_id}: jwk contains a private key ("d"); register the public key only`);
  let name: string | undefined;
  try {
    name = validateDeviceName(raw.name);
  } catch (e) {
    if (e instanceof OAuthError) throw new SeedError(`device ${raw.device_id}: ${e.message}`);
    throw e;
  }
  const channel = raw.channel === undefined ? undefined : parseStoredChannel(raw.channel, raw.device_id);
  return {
    device_id: raw.device_id,
    sub,
    jwk: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y },
    ...(name !== undefined ? { name } : {}),
    ...(channel ? { channel } : {}),
  };
}

const SNS_ENDPOINT_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:endpoint\/[A-Z_]+\/[\w.-]+\/[\w-]+$/;

/**
 * A seeded device's channel in its stored form (docs/seed-file.md): a Web Push subscription as a browser gives it, or
 * an existing SNS platform endpoint (`endpoint_arn`; the seed never creates endpoints).
 */
function parseStoredChannel(raw: unknown, deviceId: string): StoredChannel {
  const c = (raw ?? {}) as Record<string, unknown>;
  if (c.type === 'sns') {
    if (!SNS_PLATFORMS.includes(c.platform as SnsPlatform))
      throw new SeedError(`device ${deviceId}: channel.platform must be ${SNS_PLATFORMS.join(', ')}`);
    if (typeof c.endpoint_arn !== 'string' || !SNS_ENDPOINT_ARN.test(c.endpoint_arn))
      throw new SeedError(`device ${deviceId}: channel.endpoint_arn must be an SNS platform endpoint ARN`);
    return { type: 'sns', platform: c.platform as SnsPlatform, endpoint_arn: c.endpoint_arn };
  }
  try {
    const channel = validateChannel(raw, { localMode: config().localMode });
    if (channel.type !== 'webpush') throw new SeedError(`device ${deviceId}: channel.type must be webpush or sns`);
    return channel;
  } catch (e) {
    if (e instanceof OAuthError) throw new SeedError(`device ${deviceId}: ${e.message}`);
    throw e;
  }
}

async function parseUser(raw: unknown): Promise<{ user: User; devices: Device[]; wasDisabled: boolean }> {
  if (!isObject(raw) || typeof raw.sub !== 'string' || !/^[\x21-\x7E]{1,255}$/.test(raw.sub)) {
    throw new SeedError('each user needs a sub of 1-255 visible ASCII characters');
  }
  const sub = raw.sub;
  const user: User = { sub };
  for (const k of PROFILE_STRINGS) {
    if (raw[k] === undefined) continue;
    if (typeof raw[k] !== 'string') throw new SeedError(`user ${sub}: ${k} must be a string`);
    user[k] = raw[k] as string;
  }
  for (const k of PROFILE_BOOLEANS) {
    if (raw[k] === undefined) continue;
    if (typeof raw[k] !== 'boolean') throw new SeedError(`user ${sub}: ${k} must be a boolean`);
    user[k] = raw[k] as boolean;
  }
  if (raw.disabled !== undefined && typeof raw.disabled !== 'boolean')
    throw new SeedError(`user ${sub}: disabled must be a boolean`);
  const stored = await getUser(sub);
  if (raw.user_code !== undefined) {
    if (typeof raw.user_code !== 'string' || raw.user_code.length < 4)
      throw new SeedError(`user ${sub}: user_code must be a string of at least 4 characters`);
    // Keep the stored hash when the code is unchanged, so reloading a seed is a no-op.
    const existing = stored?.user_code_hash;
    user.user_code_hash =
      existing && (await verifyUserCode(raw.user_code, existing)) ? existing : await hashUserCode(raw.user_code);
  }
  // A user disabled by an operator stays disabled when the seed says nothing (the local stack reseeds at each start).
  const disabled = (raw.disabled as boolean | undefined) ?? stored?.disabled;
  if (disabled) user.disabled = true;
  // Further login identifiers (a personal number, an employee number): login_hint finds the user by them too.
  if (isObject(raw.identifiers)) user.identifiers = raw.identifiers as Record<string, string>;
  const devices = raw.devices ?? [];
  if (!Array.isArray(devices)) throw new SeedError(`user ${sub}: devices must be an array`);
  const { maxDevicesPerUser } = config();
  if (devices.length > maxDevicesPerUser)
    throw new SeedError(`user ${sub}: more than ${maxDevicesPerUser} devices (CIBA_MAX_DEVICES_PER_USER)`);
  return { user, devices: devices.map((d) => parseDevice(d, sub)), wasDisabled: stored?.disabled === true };
}

/** Validate the whole seed first, then write it; a bad seed writes nothing. */
export async function loadSeed(seed: unknown): Promise<{ clients: number; users: number; devices: number }> {
  if (!isObject(seed)) throw new SeedError('the seed must be a JSON object with "clients" and "users"');
  // One schema (core/schema.ts) for the file, its clients, users and devices: a misspelt field is named, not ignored.
  try {
    validate(seedSchema, seed);
    (seed.users as unknown[] | undefined)?.forEach((u, i) => {
      validate(userSchema, u, `users[${i}]`);
    });
  } catch (e) {
    if (e instanceof SchemaError) throw new SeedError(e.message);
    throw e;
  }
  const rawClients = (seed.clients ?? []) as unknown[];
  const rawUsers = (seed.users ?? []) as unknown[];
  const clients = rawClients.map((c, i) => {
    try {
      const { localMode, mtlsBaseUrl } = config();
      return parseClientMetadata(c, { localMode, mtlsEndpoint: mtlsBaseUrl !== undefined, path: `clients[${i}]` });
    } catch (e) {
      if (e instanceof ClientMetadataError) throw new SeedError(e.message);
      throw e;
    }
  });
  // client_secret_jwt (RFC 7523): HS256 needs the secret itself, so it is kept sealed instead of hashed.
  await Promise.all(
    clients.map(async (client, i) => {
      if (client.token_endpoint_auth_method !== 'client_secret_jwt') return;
      const secret = (rawClients[i] as { client_secret: string }).client_secret;
      client.client_secret_sealed = await seal(secret, sealContext.clientSecret(client.client_id));
    }),
  );
  const users = await Promise.all(rawUsers.map(parseUser));
  const ids = new Set<string>();
  for (const d of users.flatMap((u) => u.devices)) {
    if (ids.has(d.device_id)) throw new SeedError(`device_id ${d.device_id} appears twice`);
    ids.add(d.device_id);
  }
  for (const client of clients) await putClient(client);
  for (const { user, devices, wasDisabled } of users) {
    try {
      await putUser(user);
    } catch (e) {
      if (e instanceof LoginConflictError) throw new SeedError(`user ${user.sub}: ${e.message}`);
      throw e;
    }
    for (const device of devices) await seedDevice(device);
    // A disabled user, or one enabled again, as `users disable|enable` does it: the flag on the gate and each device
    // row (what the backchannel endpoint and the device API check), their requests held or released, approvals
    // not yet redeemed withdrawn (store/registry.ts setUserDisabled).
    if (user.disabled || wasDisabled) await setUserDisabled(user.sub, user.disabled === true);
  }
  return { clients: clients.length, users: users.length, devices: ids.size };
}

/**
 * A seeded device takes a place among its user's devices and keeps the time it was first seeded. A user who has
 * enrolled as many devices as allowed since (e.g. after removing the seeded one) keeps them: the seeded device is
 * left out with a warning, so a restart of the local stack still starts.
 */
async function seedDevice(device: Device): Promise<void> {
  const now = Date.now();
  const existing = await getDevice(device.device_id);
  if (!(await claimDeviceSlot(device.sub, device.device_id, config().maxDevicesPerUser, now))) {
    log.warn('seed: device left out, the user has as many devices as allowed (CIBA_MAX_DEVICES_PER_USER)', {
      sub: device.sub,
      deviceId: device.device_id,
    });
    return;
  }
  const created = existing?.sub === device.sub ? existing.created_at : undefined;
  await putDevice({
    ...device,
    created_at: created ?? now,
    // The seed's channel, else the one the device registered since.
    ...(!device.channel && existing?.sub === device.sub && existing.channel ? { channel: existing.channel } : {}),
  });
}

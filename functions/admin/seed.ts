// Seed loader (docs/seed-file.md): clients, users and their devices. Idempotent: loading the same seed twice
// leaves the same state. Used by the local stack at start and by `npm run seed` against a deployed table.
import { ClientMetadataError, parseClientMetadata } from '../core/client-metadata.ts';
import { seal, sealContext } from '../adapters/sealer.ts';
import { hashUserCode, verifyUserCode } from '../core/crypto.ts';
import { DEVICE_ID_SYNTAX, type Device, type User } from '../core/model.ts';
import { LoginConflictError, getUser, putClient, putDevice, putUser } from '../adapters/store.ts';
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
  return { device_id: raw.device_id, sub, jwk: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y } };
}

async function parseUser(raw: unknown): Promise<{ user: User; devices: Device[] }> {
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
  if (raw.user_code !== undefined) {
    if (typeof raw.user_code !== 'string' || raw.user_code.length < 4)
      throw new SeedError(`user ${sub}: user_code must be a string of at least 4 characters`);
    // Keep the stored hash when the code is unchanged, so reloading a seed is a no-op.
    const existing = (await getUser(sub))?.user_code_hash;
    user.user_code_hash =
      existing && (await verifyUserCode(raw.user_code, existing)) ? existing : await hashUserCode(raw.user_code);
  }
  const devices = raw.devices ?? [];
  if (!Array.isArray(devices)) throw new SeedError(`user ${sub}: devices must be an array`);
  return { user, devices: devices.map((d) => parseDevice(d, sub)) };
}

/** Validate the whole seed first, then write it; a bad seed writes nothing. */
export async function loadSeed(seed: unknown): Promise<{ clients: number; users: number; devices: number }> {
  if (!isObject(seed)) throw new SeedError('the seed must be a JSON object with "clients" and "users"');
  const rawClients = seed.clients ?? [];
  const rawUsers = seed.users ?? [];
  if (!Array.isArray(rawClients) || !Array.isArray(rawUsers))
    throw new SeedError('"clients" and "users" must be arrays');
  const clients = rawClients.map((c) => {
    try {
      const { localMode, mtlsBaseUrl } = config();
      return parseClientMetadata(c, { localMode, mtlsEndpoint: mtlsBaseUrl !== undefined });
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
  for (const { user, devices } of users) {
    try {
      await putUser(user);
    } catch (e) {
      if (e instanceof LoginConflictError) throw new SeedError(`user ${user.sub}: ${e.message}`);
      throw e;
    }
    for (const device of devices) await putDevice(device);
  }
  return { clients: clients.length, users: users.length, devices: ids.size };
}

// What an operator does to a running server (the admin CLI, docs/admin.md), as use cases over the store: the same
// rules the endpoints apply (client metadata, seed validation, a request's decision), never a second copy of them.
import { clientMetadataView } from '../core/client-metadata.ts';
import type { AuthRequest, Client, User } from '../core/model.ts';
import * as store from '../adapters/store.ts';
import { sendDecision } from '../adapters/workflow.ts';
import { listDevices, removeUserDevice } from '../usecases/devices.ts';
import { loadSeed } from './seed.ts';

export { createInitialAccessToken } from '../usecases/registration.ts';

export type ClientSummary = Pick<
  Client,
  'client_id' | 'client_name' | 'backchannel_token_delivery_mode' | 'token_endpoint_auth_method'
> & {
  registered: 'seed' | 'dynamic';
};

export async function listClients(): Promise<ClientSummary[]> {
  const clients = await store.scanKind<Client>('CLIENT#', 'CLIENT');
  return clients
    .map((c) => ({
      client_id: c.client_id,
      ...(c.client_name ? { client_name: c.client_name } : {}),
      backchannel_token_delivery_mode: c.backchannel_token_delivery_mode,
      token_endpoint_auth_method: c.token_endpoint_auth_method,
      registered: c.registration_access_token_hash ? ('dynamic' as const) : ('seed' as const),
    }))
    .sort((a, b) => a.client_id.localeCompare(b.client_id));
}

/** A client's metadata as the registration endpoints return it (no secret hash, no sealed secret). */
export async function showClient(clientId: string): Promise<Record<string, unknown> | undefined> {
  const client = await store.getClient(clientId);
  return client && clientMetadataView(client);
}

/** Adds or replaces clients from seed-file entries (the seed file's rules; a secret given there is stored hashed). */
export async function addClients(clients: unknown[]): Promise<number> {
  return (await loadSeed({ clients })).clients;
}

export async function removeClient(clientId: string): Promise<boolean> {
  return (await store.deleteClient(clientId)) !== undefined;
}

export type UserSummary = Pick<User, 'sub' | 'email' | 'phone_number' | 'name' | 'disabled'>;

export async function listUsers(): Promise<UserSummary[]> {
  const users = await store.scanKind<User>('USER#', 'PROFILE');
  return users
    .map(({ sub, email, phone_number, name, disabled }) => ({ sub, email, phone_number, name, disabled }))
    .sort((a, b) => a.sub.localeCompare(b.sub));
}

/** A user's profile (never the user-code hash) with their devices. */
export async function showUser(sub: string): Promise<Record<string, unknown> | undefined> {
  const user = await store.getUser(sub);
  if (!user) return undefined;
  const { user_code_hash, ...profile } = user;
  const devices = await listDevices(sub);
  return {
    ...profile,
    user_code: user_code_hash ? 'set' : 'unset',
    devices: devices.map((d) => ({ device_id: d.device_id, ...(d.name ? { name: d.name } : {}) })),
  };
}

/** Adds or updates users from seed-file entries (with their devices). */
export async function addUsers(users: unknown[]): Promise<number> {
  return (await loadSeed({ users })).users;
}

/**
 * Removes a user: profile, login identifiers, devices (their assertions fail from then on) and refresh tokens (the
 * token endpoint refuses a removed user's grants anyway). Their pending requests can no longer be approved.
 */
export async function removeUser(sub: string): Promise<{ devices: number; refreshTokens: number } | undefined> {
  const user = await store.getUser(sub);
  if (!user) return undefined;
  const devices = await listDevices(sub);
  for (const d of devices) await removeUserDevice(sub, d.device_id);
  // Their requests give no tokens. In this order, once the devices are gone: pending ones are denied (clients are told,
  // as by `requests cancel`), and an approval from a device checked just before its removal either finds its request
  // denied or landed before the list of approvals below, which withdraws it (the token endpoint does not read the user).
  await denyPendingRequests(sub);
  await store.withdrawApprovals(sub);
  const refreshTokens = await store.scanKeys('RT#', { attribute: 'sub', value: sub });
  const firstRefreshTokens = await store.endFirstRefreshTokens(sub);
  const logins = await store.scanKeys('LOGIN#', { attribute: 'sub', value: sub });
  await store.deleteKeys([
    ...refreshTokens,
    ...logins,
    { pk: `USER#${sub}`, sk: 'PROFILE' },
    { pk: `USER#${sub}`, sk: 'GATE' },
    // The map of device slots, empty now that the devices are gone.
    { pk: `USER#${sub}`, sk: 'DEVICES' },
  ]);
  return { devices: devices.length, refreshTokens: refreshTokens.length + firstRefreshTokens };
}

/** Pending, unexpired requests: of one user, or of everyone. */
export async function listRequests(sub?: string): Promise<AuthRequest[]> {
  const now = Date.now();
  if (sub) return store.listPendingRequests(sub, now);
  const all = await store.scanKind<AuthRequest>('AUTHREQ#', 'REQ');
  return all.filter((r) => r.status === 'pending' && r.expires_at > now).sort((a, b) => a.created_at - b.created_at);
}

/**
 * Cancels a pending request as a denial by the operator: the conditional decision write (exactly one decision wins),
 * then the workflow resumes with it, so a poll client gets access_denied and a ping or push client is notified of the
 * denial. `not_found` / `already_decided` / `expired` otherwise.
 */
export async function cancelRequest(
  requestId: string,
): Promise<'cancelled' | 'not_found' | 'already_decided' | 'expired'> {
  const req = await store.getAuthRequest(requestId);
  if (!req) return 'not_found';
  const result = await deny(req);
  if (result.ok) return 'cancelled';
  // A denial is never refused as held (only approvals are).
  return result.reason === 'held' ? 'already_decided' : result.reason;
}

/** Denies a pending request as cancelled: ping/push clients are told (the workflow resumes with the denial). */
async function deny(req: AuthRequest): Promise<store.DecisionResult> {
  const result = await store.decideAuthRequest(req.id, req.sub, 'denied', Date.now(), []);
  // The user's gate forgets the request when its entry is next needed (usecases/rate-limit.ts admitUser).
  if (result.ok && result.taskToken) await sendDecision(result.taskToken, 'denied', { cancelled: true });
  return result;
}

/** Denies every pending request of the user (removeUser). */
async function denyPendingRequests(sub: string): Promise<void> {
  for (const req of await store.listPendingRequests(sub, Date.now(), store.USER_REQUESTS_MAX)) await deny(req);
}

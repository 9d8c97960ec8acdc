// Dynamic client registration (RFC 7591) and client management (RFC 7592): the metadata rules are
// core/client-metadata.ts (one schema with the seed file and the admin CLI); this authorises the caller (an initial
// access token, unless registration is open; a registration access token for 7592), issues the client_id, secret
// and registration access token (returned once, stored hashed or sealed), and stores the client.
import { OAuthError } from '../core/errors.ts';
import { randomId, safeEqual, sha256b64u } from '../core/crypto.ts';
import { ClientMetadataError, clientMetadataView, parseClientMetadata } from '../core/client-metadata.ts';
import type { Client } from '../core/model.ts';
import { PATHS } from '../routes.ts';
import * as store from '../adapters/store.ts';
import { seal, sealContext } from '../adapters/sealer.ts';
import { log } from '../runtime/log.ts';
import { config } from '../config.ts';

/** Registration is on unless the operator turned it off (CIBA_REGISTRATION). */
export const registrationEnabled = (): boolean => config().registration === 'on';

const SECRET_METHODS = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt'];

const invalidToken = (why: string) =>
  new OAuthError('invalid_token', why, { headers: { 'WWW-Authenticate': `Bearer error="invalid_token"` } });

function bearer(authorization: string | undefined): string | undefined {
  const m = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(authorization?.trim() ?? '');
  return m?.[1];
}

function metadataError(e: unknown): never {
  if (e instanceof ClientMetadataError) {
    throw new OAuthError(e.field === 'redirect_uris' ? 'invalid_redirect_uri' : 'invalid_client_metadata', e.message);
  }
  throw e;
}

function asObject(body: unknown): Record<string, unknown> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new OAuthError('invalid_client_metadata', 'the body must be a JSON object of client metadata');
  }
  return body as Record<string, unknown>;
}

const clientUri = (clientId: string) =>
  config().issuer + PATHS.registrationClient.replace('{client_id}', encodeURIComponent(clientId));

/**
 * Validates metadata for `clientId` and prepares the record: a client_secret_jwt secret sealed, others hashed.
 * `secret` is the plain secret to use for a secret-based method (issued by us).
 */
async function prepare(body: Record<string, unknown>, clientId: string, secret: string | undefined): Promise<Client> {
  const { localMode, mtlsBaseUrl } = config();
  const { client_secret: _ignored, client_id: _id, ...metadata } = body;
  let client: Client;
  try {
    client = parseClientMetadata(
      { ...metadata, client_id: clientId, ...(secret ? { client_secret: secret } : {}) },
      { localMode, mtlsEndpoint: mtlsBaseUrl !== undefined, schema: 'registration' },
    );
  } catch (e) {
    metadataError(e);
  }
  if (client.token_endpoint_auth_method === 'client_secret_jwt' && secret) {
    client.client_secret_sealed = await seal(secret, sealContext.clientSecret(clientId));
  }
  return client;
}

function response(client: Client, token: string, secret?: string): Record<string, unknown> {
  return {
    ...clientMetadataView(client),
    ...(secret ? { client_secret: secret, client_secret_expires_at: 0 } : {}),
    registration_access_token: token,
    registration_client_uri: clientUri(client.client_id),
  };
}

/** RFC 7591 §3: registers a client; 201 with its metadata, credentials and registration access token. */
export async function registerClient(
  body: unknown,
  authorization: string | undefined,
): Promise<Record<string, unknown>> {
  const { openRegistration } = config();
  const metadata = asObject(body);
  const iat = bearer(authorization);
  const iatHash = iat ? sha256b64u(iat) : undefined;
  if (!openRegistration) {
    if (!iatHash) throw invalidToken('an initial access token is required to register');
    if (!(await store.useInitialAccessToken(iatHash, Date.now()))) {
      throw invalidToken('the initial access token is invalid, expired or already used');
    }
  }
  try {
    const clientId = randomId(16);
    const method = String(metadata.token_endpoint_auth_method ?? 'client_secret_basic');
    const secret = SECRET_METHODS.includes(method) ? randomId(32) : undefined;
    const client = await prepare(metadata, clientId, secret);
    const token = randomId(32);
    const stored: Client = {
      ...client,
      client_id_issued_at: Math.floor(Date.now() / 1000),
      registration_access_token_hash: sha256b64u(token),
    };
    if (!(await store.createClient(stored))) throw new OAuthError('temporarily_unavailable', 'try again');
    log.info('client registered', { clientId, mode: client.backchannel_token_delivery_mode });
    return response(stored, token, secret);
  } catch (e) {
    // A refused registration does not use up a single-use initial access token.
    if (iatHash && !openRegistration) await store.restoreInitialAccessToken(iatHash);
    throw e;
  }
}

/** RFC 7592 §2: the registered client named in the path, if the registration access token is its own. */
async function authorise(clientId: string, authorization: string | undefined): Promise<Client> {
  const token = bearer(authorization);
  if (!token) throw invalidToken('the registration access token is required');
  const client = await store.getClient(clientId);
  // An unknown client and a wrong token look the same (RFC 7592 §2.1: 401, nothing revealed).
  if (!client?.registration_access_token_hash || !safeEqual(client.registration_access_token_hash, sha256b64u(token))) {
    throw invalidToken('the registration access token is invalid');
  }
  return client;
}

/** Rotates the registration access token (RFC 7592 §3 returns one with every client information response). */
async function rotate(next: Client, previousHash: string, secret?: string): Promise<Record<string, unknown>> {
  const token = randomId(32);
  const stored: Client = { ...next, registration_access_token_hash: sha256b64u(token) };
  if (!(await store.replaceRegisteredClient(stored, previousHash))) {
    throw invalidToken('the registration access token was used concurrently; read the client again');
  }
  return response(stored, token, secret);
}

/** RFC 7592 §2.1 read. */
export async function readClient(
  clientId: string,
  authorization: string | undefined,
): Promise<Record<string, unknown>> {
  const client = await authorise(clientId, authorization);
  return rotate(client, client.registration_access_token_hash!);
}

/**
 * RFC 7592 §2.2 update: the body replaces the metadata. The secret is kept when the method still fits it, a new one
 * is issued (and returned) otherwise; a client_secret in the body must be the current one.
 */
export async function updateClient(
  clientId: string,
  authorization: string | undefined,
  body: unknown,
): Promise<Record<string, unknown>> {
  const current = await authorise(clientId, authorization);
  const metadata = asObject(body);
  if (metadata.client_id !== clientId) {
    throw new OAuthError('invalid_client_metadata', 'client_id must be the registered client_id');
  }
  const method = String(metadata.token_endpoint_auth_method ?? 'client_secret_basic');
  const keepHash = current.client_secret_hash && (method === 'client_secret_basic' || method === 'client_secret_post');
  const keepSealed = current.client_secret_sealed && method === 'client_secret_jwt';
  const secret = SECRET_METHODS.includes(method) && !keepHash && !keepSealed ? randomId(32) : undefined;
  // Validation needs a secret for secret methods; a kept one is put back below.
  const next = await prepare(
    metadata,
    clientId,
    secret ?? (SECRET_METHODS.includes(method) ? randomId(32) : undefined),
  );
  if (keepHash) next.client_secret_hash = current.client_secret_hash!;
  if (keepSealed) {
    delete next.client_secret_hash;
    next.client_secret_sealed = current.client_secret_sealed!;
  }
  next.client_id_issued_at = current.client_id_issued_at!;
  log.info('client updated', { clientId, newSecret: secret !== undefined });
  return rotate(next, current.registration_access_token_hash!, secret);
}

/** RFC 7592 §2.3 delete. */
export async function deleteRegisteredClient(clientId: string, authorization: string | undefined): Promise<void> {
  const client = await authorise(clientId, authorization);
  if (!(await store.deleteClient(clientId, client.registration_access_token_hash!))) {
    throw invalidToken('the registration access token is invalid');
  }
  log.info('client deleted', { clientId });
}

/**
 * An initial access token for one or more registrations (the admin CLI's `registration-tokens create`): returned
 * once, stored as its SHA-256.
 */
export async function createInitialAccessToken(
  expiresInSeconds: number,
  singleUse: boolean,
): Promise<{ token: string; expires_at: number; single_use: boolean }> {
  const token = randomId(32);
  const now = Date.now();
  const expiresAt = now + expiresInSeconds * 1000;
  await store.putInitialAccessToken(sha256b64u(token), {
    expires_at: expiresAt,
    single_use: singleUse,
    created_at: now,
  });
  return { token, expires_at: Math.floor(expiresAt / 1000), single_use: singleUse };
}

// Sealing: authenticated encryption (AES-256-GCM) of the few secrets that must be read back later: the auth_req_id
// and client_notification_token of a ping/push request until it is delivered, and a push token set between delivery
// attempts. Everything else secret is stored hashed. `context` (the request id and field) is bound in as associated
// data, so a sealed value cannot be moved to another row or field.
//
// Keys: locally a 256-bit key in a file beside the signing keys; on AWS envelope encryption under a KMS symmetric key
// (GenerateDataKey, cached for a few minutes per container; Decrypt of a data key cached likewise), so sealing costs
// no KMS call per request on a warm function.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { DecryptCommand, GenerateDataKeyCommand } from '@aws-sdk/client-kms';
import { config } from '../config.ts';
import { kms } from './kms.ts';

const VERSION = 'v1';
/** KMS encryption context: IAM policies on AWS are conditioned on it (infra/ciba-construct.ts). */
export const SEAL_CONTEXT = { purpose: 'ciba-sealing' } as const;
/**
 * KMS encryption context of the server's own signing keys (KEYS_SOURCE=sealed, functions/adapters/keys.ts): a context
 * of their own, so only the roles of the signing functions may open them, not every function that opens sealed values.
 */
export const SIGNING_KEYS_CONTEXT = { purpose: 'ciba-signing-keys' } as const;
type KmsContext = typeof SEAL_CONTEXT | typeof SIGNING_KEYS_CONTEXT;
const DATA_KEY_REUSE_MS = 5 * 60_000;
const MAX_CACHED_KEYS = 64;

type DataKey = { key: Buffer; ref: string };
type KeySource = { current(): Promise<DataKey>; resolve(ref: string): Promise<Buffer> };

function fileSource(file: string): KeySource {
  let key: Buffer | undefined;
  const load = (): Buffer => {
    if (key) return key;
    if (!existsSync(file)) {
      mkdirSync(dirname(file), { recursive: true });
      try {
        writeFileSync(file, JSON.stringify({ k: randomBytes(32).toString('base64url') }), { mode: 0o600, flag: 'wx' });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    const k = Buffer.from((JSON.parse(readFileSync(file, 'utf8')) as { k: string }).k, 'base64url');
    if (k.length !== 32) throw new Error(`sealing key file ${file} does not hold a 256-bit key`);
    key = k;
    return key;
  };
  return {
    current: async () => ({ key: load(), ref: 'local' }),
    resolve: async (ref) => {
      if (ref !== 'local') throw new Error('sealed with a KMS data key, but this server uses a local sealing key');
      return load();
    },
  };
}

function kmsSource(keyId: string, encryptionContext: KmsContext): KeySource {
  let current: { dataKey: DataKey; until: number } | undefined;
  const opened = new Map<string, Buffer>();
  return {
    async current() {
      if (current && current.until > Date.now()) return current.dataKey;
      const out = await kms().send(
        new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: encryptionContext }),
      );
      const dataKey = { key: Buffer.from(out.Plaintext!), ref: Buffer.from(out.CiphertextBlob!).toString('base64url') };
      current = { dataKey, until: Date.now() + DATA_KEY_REUSE_MS };
      return dataKey;
    },
    async resolve(ref) {
      const cached = opened.get(ref);
      if (cached) return cached;
      const out = await kms().send(
        new DecryptCommand({
          KeyId: keyId,
          CiphertextBlob: Buffer.from(ref, 'base64url'),
          EncryptionContext: encryptionContext,
        }),
      );
      const key = Buffer.from(out.Plaintext!);
      if (opened.size >= MAX_CACHED_KEYS) opened.delete(opened.keys().next().value!);
      opened.set(ref, key);
      return key;
    },
  };
}

// One source per KMS encryption context (locally the one key file serves both; the associated data keeps them apart).
const sources = new Map<KmsContext, KeySource>();
function keys(kmsContext: KmsContext): KeySource {
  const s = config().sealing;
  let source = sources.get(kmsContext);
  if (!source) {
    source = s.source === 'file' ? fileSource(s.file) : kmsSource(s.keyId, kmsContext);
    sources.set(kmsContext, source);
  }
  return source;
}

/** What each sealed value is bound to: its row and field. One list, so no two kinds of value can share a context. */
export const sealContext = {
  deliverySecrets: (requestId: string) => `${requestId}#delivery_secrets`,
  pushTokens: (requestId: string) => `${requestId}#push_tokens`,
  clientSecret: (clientId: string) => `client#${clientId}#client_secret`,
  /** The server's private signing keys (KEYS_SOURCE=sealed); sealed under SIGNING_KEYS_CONTEXT. */
  signingKeys: () => 'signing-keys#private',
};

const aad = (context: string) => Buffer.from(`ciba-seal:${context}`, 'utf8');

/**
 * Encrypts `plaintext` for `context`: `v1.<key ref>.<iv>.<ciphertext+tag>` (base64url parts). `kmsContext`: the KMS
 * encryption context of the data key (SEAL_CONTEXT unless it is the signing keys).
 */
export async function seal(plaintext: string, context: string, kmsContext: KmsContext = SEAL_CONTEXT): Promise<string> {
  const { key, ref } = await keys(kmsContext).current();
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(aad(context));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return [VERSION, ref, iv.toString('base64url'), body.toString('base64url')].join('.');
}

/** Decrypts a value from seal() for the same `context`; throws when it was altered or sealed for another context. */
export async function unseal(sealed: string, context: string, kmsContext: KmsContext = SEAL_CONTEXT): Promise<string> {
  const [version, ref, iv, body] = sealed.split('.');
  if (version !== VERSION || !ref || !iv || !body) throw new Error('not a sealed value');
  const key = await keys(kmsContext).resolve(ref);
  const data = Buffer.from(body, 'base64url');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url')).setAAD(aad(context));
  decipher.setAuthTag(data.subarray(data.length - 16));
  return Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]).toString('utf8');
}

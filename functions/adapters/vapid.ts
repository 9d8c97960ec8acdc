// VAPID (RFC 8292): the server's identity towards Web Push services. A P-256 key signs a short JWT per push-service
// origin; the public key (`GET /device/config` `vapid_public_key`) is what browsers bind subscriptions to. Two sources,
// like the signing keys (./keys.ts): a key file in the data dir (local stack) or a KMS key whose private half never
// leaves KMS (Sign with ECDSA_SHA_256; the DER signature becomes JOSE r‖s). Tokens are cached per origin for hours,
// so a warm function signs once per push service, not once per message.
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as cryptoSign,
  type KeyObject,
} from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { GetPublicKeyCommand, SignCommand } from '@aws-sdk/client-kms';
import { kms } from './kms.ts';
import { config } from '../config.ts';
import { derToJose, sha256 } from '../core/crypto.ts';
import { VAPID_SUBJECT } from '../core/user-notification.ts';

type VapidSource = {
  /** The uncompressed P-256 point (65 bytes, 0x04 ‖ x ‖ y). */
  publicKey(): Promise<Buffer>;
  /** ES256 signature (64-byte r ‖ s) over `input`. */
  sign(input: Buffer): Promise<Buffer>;
};

const rawPoint = (key: KeyObject): Buffer => {
  const jwk = key.export({ format: 'jwk' });
  return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
};

/** A key file (JWK, P-256), made on first use and kept across restarts (mode 0600). */
function fileSource(file: string): VapidSource {
  let key: KeyObject | undefined;
  const load = (): KeyObject => {
    if (key) return key;
    if (!existsSync(file)) {
      mkdirSync(dirname(file), { recursive: true });
      const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
      try {
        writeFileSync(file, JSON.stringify(jwk), { mode: 0o600, flag: 'wx' });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // another process made it first: use theirs
      }
    }
    const jwk = JSON.parse(readFileSync(file, 'utf8')) as import('node:crypto').JsonWebKey;
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.d)
      throw new Error(`VAPID key file ${file} is not a P-256 private key`);
    key = createPrivateKey({ key: jwk, format: 'jwk' });
    return key;
  };
  return {
    publicKey: async () => rawPoint(createPublicKey(load())),
    sign: async (input) => cryptoSign('sha256', input, { key: load(), dsaEncoding: 'ieee-p1363' }),
  };
}

function kmsSource(keyId: string): VapidSource {
  let point: Promise<Buffer> | undefined;
  return {
    publicKey: () =>
      (point ??= kms()
        .send(new GetPublicKeyCommand({ KeyId: keyId }))
        .then((out) => rawPoint(createPublicKey({ key: Buffer.from(out.PublicKey!), format: 'der', type: 'spki' })))
        .catch((e: unknown) => {
          point = undefined;
          throw e;
        })),
    async sign(input) {
      const out = await kms().send(
        new SignCommand({
          KeyId: keyId,
          Message: sha256(input),
          MessageType: 'DIGEST',
          SigningAlgorithm: 'ECDSA_SHA_256',
        }),
      );
      return derToJose(out.Signature!);
    },
  };
}

let source: VapidSource | undefined;
function vapid(): VapidSource {
  if (source) return source;
  const c = config();
  // On AWS (KMS sealing key, whichever signing keys) a KMS key; locally a key file.
  if (c.sealing.source === 'kms') {
    if (!c.vapidKmsKeyId) throw new Error('configuration: CIBA_VAPID_KMS_KEY_ID is required for Web Push');
    source = kmsSource(c.vapidKmsKeyId);
  } else {
    const beside = c.keys.source === 'file' ? c.keys.file : c.sealing.file;
    source = fileSource(c.vapidKeyFile || join(dirname(beside), 'vapid-key.json'));
  }
  return source;
}

/** The VAPID public key as browsers take it (`applicationServerKey`): base64url of the uncompressed point. */
export async function vapidPublicKey(): Promise<string> {
  return (await vapid().publicKey()).toString('base64url');
}

/** A token is used for 12 hours (RFC 8292 §2: `exp` at most 24 hours ahead) and replaced an hour before it ends. */
const TOKEN_LIFETIME_S = 12 * 3600;
const RENEW_BEFORE_S = 3600;
const MAX_ORIGINS = 256;
const tokens = new Map<string, Promise<{ header: string; exp: number }>>();

/**
 * The VAPID contact (RFC 8292 §2.1): CIBA_VAPID_SUBJECT, else the issuer when it is https (on AWS), else (the local
 * stack's http issuer is no contact) `mailto:ciba@localhost`.
 */
function subject(): string {
  const { vapidSubject, issuer } = config();
  if (vapidSubject && !VAPID_SUBJECT.test(vapidSubject))
    throw new Error('configuration: CIBA_VAPID_SUBJECT must be a mailto: or https: URL');
  return vapidSubject || (issuer.startsWith('https://') ? issuer : 'mailto:ciba@localhost');
}

async function mint(origin: string, nowS: number): Promise<{ header: string; exp: number }> {
  const exp = nowS + TOKEN_LIFETIME_S;
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64({ typ: 'JWT', alg: 'ES256' })}.${b64({ aud: origin, exp, sub: subject() })}`;
  const [signature, key] = await Promise.all([vapid().sign(Buffer.from(input)), vapidPublicKey()]);
  return { header: `vapid t=${input}.${signature.toString('base64url')}, k=${key}`, exp };
}

/** The `Authorization` header for a push to `endpoint` (RFC 8292 §3): `vapid t=<JWT for its origin>, k=<key>`. */
export async function vapidAuthorization(endpoint: string, nowMs = Date.now()): Promise<string> {
  const origin = new URL(endpoint).origin;
  const nowS = Math.floor(nowMs / 1000);
  const cached = tokens.get(origin);
  if (cached) {
    const token = await cached.catch(() => undefined);
    if (token && token.exp - RENEW_BEFORE_S > nowS) return token.header;
    if (tokens.get(origin) === cached) tokens.delete(origin);
  }
  // Another caller may have started a new one while this one waited.
  let pending = tokens.get(origin);
  if (!pending) {
    if (tokens.size >= MAX_ORIGINS) tokens.delete(tokens.keys().next().value!);
    const minted = mint(origin, nowS);
    tokens.set(origin, minted);
    minted.catch(() => {
      if (tokens.get(origin) === minted) tokens.delete(origin);
    });
    pending = minted;
  }
  return (await pending).header;
}

// Signing keys. Two sources behind one interface: a jose key set in a file (local stack) and AWS KMS asymmetric
// keys (the private key never leaves KMS). Tokens are compact JWS built here, so both sources share one path.
import { createPrivateKey, createPublicKey, sign as cryptoSign, constants, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SigningAlgorithmSpec } from '@aws-sdk/client-kms';
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import { lazyAwsClient } from './aws.ts';
import { config } from '../config.ts';
import { sha256 } from '../core/crypto.ts';
import type { SigningAlg } from '../core/model.ts';

// Loaded on first use (a cold start that signs nothing and reads no public key does not pay for the KMS client).
const kms = /* @__PURE__ */ lazyAwsClient(
  'KMS',
  () => import('@aws-sdk/client-kms'),
  (mod) => new mod.KMSClient({}),
);

type PublicKey = { kid: string; jwk: JWK; kty: 'RSA' | 'EC' };
type KeySource = {
  publicKeys(): Promise<PublicKey[]>;
  /** Raw JWS signature (RS256/PS256: RSA signature; ES256: 64-byte R||S) over `input`. */
  sign(kty: 'RSA' | 'EC', alg: SigningAlg, input: Buffer): Promise<Buffer>;
};

const ktyOf = (alg: SigningAlg): 'RSA' | 'EC' => (alg === 'ES256' ? 'EC' : 'RSA');

async function publicEntry(key: KeyObject): Promise<PublicKey> {
  const jwk = key.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, jwk: { ...jwk, kid, use: 'sig' }, kty: jwk.kty as 'RSA' | 'EC' };
}

/** Local key file: generated on first use (RSA 2048 and P-256), kept across restarts in the data dir. */
function fileSource(file: string): KeySource {
  let loaded: Promise<{ rsa: KeyObject; ec: KeyObject }> | undefined;
  const load = () =>
    (loaded ??= (async () => {
      if (!existsSync(file)) {
        const rsa = await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
        const ec = await generateKeyPair('ES256', { extractable: true });
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(
          file,
          JSON.stringify({ keys: [await exportJWK(rsa.privateKey), await exportJWK(ec.privateKey)] }),
          { mode: 0o600 },
        );
      }
      const { keys } = JSON.parse(readFileSync(file, 'utf8')) as { keys: JWK[] };
      const find = (kty: string) => {
        const jwk = keys.find((k) => k.kty === kty);
        if (!jwk) throw new Error(`signing key file ${file} has no ${kty} key`);
        return createPrivateKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
      };
      return { rsa: find('RSA'), ec: find('EC') };
    })());
  return {
    async publicKeys() {
      const { rsa, ec } = await load();
      return Promise.all([publicEntry(createPublicKey(rsa)), publicEntry(createPublicKey(ec))]);
    },
    async sign(kty, alg, input) {
      const { rsa, ec } = await load();
      if (kty === 'EC') return cryptoSign('sha256', input, { key: ec, dsaEncoding: 'ieee-p1363' });
      if (alg === 'PS256')
        return cryptoSign('sha256', input, { key: rsa, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
      return cryptoSign('sha256', input, rsa);
    },
  };
}

const KMS_ALG: Record<SigningAlg, SigningAlgorithmSpec> = {
  RS256: 'RSASSA_PKCS1_V1_5_SHA_256',
  PS256: 'RSASSA_PSS_SHA_256',
  ES256: 'ECDSA_SHA_256',
};

/** KMS returns ECDSA signatures DER-encoded; JWS wants the fixed-size R||S form (RFC 7518 §3.4). */
export function derToJose(der: Uint8Array, size = 32): Buffer {
  const buf = Buffer.from(der);
  let offset = 2 + (buf[1]! & 0x80 ? buf[1]! & 0x7f : 0);
  const read = () => {
    if (buf[offset] !== 0x02) throw new Error('invalid DER signature');
    const len = buf[offset + 1]!;
    let int = buf.subarray(offset + 2, offset + 2 + len);
    offset += 2 + len;
    while (int.length > size && int[0] === 0) int = int.subarray(1);
    return Buffer.concat([Buffer.alloc(size - int.length), int]);
  };
  return Buffer.concat([read(), read()]);
}

function kmsSource(rsaKeyId: string, ecKeyId: string): KeySource {
  let loaded: Promise<PublicKey[]> | undefined;
  const keyId = (kty: 'RSA' | 'EC') => (kty === 'RSA' ? rsaKeyId : ecKeyId);
  return {
    publicKeys: () =>
      (loaded ??= Promise.all(
        [rsaKeyId, ecKeyId].map(async (KeyId) => {
          const { mod, client } = await kms();
          const out = await client.send(new mod.GetPublicKeyCommand({ KeyId }));
          return publicEntry(createPublicKey({ key: Buffer.from(out.PublicKey!), format: 'der', type: 'spki' }));
        }),
      ).catch((e) => {
        loaded = undefined;
        throw e;
      })),
    async sign(kty, alg, input) {
      const { mod, client } = await kms();
      const out = await client.send(
        new mod.SignCommand({
          KeyId: keyId(kty),
          Message: sha256(input),
          MessageType: 'DIGEST',
          SigningAlgorithm: KMS_ALG[alg],
        }),
      );
      return kty === 'EC' ? derToJose(out.Signature!) : Buffer.from(out.Signature!);
    },
  };
}

let source: KeySource | undefined;
function keys(): KeySource {
  const c = config().keys;
  source ??= c.source === 'file' ? fileSource(c.file) : kmsSource(c.rsaKeyId, c.ecKeyId);
  return source;
}

/** The public JWK Set (RFC 7517) published at the jwks endpoint. One RSA key serves RS256 and PS256. */
export async function jwks(): Promise<{ keys: JWK[] }> {
  return { keys: (await keys().publicKeys()).map((k) => k.jwk) };
}

let verificationKeys: JWTVerifyGetKey | undefined;
/** The server's own public keys as a jose key resolver (access tokens at userinfo, id_token_hint), loaded once. */
export async function ownKeys(): Promise<JWTVerifyGetKey> {
  verificationKeys ??= createLocalJWKSet(await jwks());
  return verificationKeys;
}

/** Sign `payload` as a compact JWS with `alg` and the optional `typ` header. */
export async function signJwt(payload: Record<string, unknown>, alg: SigningAlg, typ?: string): Promise<string> {
  const kty = ktyOf(alg);
  const key = (await keys().publicKeys()).find((k) => k.kty === kty)!;
  const header = { alg, kid: key.kid, ...(typ ? { typ } : {}) };
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  const signature = await keys().sign(kty, alg, Buffer.from(input));
  return `${input}.${signature.toString('base64url')}`;
}

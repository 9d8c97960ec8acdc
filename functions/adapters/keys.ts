// Signing keys. Three sources behind one interface: a jose key set in a file (local stack), AWS KMS asymmetric keys
// (the private key never leaves KMS), and key pairs sealed with the sealing key in the table (`sealed`: made by the
// first function that signs, unsealed once per process, then signing in memory). Tokens are compact JWS built here,
// so every source shares one path.
import {
  createPrivateKey,
  createPublicKey,
  sign as cryptoSign,
  constants,
  generateKeyPair as generateNodeKeyPair,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { GetPublicKeyCommand, SignCommand, type SigningAlgorithmSpec } from '@aws-sdk/client-kms';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import { kms } from './kms.ts';
import { SIGNING_KEYS_CONTEXT, seal, sealContext, unseal } from './sealer.ts';
import { db, isConditionFailure, table } from './store/table.ts';
import { config } from '../config.ts';
import { derToJose, sha256 } from '../core/crypto.ts';
import type { SigningAlg } from '../core/model.ts';

type PublicKey = { kid: string; jwk: JWK; kty: 'RSA' | 'EC' };
export type KeySource = {
  /**
   * The public keys. `forSigning`: the caller is about to sign, so a source that makes its keys on first use (sealed)
   * may make them now; without it such a source answers no keys until a signer has made them.
   */
  publicKeys(forSigning?: boolean): Promise<PublicKey[]>;
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
      return signInMemory(await load(), kty, alg, input);
    },
  };
}

/** A JWS signature with private keys held in this process. */
function signInMemory(keys: { rsa: KeyObject; ec: KeyObject }, kty: 'RSA' | 'EC', alg: SigningAlg, input: Buffer) {
  if (kty === 'EC') return cryptoSign('sha256', input, { key: keys.ec, dsaEncoding: 'ieee-p1363' });
  if (alg === 'PS256')
    return cryptoSign('sha256', input, { key: keys.rsa, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
  return cryptoSign('sha256', input, keys.rsa);
}

/** The one table item of the sealed signing keys (KEYS_SOURCE=sealed). */
export const SIGNING_KEYS_ITEM = { pk: 'SIGNINGKEYS', sk: 'KEYS' } as const;
/** What that item holds besides its key: the public JWKs in clear, the private JWKs sealed, when they were made. */
export type SigningKeysItem = { publicKeys: JWK[]; sealed: string; createdAt: string };

const generateKeyPairAsync = promisify(generateNodeKeyPair);

/**
 * Key pairs sealed with the sealing key (functions/adapters/sealer.ts, KMS encryption context SIGNING_KEYS_CONTEXT)
 * in one table item. The first signer makes them (RSA 2048 and P-256) and stores them with a conditional put; a
 * signer that loses that race adopts the winner's item, so every instance signs with the same keys. A signer unseals
 * them once (one KMS Decrypt on AWS) and signs in memory; functions that only verify read the public JWKs from the
 * item and never unseal anything. Each call is one function instance's view (the server uses one per process).
 */
export function sealedKeySource(): KeySource {
  const read = async (): Promise<SigningKeysItem | undefined> => {
    const out = await db().send(new GetCommand({ TableName: table(), Key: SIGNING_KEYS_ITEM, ConsistentRead: true }));
    return out.Item as SigningKeysItem | undefined;
  };
  const published = async (item: SigningKeysItem): Promise<PublicKey[]> => {
    const entries = await Promise.all(
      item.publicKeys.map((jwk) =>
        publicEntry(createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' })),
      ),
    );
    if (entries.length !== 2 || !entries.some((k) => k.kty === 'RSA') || !entries.some((k) => k.kty === 'EC'))
      throw new Error('the signing keys item must hold one RSA and one EC public key');
    return entries;
  };
  // Makes both key pairs and stores them unless a key item exists; returns the item stored now (ours or the first).
  const create = async (): Promise<SigningKeysItem> => {
    const [rsa, ec] = await Promise.all([
      generateKeyPairAsync('rsa', { modulusLength: 2048 }),
      generateKeyPairAsync('ec', { namedCurve: 'P-256' }),
    ]);
    const privateJwks = [rsa.privateKey, ec.privateKey].map((k) => k.export({ format: 'jwk' }));
    const item: SigningKeysItem = {
      publicKeys: (await Promise.all([publicEntry(rsa.publicKey), publicEntry(ec.publicKey)])).map((k) => k.jwk),
      sealed: await seal(JSON.stringify({ keys: privateJwks }), sealContext.signingKeys(), SIGNING_KEYS_CONTEXT),
      createdAt: new Date().toISOString(),
    };
    try {
      await db().send(
        new PutCommand({
          TableName: table(),
          Item: { ...SIGNING_KEYS_ITEM, ...item },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return item;
    } catch (e) {
      if (!isConditionFailure(e)) throw e;
      const first = await read();
      if (!first) throw new Error('the signing keys item vanished');
      return first;
    }
  };
  // Unseals the private keys and checks they are the published ones (a replaced public JWK would fail here).
  const open = async (item: SigningKeysItem) => {
    const { keys } = JSON.parse(await unseal(item.sealed, sealContext.signingKeys(), SIGNING_KEYS_CONTEXT)) as {
      keys: JWK[];
    };
    const find = (kty: string) => {
      const jwk = keys.find((k) => k.kty === kty);
      if (!jwk) throw new Error(`the sealed signing keys have no ${kty} key`);
      return createPrivateKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
    };
    const pair = { rsa: find('RSA'), ec: find('EC') };
    const own = await Promise.all([publicEntry(createPublicKey(pair.rsa)), publicEntry(createPublicKey(pair.ec))]);
    const listed = await published(item);
    if (own.length !== listed.length || own.some((k) => !listed.some((p) => p.kid === k.kid)))
      throw new Error('the sealed signing keys do not match the public keys stored beside them');
    return { ...pair, publicKeys: own };
  };
  let privateKeys: Promise<{ rsa: KeyObject; ec: KeyObject; publicKeys: PublicKey[] }> | undefined;
  const signingKeys = () =>
    (privateKeys ??= (async () => open((await read()) ?? (await create())))().catch((e) => {
      privateKeys = undefined;
      throw e;
    }));
  let publicOnly: Promise<PublicKey[]> | undefined;
  return {
    async publicKeys(forSigning) {
      if (forSigning || privateKeys) return (await signingKeys()).publicKeys;
      // Verifiers: the item's public JWKs, cached once they exist (no keys yet: none published, asked again next time).
      publicOnly ??= read().then((item) => (item ? published(item) : undefined)) as Promise<PublicKey[]>;
      const keys = await publicOnly.catch((e) => {
        publicOnly = undefined;
        throw e;
      });
      if (!keys) {
        publicOnly = undefined;
        return [];
      }
      return keys;
    },
    async sign(kty, alg, input) {
      return signInMemory(await signingKeys(), kty, alg, input);
    },
  };
}

const KMS_ALG: Record<SigningAlg, SigningAlgorithmSpec> = {
  RS256: 'RSASSA_PKCS1_V1_5_SHA_256',
  PS256: 'RSASSA_PSS_SHA_256',
  ES256: 'ECDSA_SHA_256',
};

function kmsSource(rsaKeyId: string, ecKeyId: string): KeySource {
  let loaded: Promise<PublicKey[]> | undefined;
  const keyId = (kty: 'RSA' | 'EC') => (kty === 'RSA' ? rsaKeyId : ecKeyId);
  return {
    publicKeys: () =>
      (loaded ??= Promise.all(
        [rsaKeyId, ecKeyId].map(async (KeyId) => {
          const out = await kms().send(new GetPublicKeyCommand({ KeyId }));
          return publicEntry(createPublicKey({ key: Buffer.from(out.PublicKey!), format: 'der', type: 'spki' }));
        }),
      ).catch((e) => {
        loaded = undefined;
        throw e;
      })),
    async sign(kty, alg, input) {
      const out = await kms().send(
        new SignCommand({
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
  source ??=
    c.source === 'file'
      ? fileSource(c.file)
      : c.source === 'sealed'
        ? sealedKeySource()
        : kmsSource(c.rsaKeyId, c.ecKeyId);
  return source;
}

/** The public JWK Set (RFC 7517) published at the jwks endpoint. One RSA key serves RS256 and PS256. */
export async function jwks(): Promise<{ keys: JWK[] }> {
  return { keys: (await keys().publicKeys()).map((k) => k.jwk) };
}

let verificationKeys: JWTVerifyGetKey | undefined;
/**
 * The server's own public keys as a jose key resolver (access tokens at userinfo, id_token_hint), loaded once they
 * exist (sealed keys are made by the first signer: before that there is nothing to cache).
 */
export async function ownKeys(): Promise<JWTVerifyGetKey> {
  if (verificationKeys) return verificationKeys;
  const set = await jwks();
  const resolver = createLocalJWKSet(set);
  if (set.keys.length > 0) verificationKeys = resolver;
  return resolver;
}

/** Sign `payload` as a compact JWS with `alg` and the optional `typ` header. */
export async function signJwt(payload: Record<string, unknown>, alg: SigningAlg, typ?: string): Promise<string> {
  const kty = ktyOf(alg);
  const key = (await keys().publicKeys(true)).find((k) => k.kty === kty)!;
  const header = { alg, kid: key.kid, ...(typ ? { typ } : {}) };
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  const signature = await keys().sign(kty, alg, Buffer.from(input));
  return `${input}.${signature.toString('base64url')}`;
}

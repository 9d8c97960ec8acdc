// Random identifiers and the hashes used at rest (secrets are stored hashed wherever we only compare them).
import { createHash, createHmac, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const scrypt = promisify(scryptCb) as (
  password: string,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number },
) => Promise<Buffer>;

/** `bytes` of CSPRNG output, base64url: 32 bytes = 256 bits, above CIBA §7.3's 160-bit recommendation. */
export function randomId(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export function sha256(value: string | Uint8Array): Buffer {
  return createHash('sha256').update(value).digest();
}

export function sha256b64u(value: string | Uint8Array): string {
  return sha256(value).toString('base64url');
}

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Client secrets are high-entropy, compared on every request: salted HMAC-SHA-256 (`v1$salt$mac`).
 * A slow KDF would cost tens of ms per request and add nothing against a 256-bit secret.
 */
export function hashClientSecret(secret: string, salt = randomId(16)): string {
  return `hs256$${salt}$${createHmac('sha256', salt).update(secret).digest('base64url')}`;
}

export function verifyClientSecret(secret: string, stored: string): boolean {
  const [scheme, salt, mac] = stored.split('$');
  if (scheme !== 'hs256' || !salt || !mac) return false;
  return safeEqual(createHmac('sha256', salt).update(secret).digest('base64url'), mac);
}

const USER_CODE_PARAMS = { N: 16384, r: 8, p: 1 };

/** User codes are low-entropy (often a PIN): scrypt with a salt, so a table dump does not reveal them cheaply. */
export async function hashUserCode(code: string, salt = randomId(16)): Promise<string> {
  const key = await scrypt(code.normalize('NFKC'), Buffer.from(salt), 32, USER_CODE_PARAMS);
  return `scrypt$${salt}$${key.toString('base64url')}`;
}

export async function verifyUserCode(code: string, stored: string): Promise<boolean> {
  const [scheme, salt, key] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !key) return false;
  const derived = await scrypt(code.normalize('NFKC'), Buffer.from(salt), 32, USER_CODE_PARAMS);
  return safeEqual(derived.toString('base64url'), key);
}

/** OIDC Core §3.3.2.11 at_hash / CIBA §10.3.1 rt_hash: left half of the hash matching the JWS alg. */
export function halfHash(value: string, alg: string): string {
  const bits = alg.endsWith('384') ? 384 : alg.endsWith('512') ? 512 : 256;
  const digest = createHash(`sha${bits}`).update(value).digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

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

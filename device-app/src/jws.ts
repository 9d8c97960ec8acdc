// Compact JWS (ES256) made with WebCrypto: device assertions and the enrolment proof (docs/device-api.md). WebCrypto's
// ECDSA signature is r‖s, 64 bytes, which is what JWS ES256 wants (RFC 7518 §3.4): no DER conversion.
import type { StoredDevice } from './keystore.ts';

export function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromBase64url(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

const encodeJson = (value: unknown) => base64url(new TextEncoder().encode(JSON.stringify(value)));

export async function signJws(privateKey: CryptoKey, claims: Record<string, unknown>): Promise<string> {
  const input = `${encodeJson({ alg: 'ES256', typ: 'JWT' })}.${encodeJson(claims)}`;
  const signature = await crypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' },
    privateKey,
    new TextEncoder().encode(input),
  );
  return `${input}.${base64url(new Uint8Array(signature))}`;
}

/** Seconds since the epoch on the server's clock (see ServerClock). */
export type Clock = () => number;

/** A single-use assertion for one call: bound to its method and URL (`htu`: the issuer's URL of the call, no query). */
export function deviceAssertion(device: StoredDevice, method: string, htu: string, now: Clock): Promise<string> {
  const iat = Math.floor(now());
  return signJws(device.privateKey, {
    iss: device.deviceId,
    aud: device.issuer,
    iat,
    exp: iat + 60,
    jti: crypto.randomUUID(),
    htm: method,
    htu,
  });
}

/** Proof that the new key is held here, for `POST /device/enrol`: signed by that key, bound to the code. */
export function enrolmentProof(privateKey: CryptoKey, issuer: string, code: string, now: Clock): Promise<string> {
  return signJws(privateKey, { aud: issuer, iat: Math.floor(now()), jti: crypto.randomUUID(), code });
}

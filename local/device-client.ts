// The authentication device's side of the device API (docs/device-api.md), as a small client: signs device assertions with
// the device's private key and lists / decides requests. Used by `npm run demo`, the tests and the benchmark.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { importJWK, SignJWT, type JWK } from 'jose';
import type { DeviceRequestView } from '../functions/core/model.ts';

/** One pending request as the device API lists it (docs/device-api.md). */
export type DeviceRequest = DeviceRequestView;

/** A new device key pair (ES256, P-256) as a private JWK. */
export function generateDeviceKey(): JWK {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }) as JWK;
}

/** The public JWK to register for a device (seed file `devices[].jwk`). */
export function publicDeviceJwk(jwk: JWK): JWK {
  return { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
}

export class DeviceClient {
  readonly issuer: string;
  readonly deviceId: string;
  readonly #privateJwk: JWK;

  constructor(issuer: string, deviceId: string, privateJwk: JWK) {
    this.issuer = issuer.replace(/\/+$/, '');
    this.deviceId = deviceId;
    this.#privateJwk = privateJwk;
  }

  /** A single-use assertion bound to the method and URL (without query) it will be sent with; `overrides` replace any claim. */
  async assertion(
    method: string,
    url: string,
    overrides: Record<string, unknown> = {},
    lifetime = 60,
  ): Promise<string> {
    const key = await importJWK(this.#privateJwk, 'ES256');
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: this.deviceId,
      aud: this.issuer,
      iat: now,
      exp: now + lifetime,
      jti: randomUUID(),
      htm: method,
      htu: url.split('?')[0],
      ...overrides,
    };
    return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'JWT' }).sign(key);
  }

  async list(): Promise<DeviceRequest[]> {
    const url = `${this.issuer}/device/requests`;
    const res = await fetch(url, { headers: { authorization: `Bearer ${await this.assertion('GET', url)}` } });
    if (res.status !== 200) throw new Error(`GET /device/requests answered ${res.status}: ${await res.text()}`);
    return ((await res.json()) as { requests: DeviceRequest[] }).requests;
  }

  /** Approve or deny; returns the HTTP status (204 on success, 404/409 per the contract). */
  async decide(id: string, decision: 'approve' | 'deny'): Promise<{ status: number; body: string }> {
    const url = `${this.issuer}/device/requests/${encodeURIComponent(id)}`;
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${await this.assertion('POST', url)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ decision }),
    });
    return { status: res.status, body: await res.text() };
  }

  /** Wait until a pending request matching `predicate` shows up (polling the device API). */
  async waitFor(predicate: (r: DeviceRequest) => boolean, timeoutMs = 10_000, everyMs = 100): Promise<DeviceRequest> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = (await this.list()).find(predicate);
      if (found) return found;
      if (Date.now() > deadline) throw new Error('no matching pending request on the device');
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}

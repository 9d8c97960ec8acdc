// The authentication device's side of the device API (docs/device-api.md), as a small client: signs device assertions with
// the device's private key, lists / decides requests, enrols new devices and manages the user's devices. Used by
// `npm run demo`, the tests and the benchmark.
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

/** One answer of the device API: status, parsed JSON body ({} when none) and the raw text. */
export type DeviceApiAnswer = { status: number; json: Record<string, unknown>; text: string; headers: Headers };

async function answer(res: Response): Promise<DeviceApiAnswer> {
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    /* no JSON body */
  }
  return { status: res.status, json, text, headers: res.headers };
}

/**
 * The proof of possession of `POST /device/enrol`: a JWS signed by the new device's private key with `aud` = issuer,
 * `iat` = now, a fresh `jti` and the enrolment `code`; `overrides` replace any claim (tests).
 */
export async function enrolmentProof(
  issuer: string,
  privateJwk: JWK,
  code: string,
  overrides: Record<string, unknown> = {},
): Promise<string> {
  const claims = {
    aud: issuer.replace(/\/+$/, ''),
    iat: Math.floor(Date.now() / 1000),
    jti: randomUUID(),
    code,
    ...overrides,
  };
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).sign(await importJWK(privateJwk, 'ES256'));
}

export type EnrolOptions = {
  /** The new device's private key (default: a new one). */
  key?: JWK;
  name?: string;
  channel?: unknown;
  /** Replace the proof (default: a valid one for `key` and the code), or the registered public key (tests). */
  proof?: string;
  jwk?: JWK;
};

/** Enrols a new device with a one-time code (`POST /device/enrol`); on 201, `device` is its client. */
export async function enrolDevice(
  issuer: string,
  code: string,
  options: EnrolOptions = {},
): Promise<DeviceApiAnswer & { device?: DeviceClient; key: JWK }> {
  const base = issuer.replace(/\/+$/, '');
  const key = options.key ?? generateDeviceKey();
  const body = {
    code,
    jwk: options.jwk ?? publicDeviceJwk(key),
    proof: options.proof ?? (await enrolmentProof(base, key, code)),
    ...(options.name !== undefined ? { name: options.name } : {}),
    ...(options.channel !== undefined ? { channel: options.channel } : {}),
  };
  const res = await answer(
    await fetch(`${base}/device/enrol`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }),
  );
  const deviceId = res.json.device_id;
  return {
    ...res,
    key,
    ...(res.status === 201 && typeof deviceId === 'string' ? { device: new DeviceClient(base, deviceId, key) } : {}),
  };
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

  /** One device API call with a fresh assertion; `body` is sent as JSON. */
  async call(method: string, path: string, body?: unknown): Promise<DeviceApiAnswer> {
    const url = `${this.issuer}${path}`;
    const res = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${await this.assertion(method, url)}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return answer(res);
  }

  /** `GET /device/requests/{id}`: one pending request (200), else 404. */
  request(id: string): Promise<DeviceApiAnswer> {
    return this.call('GET', `/device/requests/${encodeURIComponent(id)}`);
  }

  /** `POST /device/enrolment-codes`: a one-time code enrolling another device of this user (201). */
  enrolmentCode(): Promise<DeviceApiAnswer> {
    return this.call('POST', '/device/enrolment-codes', {});
  }

  /** `GET /device/devices`: this user's devices (200 {"devices": […]}). */
  devices(): Promise<DeviceApiAnswer> {
    return this.call('GET', '/device/devices');
  }

  /** `DELETE /device/devices/{id}`: removes one of this user's devices (204), this one included. */
  remove(deviceId: string): Promise<DeviceApiAnswer> {
    return this.call('DELETE', `/device/devices/${encodeURIComponent(deviceId)}`);
  }

  /** `PUT /device/channel`: how this device is reached (null: not at all) (204). */
  setChannel(channel: unknown): Promise<DeviceApiAnswer> {
    return this.call('PUT', '/device/channel', { channel });
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

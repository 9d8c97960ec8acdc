// The device API client (docs/device-api.md): every call carries a fresh device assertion. Calls go to the page's own
// origin (`base`, the URL of /device/), while the assertion's `htu` names the issuer's URL, as the contract says.
import { type Clock, deviceAssertion, enrolmentProof } from './jws.ts';
import type { StoredDevice } from './keystore.ts';
import type { Decision, DeviceRequest, EnrolledDevice, EnrolmentCode, WebPushChannel } from './types.ts';

/** An answer other than the expected one: the HTTP status and the OAuth-style `error`, when the body has one. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  readonly error: string | undefined;
  constructor(status: number, error: string | undefined, description: string | undefined) {
    super(description ?? error ?? `HTTP ${status}`);
    this.status = status;
    this.error = error;
  }
}

/**
 * The server's clock, learnt from the Date header of its answers: assertions must be within 30 s of it, and a phone's
 * clock can be further off than that. Only an offset of more than 10 s is applied (Date has a resolution of 1 s).
 */
export class ServerClock {
  #offsetMs = 0;
  readonly now: Clock = () => (Date.now() + this.#offsetMs) / 1000;
  /** Takes the server's time from an answer; true when that changed the clock used for assertions. */
  learn(response: Response): boolean {
    const date = Date.parse(response.headers.get('date') ?? '');
    if (!Number.isFinite(date)) return false;
    const offset = date - Date.now();
    const before = this.#offsetMs;
    this.#offsetMs = Math.abs(offset) > 10_000 ? offset : 0;
    return Math.abs(this.#offsetMs - before) > 10_000;
  }
}

async function failure(response: Response): Promise<ApiError> {
  let body: { error?: unknown; error_description?: unknown } = {};
  try {
    body = (await response.json()) as typeof body;
  } catch {
    // not JSON
  }
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return new ApiError(response.status, text(body.error), text(body.error_description));
}

export class DeviceApi {
  readonly #base: URL;
  readonly #issuer: string;
  readonly clock: ServerClock;
  #device: StoredDevice | undefined;

  /** `base`: the URL of the app's /device/ (the API lives under it); `issuer`: for `aud` and `htu`. */
  constructor(base: URL, issuer: string, clock = new ServerClock()) {
    this.#base = base;
    this.#issuer = issuer.replace(/\/+$/, '');
    this.clock = clock;
  }

  set device(device: StoredDevice | undefined) {
    this.#device = device;
  }

  get device(): StoredDevice | undefined {
    return this.#device;
  }

  async #call(method: string, path: string, body?: unknown, retried = false): Promise<Response> {
    const device = this.#device;
    if (!device) throw new ApiError(401, 'not_enrolled', 'this browser is not enrolled');
    const url = new URL(path, this.#base);
    const htu = `${this.#issuer}/device/${path}`;
    const headers: Record<string, string> = {
      authorization: `Bearer ${await deviceAssertion(device, method, htu, this.clock.now)}`,
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(url, {
      method,
      headers,
      cache: 'no-store',
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    // Once more after learning the server's clock: an assertion refused for its iat/exp on a phone whose clock is off.
    if (this.clock.learn(response) && response.status === 401 && !retried) {
      await response.body?.cancel();
      return this.#call(method, path, body, true);
    }
    return response;
  }

  async #json<T>(method: string, path: string, expected: number, body?: unknown): Promise<T> {
    const response = await this.#call(method, path, body);
    if (response.status !== expected) throw await failure(response);
    return (await response.json()) as T;
  }

  async #empty(method: string, path: string, body?: unknown): Promise<void> {
    const response = await this.#call(method, path, body);
    if (response.status !== 204) throw await failure(response);
  }

  async requests(): Promise<DeviceRequest[]> {
    return (await this.#json<{ requests: DeviceRequest[] }>('GET', 'requests', 200)).requests;
  }

  /** One request, or undefined when it is not (or no longer) pending for this user. */
  async request(id: string): Promise<DeviceRequest | undefined> {
    try {
      return await this.#json<DeviceRequest>('GET', `requests/${encodeURIComponent(id)}`, 200);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return undefined;
      throw e;
    }
  }

  decide(id: string, decision: Decision): Promise<void> {
    return this.#empty('POST', `requests/${encodeURIComponent(id)}`, decision);
  }

  enrolmentCode(): Promise<EnrolmentCode> {
    return this.#json<EnrolmentCode>('POST', 'enrolment-codes', 201, {});
  }

  async devices(): Promise<EnrolledDevice[]> {
    return (await this.#json<{ devices: EnrolledDevice[] }>('GET', 'devices', 200)).devices;
  }

  removeDevice(id: string): Promise<void> {
    return this.#empty('DELETE', `devices/${encodeURIComponent(id)}`);
  }

  async vapidPublicKey(): Promise<string | undefined> {
    const config = await this.#json<{ vapid_public_key?: unknown }>('GET', 'config', 200);
    return typeof config.vapid_public_key === 'string' ? config.vapid_public_key : undefined;
  }

  setChannel(channel: WebPushChannel | null): Promise<void> {
    return this.#empty('PUT', 'channel', { channel });
  }

  /** `POST /device/enrol`: registers `publicJwk` with a one-time code and a proof made with its private key. */
  async enrol(
    code: string,
    key: { privateKey: CryptoKey; publicJwk: JsonWebKey },
    name: string,
    retried = false,
  ): Promise<{ device_id: string }> {
    const proof = await enrolmentProof(key.privateKey, this.#issuer, code, this.clock.now);
    const response = await fetch(new URL('enrol', this.#base), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      cache: 'no-store',
      body: JSON.stringify({ code, jwk: key.publicJwk, name, proof }),
    });
    // A proof refused for its iat on a phone whose clock is off: once more on the server's clock.
    if (this.clock.learn(response) && response.status === 400 && !retried) {
      await response.body?.cancel();
      return this.enrol(code, key, name, true);
    }
    if (response.status !== 201) throw await failure(response);
    return (await response.json()) as { device_id: string };
  }
}

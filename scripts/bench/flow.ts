// One complete CIBA poll flow as `npm run bench` drives it: the RP (raw fetch, client_secret_basic) posts
// /bc-authorize; the user's device (DeviceClient: real ES256 device assertions) waits for the request to appear in
// GET /device/requests and decides; meanwhile the RP polls /token as soon as the interval allows, until it gets an
// answer other than authorization_pending. Every HTTP call is timed from the client side.
import type { JWK } from 'jose';
import { DeviceClient, generateDeviceKey, publicDeviceJwk } from '../../local/device-client.ts';
import { CIBA_GRANT } from '../../functions/core/model.ts';
import { encodeBasic } from '../../functions/core/client-auth.ts';

export { CIBA_GRANT };

export const BENCH_CLIENT_ID = 'bench-rp';
export const BENCH_CLIENT_SECRET = 'bench-rp-secret-0123456789abcdefghij';

export type BenchUser = { sub: string; deviceId: string; privateJwk: JWK };

/**
 * The server configuration every bench stack runs with: a 1 s poll interval, warn-level logs, and the abuse limits
 * on backchannel requests (functions/core/rate-limit.ts, per client and per user) lifted, since the bench sends far
 * more requests per client and user than any real RP would.
 */
export const BENCH_SERVER_ENV: Record<string, string> = {
  CIBA_POLL_INTERVAL: '1',
  LOG_LEVEL: 'warn',
  CIBA_RATE_LIMIT_USER: '9999999/1',
  // The load sections leave thousands of requests pending per user: no cap on pending prompts.
  CIBA_MAX_PENDING_PER_USER: '0',
};

/** The ping and push clients (scripts/bench/notify.ts), each notified at its own path of a loopback receiver. */
export const NOTIFY_CLIENTS = {
  ping: 'bench-ping',
  push: 'bench-push',
  /** A ping client whose endpoint the bench scripts to answer 503 first (one retried delivery). */
  retry: 'bench-ping-retry',
} as const;

/**
 * A seed (docs/seed-file.md format) with one poll client and `count` users, each with a device key of its own; with
 * `notificationUrl`, also the ping and push clients of NOTIFY_CLIENTS, notified at notificationUrl(`/<client_id>`).
 */
export function benchSeed(
  count: number,
  notificationUrl?: (path: string) => string,
): { seed: unknown; users: BenchUser[] } {
  const users: BenchUser[] = [];
  for (let i = 0; i < count; i++) {
    const privateJwk = generateDeviceKey();
    const n = String(i).padStart(3, '0');
    users.push({ sub: `bench-user-${n}`, deviceId: `bench-device-${n}`, privateJwk });
  }
  const seed = {
    clients: [
      {
        client_id: BENCH_CLIENT_ID,
        client_secret: BENCH_CLIENT_SECRET,
        client_name: 'Bench RP',
        token_endpoint_auth_method: 'client_secret_basic',
        // With refresh_token, as a typical RP: the redemption also hands out (and records) a refresh token.
        grant_types: [CIBA_GRANT, 'refresh_token'],
        scope: 'openid profile email',
        backchannel_token_delivery_mode: 'poll',
        id_token_signed_response_alg: 'RS256',
      },
      ...(notificationUrl
        ? Object.values(NOTIFY_CLIENTS).map((clientId) => ({
            client_id: clientId,
            client_secret: BENCH_CLIENT_SECRET,
            client_name: `Bench ${clientId}`,
            token_endpoint_auth_method: 'client_secret_basic',
            grant_types: [CIBA_GRANT, 'refresh_token'],
            scope: 'openid profile email',
            backchannel_token_delivery_mode: clientId === NOTIFY_CLIENTS.push ? 'push' : 'ping',
            backchannel_client_notification_endpoint: notificationUrl(`/${clientId}`),
            id_token_signed_response_alg: 'RS256',
          }))
        : []),
    ],
    users: users.map((u) => ({
      sub: u.sub,
      email: `${u.sub}@bench.example`,
      email_verified: true,
      name: `Bench User ${u.sub.slice(-3)}`,
      devices: [{ device_id: u.deviceId, jwk: publicDeviceJwk(u.privateJwk) }],
    })),
  };
  return { seed, users };
}

export type Kind =
  | 'bc-authorize'
  | 'token-pending'
  | 'token-redeem'
  | 'token-final-error'
  | 'device-list'
  | 'device-decide';

export type FlowOutcome = {
  ok: boolean;
  error?: string;
  /** Client-side latency (ms) of every call, by kind. */
  timings: { kind: Kind; ms: number }[];
  flowMs: number;
  slowDowns: number;
  /** Final token endpoint answer: 'tokens' or the OAuth error code. */
  result: string;
  authReqId?: string;
  expiresIn?: number;
};

export type FlowOptions = {
  issuer: string;
  user: BenchUser;
  device: DeviceClient;
  bindingMessage: string;
  decision?: 'approve' | 'deny' | 'none';
  requestedExpiry?: number;
  /** Give up after this long (ms). */
  timeoutMs?: number;
  /** How often the device lists while its request has not appeared yet (ms). */
  deviceRetryMs?: number;
  /** With decision 'none': stop after this many pending polls (default 1). */
  pendingPolls?: number;
};

const AUTH = encodeBasic(BENCH_CLIENT_ID, BENCH_CLIENT_SECRET);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A form POST's answer: the HTTP status and the JSON body. */
export type FormAnswer = { status: number; json: Record<string, unknown> };

/** A form POST as a client (client_secret_basic; default the poll client); the answer's JSON, or an error field. */
export async function postForm(url: string, params: Record<string, string>, authorization = AUTH): Promise<FormAnswer> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params).toString(),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { error: `non-JSON answer (HTTP ${res.status})` };
  }
  return { status: res.status, json };
}

export function deviceFor(issuer: string, user: BenchUser): DeviceClient {
  return new DeviceClient(issuer, user.deviceId, user.privateJwk);
}

/**
 * Run one flow. The RP's first poll goes out right after the acknowledgement (bc-authorize sets next_poll_at to
 * the creation time, so it is allowed), each later one `interval` seconds after the previous answer arrived, which
 * the server's check (next_poll_at ≤ now + 250 ms) always accepts: no slow_down.
 */
export async function runFlow(o: FlowOptions): Promise<FlowOutcome> {
  const timings: FlowOutcome['timings'] = [];
  const timed = async <T>(kind: Kind, fn: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    const out = await fn();
    timings.push({ kind, ms: performance.now() - t });
    return out;
  };
  const t0 = performance.now();
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  const decision = o.decision ?? 'approve';
  let slowDowns = 0;
  const fail = (error: string): FlowOutcome => ({
    ok: false,
    error,
    timings,
    flowMs: performance.now() - t0,
    slowDowns,
    result: 'error',
  });

  const params: Record<string, string> = {
    scope: 'openid profile email',
    login_hint: o.user.sub,
    binding_message: o.bindingMessage,
  };
  if (o.requestedExpiry !== undefined) params.requested_expiry = String(o.requestedExpiry);
  let ack: FormAnswer;
  try {
    ack = await timed('bc-authorize', () => postForm(`${o.issuer}/bc-authorize`, params));
  } catch (err) {
    return fail(`bc-authorize: ${(err as Error).message}`);
  }
  if (ack.status !== 200 || typeof ack.json.auth_req_id !== 'string')
    return fail(`bc-authorize answered ${ack.status} ${JSON.stringify(ack.json)}`);
  const authReqId = ack.json.auth_req_id;
  let intervalMs = Number(ack.json.interval ?? 5) * 1000;
  const expiresIn = Number(ack.json.expires_in);

  // The device side, concurrently with the RP's polling.
  const deviceSide = (async (): Promise<string | undefined> => {
    if (decision === 'none') return undefined;
    for (;;) {
      const list = await timed('device-list', () => o.device.list());
      const found = list.find((r) => r.binding_message === o.bindingMessage);
      if (found) {
        const res = await timed('device-decide', () => o.device.decide(found.id, decision));
        return res.status === 204 ? undefined : `device decide answered ${res.status} ${res.body}`;
      }
      if (Date.now() > deadline) return 'the request never appeared on the device';
      await sleep(o.deviceRetryMs ?? 20);
    }
  })().catch((err: unknown) => `device: ${(err as Error).message}`);

  let result = 'error';
  let rpError: string | undefined;
  let pending = 0;
  for (;;) {
    const sent = performance.now();
    let res: { status: number; json: Record<string, unknown> };
    try {
      res = await postForm(`${o.issuer}/token`, { grant_type: CIBA_GRANT, auth_req_id: authReqId });
    } catch (err) {
      rpError = `token: ${(err as Error).message}`;
      break;
    }
    const received = performance.now();
    if (res.status === 200 && typeof res.json.access_token === 'string') {
      timings.push({ kind: 'token-redeem', ms: received - sent });
      result = 'tokens';
      break;
    }
    const code = String(res.json.error ?? `HTTP ${res.status}`);
    if (code !== 'authorization_pending' && code !== 'slow_down') {
      timings.push({ kind: 'token-final-error', ms: received - sent });
      result = code;
      break;
    }
    timings.push({ kind: 'token-pending', ms: received - sent });
    if (code === 'slow_down') {
      slowDowns++;
      intervalMs += 5000; // CIBA §11: for this and all later polls
    }
    pending++;
    if (decision === 'none' && pending >= (o.pendingPolls ?? 1)) {
      result = code;
      break;
    }
    if (Date.now() > deadline) {
      rpError = 'timed out while polling';
      break;
    }
    // `interval` seconds after the answer arrived.
    await sleep(intervalMs);
  }
  const deviceError = await deviceSide;
  const ok =
    !rpError &&
    !deviceError &&
    (decision === 'approve' ? result === 'tokens' : decision === 'deny' ? result === 'access_denied' : true);
  return {
    ok,
    ...(rpError || deviceError || !ok ? { error: rpError ?? deviceError ?? `unexpected token answer: ${result}` } : {}),
    timings,
    flowMs: performance.now() - t0,
    slowDowns,
    result,
    authReqId,
    expiresIn,
  };
}

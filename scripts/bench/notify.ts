// Ping and push flows for `npm run bench` (CIBA Core §10.2, §10.3): a loopback notification receiver in the bench
// process, one notified flow (bc-authorize with a client_notification_token → the device approves or denies → the
// notification arrives → a ping client redeems), and closed-loop levels of them for the approval-to-notification
// latency. Both ends of that latency are read from this process's performance.now(): the approve POST being sent
// (after its device assertion is signed) and the notification's body fully received.
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { listen, type Listening } from '../../local/http-server.ts';
import { encodeBasic } from '../../functions/core/client-auth.ts';
import {
  BENCH_CLIENT_SECRET,
  CIBA_GRANT,
  NOTIFY_CLIENTS,
  deviceFor,
  postForm,
  sleep,
  type BenchUser,
  type FormAnswer,
} from './flow.ts';
import type { DeviceClient } from '../../local/device-client.ts';
import { processCpuSeconds } from './child.ts';

export type NotifyMode = 'ping' | 'push';

export type Arrival = {
  /** performance.now() when the body had been received. */
  at: number;
  path: string;
  authorization: string | undefined;
  json: Record<string, unknown>;
};

/**
 * The clients' notification endpoint on 127.0.0.1: answers 204 (or what `respond` scripts per path) and hands each
 * accepted (2xx) notification to whoever expects its auth_req_id. Arrivals nobody expects yet are kept until they are.
 */
export class BenchReceiver {
  readonly #unclaimed = new Map<string, Arrival>();
  readonly #waiting = new Map<string, (a: Arrival) => void>();
  readonly #counts = new Map<string, number>();
  readonly #responders = new Map<string, (n: number) => number>();
  #listening: Listening | undefined;

  static async start(): Promise<BenchReceiver> {
    const r = new BenchReceiver();
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const at = performance.now();
        const path = (req.url ?? '/').split('?')[0]!;
        const n = r.#counts.get(path) ?? 0;
        r.#counts.set(path, n + 1);
        const status = r.#responders.get(path)?.(n) ?? 204;
        res.writeHead(status, { 'content-length': '0' }).end();
        if (status < 200 || status > 299) return;
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        } catch {
          /* not JSON: nobody expects it */
        }
        const id = json.auth_req_id;
        if (typeof id !== 'string') return;
        const arrival: Arrival = { at, path, authorization: req.headers.authorization, json };
        const waiter = r.#waiting.get(id);
        if (waiter) waiter(arrival);
        else r.#unclaimed.set(id, arrival);
      });
    });
    r.#listening = await listen(server, '127.0.0.1', 0, true);
    return r;
  }

  url(path: string): string {
    return `${this.#listening!.url}${path}`;
  }

  /** How `path` answers its n-th (0-based) request from now on (default 204). */
  respond(path: string, status: (n: number) => number): void {
    this.#responders.set(path, status);
  }

  /** Requests received on `path` so far (any status). */
  count(path: string): number {
    return this.#counts.get(path) ?? 0;
  }

  /** The accepted notification for `authReqId`; call before the decision so none can be missed. */
  expect(authReqId: string, timeoutMs: number): Promise<Arrival> {
    const early = this.#unclaimed.get(authReqId);
    if (early) {
      this.#unclaimed.delete(authReqId);
      return Promise.resolve(early);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(authReqId);
        reject(new Error(`no notification within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(authReqId, (a) => {
        clearTimeout(timer);
        this.#waiting.delete(authReqId);
        resolve(a);
      });
    });
  }

  close(): Promise<void> {
    return this.#listening?.close() ?? Promise.resolve();
  }
}

export type NotifiedOutcome = {
  ok: boolean;
  error?: string;
  authReqId?: string;
  /** Approve/deny POST sent → notification received (ms); absent without a decision. */
  decisionToNotificationMs?: number;
  /** Approve POST sent → the client holds tokens: the push itself, or the ping plus the redemption. */
  decisionToTokensMs?: number;
  decideMs?: number;
  redeemMs?: number;
  /** The notification's JSON body. */
  body?: Record<string, unknown>;
};

export type NotifiedFlowOptions = {
  issuer: string;
  mode: NotifyMode;
  /** Default NOTIFY_CLIENTS[mode]. */
  clientId?: string;
  user: BenchUser;
  device: DeviceClient;
  receiver: BenchReceiver;
  bindingMessage: string;
  decision?: 'approve' | 'deny' | 'none';
  requestedExpiry?: number;
  timeoutMs?: number;
};

/** One ping or push flow; checks what arrives (bearer token, body shape) and, for ping approvals, redeems it. */
export async function runNotifiedFlow(o: NotifiedFlowOptions): Promise<NotifiedOutcome> {
  const clientId = o.clientId ?? NOTIFY_CLIENTS[o.mode];
  const auth = encodeBasic(clientId, BENCH_CLIENT_SECRET);
  const decision = o.decision ?? 'approve';
  const timeoutMs = o.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  const token = randomBytes(18).toString('base64url');
  const fail = (error: string, rest: Partial<NotifiedOutcome> = {}): NotifiedOutcome => ({ ok: false, error, ...rest });

  const params: Record<string, string> = {
    scope: 'openid profile email',
    login_hint: o.user.sub,
    binding_message: o.bindingMessage,
    client_notification_token: token,
  };
  if (o.requestedExpiry !== undefined) params.requested_expiry = String(o.requestedExpiry);
  let ack: FormAnswer;
  try {
    ack = await postForm(`${o.issuer}/bc-authorize`, params, auth);
  } catch (err) {
    return fail(`bc-authorize: ${(err as Error).message}`);
  }
  if (ack.status !== 200 || typeof ack.json.auth_req_id !== 'string')
    return fail(`bc-authorize answered ${ack.status} ${JSON.stringify(ack.json)}`);
  const authReqId = ack.json.auth_req_id;
  const arrival = o.receiver.expect(authReqId, timeoutMs + (o.requestedExpiry ?? 0) * 1000);
  arrival.catch(() => undefined);

  let sent: number | undefined;
  let decideMs: number | undefined;
  if (decision !== 'none') {
    try {
      for (;;) {
        const found = (await o.device.list()).find((r) => r.binding_message === o.bindingMessage);
        if (found) {
          const url = `${o.issuer}/device/requests/${encodeURIComponent(found.id)}`;
          const assertion = await o.device.assertion('POST', url);
          sent = performance.now();
          const res = await fetch(url, {
            method: 'POST',
            headers: { authorization: `Bearer ${assertion}`, 'content-type': 'application/json' },
            body: JSON.stringify({ decision }),
          });
          decideMs = performance.now() - sent;
          const text = await res.text();
          if (res.status !== 204) return fail(`device decide answered ${res.status} ${text}`, { authReqId });
          break;
        }
        if (Date.now() > deadline) return fail('the request never appeared on the device', { authReqId });
        await sleep(20);
      }
    } catch (err) {
      return fail(`device: ${(err as Error).message}`, { authReqId });
    }
  }

  let got: Arrival;
  try {
    got = await arrival;
  } catch (err) {
    return fail((err as Error).message, { authReqId });
  }
  const timing = sent === undefined ? {} : { decisionToNotificationMs: got.at - sent };
  const base = { authReqId, body: got.json, ...timing, ...(decideMs !== undefined ? { decideMs } : {}) };
  if (got.authorization !== `Bearer ${token}`)
    return fail('the notification did not carry the client_notification_token', base);
  const keys = Object.keys(got.json).sort().join(',');
  if (o.mode === 'ping' && keys !== 'auth_req_id') return fail(`ping body has ${keys}`, base);
  const expectedError = decision === 'approve' ? undefined : decision === 'deny' ? 'access_denied' : 'expired_token';
  if (o.mode === 'push') {
    if (expectedError ? got.json.error !== expectedError : typeof got.json.access_token !== 'string')
      return fail(`push body has ${keys}`, base);
    return {
      ok: true,
      ...base,
      ...(sent !== undefined && !expectedError ? { decisionToTokensMs: got.at - sent } : {}),
    };
  }
  // Ping: the client now asks the token endpoint.
  const t = performance.now();
  let res: FormAnswer;
  try {
    res = await postForm(`${o.issuer}/token`, { grant_type: CIBA_GRANT, auth_req_id: authReqId }, auth);
  } catch (err) {
    return fail(`token: ${(err as Error).message}`, base);
  }
  const done = performance.now();
  const answer =
    res.status === 200 && typeof res.json.access_token === 'string' ? 'tokens' : String(res.json.error ?? res.status);
  if (answer !== (expectedError ?? 'tokens')) return fail(`the token endpoint answered ${answer} after the ping`, base);
  return {
    ok: true,
    ...base,
    redeemMs: done - t,
    ...(sent !== undefined && !expectedError ? { decisionToTokensMs: done - sent } : {}),
  };
}

export type NotifyLevelResult = {
  mode: NotifyMode;
  concurrency: number;
  target: number;
  completed: number;
  failed: number;
  errors: string[];
  capped: boolean;
  wallS: number;
  /** Per completed flow (ms). */
  approveToNotification: number[];
  approveToTokens: number[];
  deviceDecide: number[];
  redeem: number[];
  /** The server child's CPU seconds during the measured flows (undefined without a server pid). */
  serverCpuS?: number;
};

/**
 * `flows` approve flows of one mode in a closed loop at `concurrency` (worker i plays user i), after `warmup`
 * unmeasured ones; stops at the time cap.
 */
export async function runNotifyLevel(opts: {
  issuer: string;
  mode: NotifyMode;
  users: BenchUser[];
  receiver: BenchReceiver;
  concurrency: number;
  flows: number;
  warmup: number;
  timeCapMs: number;
  /** The server child, for its CPU during the measured flows. */
  serverPid?: number;
}): Promise<NotifyLevelResult> {
  if (opts.users.length < opts.concurrency)
    throw new Error(`need ${opts.concurrency} users, the seed has ${opts.users.length}`);
  const devices = opts.users.slice(0, opts.concurrency).map((user) => ({ user, device: deviceFor(opts.issuer, user) }));
  const result: NotifyLevelResult = {
    mode: opts.mode,
    concurrency: opts.concurrency,
    target: opts.flows,
    completed: 0,
    failed: 0,
    errors: [],
    capped: false,
    wallS: 0,
    approveToNotification: [],
    approveToTokens: [],
    deviceDecide: [],
    redeem: [],
  };
  const run = async (
    flows: number,
    label: string,
    deadline: number,
    onFlow: (o: NotifiedOutcome) => void,
  ): Promise<boolean> => {
    let next = 0;
    let capped = false;
    await Promise.all(
      devices.map(async ({ user, device }) => {
        for (;;) {
          if (next >= flows) return;
          if (Date.now() > deadline) {
            capped = true;
            return;
          }
          const i = next++;
          onFlow(
            await runNotifiedFlow({
              issuer: opts.issuer,
              mode: opts.mode,
              user,
              device,
              receiver: opts.receiver,
              bindingMessage: `${label}-${opts.mode}-${opts.concurrency}-${i}`,
            }),
          );
        }
      }),
    );
    return capped;
  };
  const started = Date.now();
  let warmFailed = 0;
  let warmError: string | undefined;
  await run(opts.warmup, 'NWARM', started + Math.min(20_000, opts.timeCapMs / 3), (o) => {
    if (o.ok) return;
    warmFailed++;
    warmError ??= o.error;
  });
  if (opts.warmup > 0 && warmFailed >= opts.warmup)
    throw new Error(`every ${opts.mode} warm-up flow failed at c=${opts.concurrency}: ${warmError}`);
  const cpu0 = opts.serverPid === undefined ? 0 : processCpuSeconds(opts.serverPid);
  const t0 = performance.now();
  result.capped = await run(opts.flows, 'NRUN', started + opts.timeCapMs, (o) => {
    if (!o.ok) {
      result.failed++;
      if (result.errors.length < 5) result.errors.push(o.error ?? 'unknown');
      return;
    }
    result.completed++;
    if (o.decisionToNotificationMs !== undefined) result.approveToNotification.push(o.decisionToNotificationMs);
    if (o.decisionToTokensMs !== undefined) result.approveToTokens.push(o.decisionToTokensMs);
    if (o.decideMs !== undefined) result.deviceDecide.push(o.decideMs);
    if (o.redeemMs !== undefined) result.redeem.push(o.redeemMs);
  });
  result.wallS = (performance.now() - t0) / 1000;
  if (opts.serverPid !== undefined) result.serverCpuS = processCpuSeconds(opts.serverPid) - cpu0;
  return result;
}

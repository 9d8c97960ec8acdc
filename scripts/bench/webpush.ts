// `npm run bench` section 8: user notifications. (a) The latency from a backchannel request being accepted to its Web
// Push arriving at a loopback push service (local/web-push-receiver.ts, in this process), with closed-loop workers, each
// playing a user whose one device has a Web Push subscription there; each flow then ends with the device denying, so
// no execution waits. Both ends are read from this process's performance.now(): the bc-authorize answer received, and
// the push body received. (b) The AWS calls the dispatch-notifications function adds per flow, measured in a child
// process (./notify-calls.ts) with its own in-process stack and notification settings.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { generateDeviceKey, publicDeviceJwk } from '../../local/device-client.ts';
import type { ArrivedPush, WebPushReceiver } from '../../local/web-push-receiver.ts';
import { deviceFor, postForm, type BenchUser } from './flow.ts';
import { trackCleanup } from './child.ts';
import type { NotifyCallsRow } from './notify-calls.ts';

/** `count` users (`bench-push-user-NNN`) whose one device is subscribed at `receiver`, as seed-file users. */
export function webPushUsers(count: number, receiver: WebPushReceiver): { seedUsers: unknown[]; users: BenchUser[] } {
  const users: BenchUser[] = [];
  const seedUsers: unknown[] = [];
  for (let i = 0; i < count; i++) {
    const n = String(i).padStart(3, '0');
    const user: BenchUser = {
      sub: `bench-push-user-${n}`,
      deviceId: `bench-push-device-${n}`,
      privateJwk: generateDeviceKey(),
    };
    users.push(user);
    seedUsers.push({
      sub: user.sub,
      devices: [
        {
          device_id: user.deviceId,
          jwk: publicDeviceJwk(user.privateJwk),
          channel: { type: 'webpush', subscription: receiver.subscribe(user.deviceId) },
        },
      ],
    });
  }
  return { seedUsers, users };
}

export type WebPushLevelResult = {
  concurrency: number;
  completed: number;
  failed: number;
  errors: string[];
  wallS: number;
  /** bc-authorize answer received → push received, ms. */
  acceptedToPush: number[];
  /** bc-authorize sent → push received, ms. */
  sentToPush: number[];
};

/** Closed loop: `concurrency` workers, worker w plays users[w]; `warmup` flows first, not measured. */
export async function runWebPushLevel(opts: {
  issuer: string;
  users: BenchUser[];
  receiver: WebPushReceiver;
  authorization: string;
  concurrency: number;
  flows: number;
  warmup: number;
  timeCapMs: number;
}): Promise<WebPushLevelResult> {
  const waiting = new Map<string, (push: ArrivedPush) => void>();
  const early = new Map<string, ArrivedPush>();
  const stop = opts.receiver.onPush((push) => {
    const id = typeof push.json?.request_id === 'string' ? push.json.request_id : undefined;
    if (!id) return;
    const resolve = waiting.get(id);
    if (resolve) resolve(push);
    else early.set(id, push);
  });
  const untrack = trackCleanup(async () => stop());
  const result: WebPushLevelResult = {
    concurrency: opts.concurrency,
    completed: 0,
    failed: 0,
    errors: [],
    wallS: 0,
    acceptedToPush: [],
    sentToPush: [],
  };
  const one = async (user: BenchUser, measured: boolean, i: number): Promise<void> => {
    const sent = performance.now();
    const ack = await postForm(
      `${opts.issuer}/bc-authorize`,
      { scope: 'openid', login_hint: user.sub, binding_message: `BENCH-PUSH-${i}` },
      opts.authorization,
    );
    const accepted = performance.now();
    if (ack.status !== 200) throw new Error(`bc-authorize answered ${ack.status}: ${JSON.stringify(ack.json)}`);
    const id = sha256b64u(String(ack.json.auth_req_id));
    const push =
      early.get(id) ??
      (await new Promise<ArrivedPush>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no Web Push within 10 s')), 10_000);
        waiting.set(id, (p) => {
          clearTimeout(timer);
          resolve(p);
        });
      }));
    early.delete(id);
    waiting.delete(id);
    if (push.error) throw new Error(`the push did not decrypt: ${push.error}`);
    if (measured) {
      result.acceptedToPush.push(push.at - accepted);
      result.sentToPush.push(push.at - sent);
    }
    const decided = await deviceFor(opts.issuer, user).decide(id, 'deny');
    if (decided.status !== 204) throw new Error(`deny answered ${decided.status}`);
  };
  const run = async (flows: number, measured: boolean, deadline: number) => {
    let next = 0;
    await Promise.all(
      opts.users.slice(0, opts.concurrency).map(async (user) => {
        while (next < flows && Date.now() < deadline) {
          const i = next++;
          try {
            await one(user, measured, i);
            if (measured) result.completed++;
          } catch (e) {
            if (!measured) continue;
            result.failed++;
            if (result.errors.length < 5) result.errors.push(e instanceof Error ? e.message : String(e));
          }
        }
      }),
    );
  };
  try {
    await run(opts.warmup, false, Date.now() + opts.timeCapMs);
    const began = performance.now();
    await run(opts.flows, true, Date.now() + opts.timeCapMs);
    result.wallS = (performance.now() - began) / 1000;
    return result;
  } finally {
    stop();
    untrack();
  }
}

/**
 * The AWS calls dispatch-notifications makes per flow in each scenario (./notify-calls.ts in a child process: its
 * own in-process stack, so the notification settings do not touch the other sections).
 */
export async function notifyCalls(projectDir: string, webhook: boolean): Promise<NotifyCallsRow[]> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['scripts/bench/notify-calls.ts', ...(webhook ? ['--webhook'] : [])],
    { cwd: projectDir, env: { ...process.env, NODE_OPTIONS: '' }, timeout: 120_000, maxBuffer: 4 * 1024 * 1024 },
  );
  const line = stdout.split('\n').find((l) => l.startsWith('{"rows":'));
  if (!line) throw new Error(`notify-calls printed no result:\n${stdout.slice(-2000)}`);
  return (JSON.parse(line) as { rows: NotifyCallsRow[] }).rows;
}

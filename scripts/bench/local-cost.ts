// `npm run bench` section 12: what the local stack itself costs per backchannel request, and how that changes with
// the number of pending requests. One server child (`local/start.ts` with an on-disk data dir, as `npm start`, run
// through this file so it can answer memory questions over IPC), seeded with `users` users (one device each);
// requests are never decided (CIBA_MAX_PENDING_PER_USER=0, a one-hour expiry), so they pile up as pending.
//   (a) server CPU per POST /bc-authorize (client_secret_basic): utime+stime of the child over `requests` requests
//       at c=`concurrency`, until the child is idle again (so the workflow, notify-device and the dispatcher's work
//       for each request is counted), minus the idle rate; at each pending level (default 0, 1,000, 10,000);
//   (b) heap per pending request: heapUsed after a full GC (the child runs with --expose-gc and answers an IPC
//       message; no endpoint in the product), (heap at the last level − heap at the first) / requests added;
//   (c) at the last level: p50/p99 of POST /token (authorization_pending polls, each of a different request, once)
//       and of GET /device/requests (users with ~pending/users requests each; device assertions signed beforehand);
//   (d) bytes written per request: the child's /proc/<pid>/io write_bytes over the measured requests (page-granular:
//       what reached the page cache as dirty pages), and the data dir's growth per request over the whole run.
//
// Also runnable alone: node scripts/bench/local-cost.ts [--pending 0,1000,10000] [--requests 300] [--users 1000]
//                      [--concurrency 8] [--polls 500] [--lists 300] [--warmup 1000] [--json <file>] [--cpu-prof <dir>]
// --cpu-prof writes <dir>/pending-<n>.cpuprofile: the child's CPU profile over each level's measured window only
// (an inspector session started and stopped over IPC; setup and filling are left out). Profiling adds CPU: the
// figures of a profiled run are not comparable with others.
// As the server child: node --expose-gc scripts/bench/local-cost.ts --serve <local/start.ts arguments>
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';

type MemoryReply = { type: 'memory'; heapUsed: number; rss: number; external: number; arrayBuffers: number };
type ProfileMessage = { type: 'profile'; action: 'start' } | { type: 'profile'; action: 'stop'; file: string };

/** Seconds a warm-up request lives (its requested_expiry; the server child accepts expiries from 1 s). */
const WARMUP_EXPIRY_S = 2;

// ---- the server child: local/start.ts plus a memory probe and a CPU profiler over IPC --------------------------
if (process.argv[2] === '--serve') {
  let profiler: import('node:inspector/promises').Session | undefined;
  process.on('message', async (m: unknown) => {
    if ((m as { type?: string } | null)?.type !== 'profile') return;
    const message = m as ProfileMessage;
    if (message.action === 'start') {
      const { Session } = await import('node:inspector/promises');
      profiler = new Session();
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
    } else if (profiler) {
      const { profile } = await profiler.post('Profiler.stop');
      await writeFile(message.file, JSON.stringify(profile));
      profiler.disconnect();
      profiler = undefined;
    }
    process.send?.({ type: 'profile', action: message.action });
  });
  process.on('message', (m: unknown) => {
    if ((m as { type?: string } | null)?.type !== 'memory') return;
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    const u = process.memoryUsage();
    const reply: MemoryReply = {
      type: 'memory',
      heapUsed: u.heapUsed,
      rss: u.rss,
      external: u.external,
      arrayBuffers: u.arrayBuffers,
    };
    process.send?.(reply);
  });
  // local/start.ts parses process.argv: it sees its own arguments only.
  process.argv.splice(2, 1);
  process.argv[1] = fileURLToPath(new URL('../../local/start.ts', import.meta.url));
  await import('../../local/start.ts');
} else if (import.meta.main) {
  await standalone();
}

// ---- the measurement ----------------------------------------------------------------------------------------------

export type LocalCostLevel = {
  /** Pending requests when the measured requests started. */
  pending: number;
  requests: number;
  failed: number;
  wallS: number;
  /** Net of the idle rate. */
  cpuMsPerRequest: number;
  /** Raw: all the child's CPU over the window, per request. */
  rawCpuMsPerRequest: number;
  idleCpuMsPerS: number;
  bcAuthorizeP50: number;
  bcAuthorizeP99: number;
  /** heapUsed after GC, once the level is reached (before its measured requests). */
  heapBytes: number;
  rssBytes: number;
  writeBytesPerRequest: number;
  /** Raw CPU per request by thread of the child (MainThread, V8Worker: GC and compilers, libuv-worker: LevelDB and fs). */
  threadCpuMsPerRequest: Record<string, number>;
};

export type LocalCostResult = {
  users: number;
  concurrency: number;
  levels: LocalCostLevel[];
  heapPerPendingBytes: number;
  rssPerPendingBytes: number;
  finalPending: number;
  tokenPoll: { n: number; failed: number; p50: number; p99: number; max: number };
  deviceList: { n: number; failed: number; p50: number; p99: number; max: number; requestsPerList: number };
  dataDirBytes: number;
  dataDirBytesPerRequest: number;
  setupS: number;
  /** Warm-up requests sent (and expired) before the first level. */
  warmup: number;
  fillS: number;
  errors: string[];
};

export type LocalCostOptions = {
  projectDir: string;
  tmp: string;
  pendingLevels: number[];
  requests: number;
  users: number;
  concurrency: number;
  polls: number;
  lists: number;
  progress: (line: string) => void;
  /** Write each level's CPU profile of the child to this directory (see the header comment). */
  cpuProfDir?: string;
  /** Warm-up requests before the first level (default: max(1000, requests)); they expire before it starts. */
  warmup?: number;
};

export async function runLocalCost(o: LocalCostOptions): Promise<LocalCostResult> {
  const { benchSeed, BENCH_SERVER_ENV, CIBA_GRANT } = await import('./flow.ts');
  const { clkTck, freePort, processCpuSeconds, processWriteBytes, startServerChild, stopChild } = await import(
    './child.ts'
  );
  const { summarize } = await import('./report.ts');
  const { DeviceClient } = await import('../../local/device-client.ts');
  const { encodeBasic } = await import('../../functions/core/client-auth.ts');
  const { BENCH_CLIENT_ID, BENCH_CLIENT_SECRET } = await import('./flow.ts');
  const auth = encodeBasic(BENCH_CLIENT_ID, BENCH_CLIENT_SECRET);

  const began = performance.now();
  const warmup = o.warmup ?? Math.max(1000, o.requests);
  o.progress(`local cost: seed of ${o.users} users (one device key each), server child with --expose-gc`);
  const { seed, users } = benchSeed(o.users);
  const dir = await mkdtemp(join(o.tmp, 'local-cost-'));
  const seedFile = join(dir, 'seed.json');
  await writeFile(seedFile, JSON.stringify(seed));
  const dataDir = join(dir, 'data');
  const server = await startServerChild({
    projectDir: o.projectDir,
    port: await freePort(),
    dataDir,
    seedFile,
    env: {
      ...BENCH_SERVER_ENV,
      CIBA_MAX_PENDING_PER_USER: '0',
      CIBA_MIN_EXPIRES_IN: '1',
      CIBA_DEFAULT_EXPIRES_IN: '3600',
      CIBA_MAX_EXPIRES_IN: '3600',
    },
    wrapper: { script: 'scripts/bench/local-cost.ts', args: ['--serve'], nodeArgs: ['--expose-gc'] },
    ipc: true,
    readyTimeoutMs: 180_000,
  });
  const errors: string[] = [];
  const note = (e: string) => {
    if (errors.length < 10) errors.push(e);
  };
  const ids: string[] = [];
  let sent = 0;
  /** One request; a warm-up one expires within seconds and is not counted among the pending. */
  const bcAuthorize = async (latencies?: number[], warmup = false): Promise<boolean> => {
    const i = sent++;
    const user = users[i % users.length]!;
    const t = performance.now();
    try {
      const res = await fetch(`${server.url}/bc-authorize`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          scope: 'openid profile email',
          login_hint: user.sub,
          binding_message: `LC-${i}`,
          ...(warmup ? { requested_expiry: String(WARMUP_EXPIRY_S) } : {}),
        }).toString(),
      });
      const json = (await res.json()) as { auth_req_id?: string };
      latencies?.push(performance.now() - t);
      if (res.status !== 200 || typeof json.auth_req_id !== 'string') {
        note(`bc-authorize answered ${res.status} ${JSON.stringify(json)}`);
        return false;
      }
      if (!warmup) ids.push(json.auth_req_id);
      return true;
    } catch (err) {
      note(`bc-authorize: ${(err as Error).message}`);
      return false;
    }
  };
  const closedLoop = async <T>(n: number, c: number, fn: (i: number) => Promise<T>): Promise<T[]> => {
    const out: T[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(c, n) }, async () => {
        for (;;) {
          const i = next++;
          if (i >= n) return;
          out.push(await fn(i));
        }
      }),
    );
    return out;
  };
  const cpu = () => processCpuSeconds(server.pid);
  /** Waits until the child's CPU rate stays near idle for 1 s (at most 30 s). */
  const settle = async (): Promise<void> => {
    const deadline = Date.now() + 30_000;
    let quiet = 0;
    for (let last = cpu(); Date.now() < deadline && quiet < 5; ) {
      await new Promise((r) => setTimeout(r, 200));
      const now = cpu();
      quiet = now - last <= 0.01 ? quiet + 1 : 0; // ≤ 1 tick per 200 ms
      last = now;
    }
  };
  const idleRate = async (ms: number): Promise<number> => {
    const c0 = cpu();
    await new Promise((r) => setTimeout(r, ms));
    return ((cpu() - c0) * 1000) / (ms / 1000);
  };
  /** Sends the server child `message` over IPC and waits for its answer of the same type. */
  const ask = <T>(child: ChildProcess, message: { type: string }): Promise<T> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${message.type} answer from the server child`)), 30_000);
      const onMessage = (m: unknown) => {
        if ((m as { type?: string } | null)?.type !== message.type) return;
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(m as T);
      };
      child.on('message', onMessage);
      child.send(message);
    });
  const memory = (child: ChildProcess) => ask<MemoryReply>(child, { type: 'memory' });
  const profile = (child: ChildProcess, message: ProfileMessage) => ask<unknown>(child, message);
  const dirBytes = async (path: string): Promise<number> => {
    let total = 0;
    for (const entry of await readdir(path, { withFileTypes: true })) {
      const p = join(path, entry.name);
      if (entry.isDirectory()) total += await dirBytes(p);
      else if (entry.isFile()) total += (await stat(p).catch(() => ({ size: 0 }))).size;
    }
    return total;
  };

  if (o.cpuProfDir) await mkdir(o.cpuProfDir, { recursive: true });
  const levels: LocalCostLevel[] = [];
  let fillMs = 0;
  let tokenPoll: LocalCostResult['tokenPoll'] = { n: 0, failed: 0, p50: Number.NaN, p99: Number.NaN, max: Number.NaN };
  let deviceList: LocalCostResult['deviceList'] = { ...tokenPoll, requestsPerList: 0 };
  let dataDirBytes = 0;
  try {
    const setupS = (performance.now() - began) / 1000;
    // Warm-up (not measured): enough requests for V8 to have compiled and optimised the handlers, so that the first
    // level does not also measure the compilers (after 300 warm-up requests they still took about 1 ms per request
    // on their threads, against 0.4 once settled). They expire within seconds and their workflows end, so the first
    // level starts with no request pending (their expired rows stay, as they would until DynamoDB's TTL deletion).
    o.progress(`local cost: ${warmup} warm-up requests (requested_expiry ${WARMUP_EXPIRY_S} s), then their expiry`);
    await closedLoop(warmup, o.concurrency, () => bcAuthorize(undefined, true));
    await new Promise((r) => setTimeout(r, (WARMUP_EXPIRY_S + 1) * 1000));
    await settle();
    for (const target of o.pendingLevels) {
      if (ids.length < target) {
        o.progress(`local cost: filling to ${target} pending requests (${target - ids.length} more, c=16)`);
        const t = performance.now();
        await closedLoop(target - ids.length, 16, () => bcAuthorize());
        fillMs += performance.now() - t;
        await settle();
      }
      const mem = await memory(server.child);
      const idle = await idleRate(2000);
      o.progress(
        `local cost: ${o.requests} measured requests at ${ids.length} pending (c=${o.concurrency}); idle ${idle.toFixed(1)} ms/s`,
      );
      const pending = ids.length;
      const latencies: number[] = [];
      if (o.cpuProfDir) await profile(server.child, { type: 'profile', action: 'start' });
      const w0 = processWriteBytes(server.pid);
      const th0 = threadCpuSeconds(server.pid, clkTck());
      const c0 = cpu();
      const t0 = performance.now();
      const results = await closedLoop(o.requests, o.concurrency, () => bcAuthorize(latencies));
      await settle();
      const wallS = (performance.now() - t0) / 1000;
      const cpuS = cpu() - c0;
      const th1 = threadCpuSeconds(server.pid, clkTck());
      const w1 = processWriteBytes(server.pid);
      if (o.cpuProfDir) {
        const file = join(o.cpuProfDir, `pending-${pending}.cpuprofile`);
        await profile(server.child, { type: 'profile', action: 'stop', file });
        o.progress(`local cost: CPU profile in ${file}`);
      }
      const s = summarize(latencies);
      levels.push({
        pending,
        requests: o.requests,
        failed: results.filter((ok) => !ok).length,
        wallS,
        cpuMsPerRequest: (cpuS * 1000 - idle * wallS) / o.requests,
        rawCpuMsPerRequest: (cpuS * 1000) / o.requests,
        idleCpuMsPerS: idle,
        bcAuthorizeP50: s.p50,
        bcAuthorizeP99: s.p99,
        heapBytes: mem.heapUsed,
        rssBytes: mem.rss,
        writeBytesPerRequest: (w1 - w0) / o.requests,
        threadCpuMsPerRequest: Object.fromEntries(
          [...th1].map(([name, s1]) => [name, ((s1 - (th0.get(name) ?? 0)) * 1000) / o.requests]),
        ),
      });
    }
    // (c) at the last level: pending polls and device lists.
    o.progress(`local cost: ${o.polls} pending polls and ${o.lists} device lists at ${ids.length} pending`);
    const pollIds = [...ids].sort(() => Math.random() - 0.5).slice(0, o.polls);
    const pollLatencies: number[] = [];
    let pollFailed = 0;
    await closedLoop(pollIds.length, o.concurrency, async (i) => {
      const t = performance.now();
      try {
        const res = await fetch(`${server.url}/token`, {
          method: 'POST',
          headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: CIBA_GRANT, auth_req_id: pollIds[i]! }).toString(),
        });
        const json = (await res.json()) as { error?: string };
        pollLatencies.push(performance.now() - t);
        if (json.error !== 'authorization_pending') {
          pollFailed++;
          note(`token answered ${res.status} ${JSON.stringify(json)}`);
        }
      } catch (err) {
        pollFailed++;
        note(`token: ${(err as Error).message}`);
      }
    });
    const ps = summarize(pollLatencies);
    tokenPoll = { n: pollLatencies.length, failed: pollFailed, p50: ps.p50, p99: ps.p99, max: ps.max };
    const listUsers = [...users].sort(() => Math.random() - 0.5).slice(0, Math.min(o.lists, users.length));
    const url = `${server.url}/device/requests`;
    const signed = await Promise.all(
      listUsers.map(async (u) => new DeviceClient(server.url, u.deviceId, u.privateJwk).assertion('GET', url)),
    );
    const listLatencies: number[] = [];
    let listFailed = 0;
    let listed = 0;
    await closedLoop(signed.length, o.concurrency, async (i) => {
      const t = performance.now();
      try {
        const res = await fetch(url, { headers: { authorization: `Bearer ${signed[i]}` } });
        const json = (await res.json()) as { requests?: unknown[] };
        listLatencies.push(performance.now() - t);
        if (res.status !== 200 || !Array.isArray(json.requests)) {
          listFailed++;
          note(`device list answered ${res.status} ${JSON.stringify(json).slice(0, 200)}`);
        } else listed += json.requests.length;
      } catch (err) {
        listFailed++;
        note(`device list: ${(err as Error).message}`);
      }
    });
    const ls = summarize(listLatencies);
    deviceList = {
      n: listLatencies.length,
      failed: listFailed,
      p50: ls.p50,
      p99: ls.p99,
      max: ls.max,
      requestsPerList: listed / Math.max(1, listLatencies.length - listFailed),
    };
    dataDirBytes = await dirBytes(dataDir);
    const first = levels[0]!;
    const lastMem = await memory(server.child);
    const added = ids.length - first.pending;
    if (errors.length > 0) errors.push(`server output (tail): ${server.output().slice(-1500)}`);
    return {
      users: o.users,
      concurrency: o.concurrency,
      levels,
      heapPerPendingBytes: (lastMem.heapUsed - first.heapBytes) / Math.max(1, added),
      rssPerPendingBytes: (lastMem.rss - first.rssBytes) / Math.max(1, added),
      finalPending: ids.length,
      tokenPoll,
      deviceList,
      dataDirBytes,
      dataDirBytesPerRequest: dataDirBytes / Math.max(1, sent),
      setupS,
      warmup,
      fillS: fillMs / 1000,
      errors,
    };
  } finally {
    await stopChild(server.child, 10_000);
  }
}

/**
 * User + system CPU seconds of each of a process's threads, summed by thread name (/proc/<pid>/task/<tid>/stat; Node's
 * threads are MainThread, V8Worker (GC, compilers), libuv-worker (threadpool: LevelDB, fs), DelayedTaskSche, …).
 * A thread that exits takes its CPU with it: the process total (processCpuSeconds) stays the measure.
 */
function threadCpuSeconds(pid: number, tick: number): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / tick);
    } catch {
      // the thread exited meanwhile
    }
  }
  return out;
}
export async function formatLocalCost(r: LocalCostResult): Promise<string> {
  const { bytes, fmt, section, table } = await import('./report.ts');
  const head = section(
    '12. What the local stack itself costs per backchannel request, by pending requests',
    `own server child: \`node --expose-gc scripts/bench/local-cost.ts --serve\` = local/start.ts (on-disk data dir, as
       \`npm start\`) plus a memory probe answering over IPC (full GC, then process.memoryUsage()). ${r.users} users with one
       device each; POST /bc-authorize (client_secret_basic, login_hint of user i mod ${r.users}) never decided
       (CIBA_MAX_PENDING_PER_USER=0, expires_in 3600), so requests pile up as pending. First ${r.warmup} warm-up requests (not
       measured) with requested_expiry ${WARMUP_EXPIRY_S} s, so V8 has compiled the handlers; they expire before the first level. At each level: idle rate over 2 s,
       then the measured requests at c=${r.concurrency}; raw CPU = the child's utime+stime from the first request until it is
       idle again for 1 s (workflow, notify-device, dispatcher included) per request; CPU = raw minus the idle rate. heap = heapUsed after GC when
       the level is reached. write = /proc/<pid>/io write_bytes over the measured requests, per request (dirty pages:
       page-granular). Last level: pending polls (each a different request, once) and device lists (assertions signed
       beforehand), c=${r.concurrency}, client-side latency.`,
  );
  const levels = table(
    [
      '>pending',
      '>requests',
      '>failed',
      '>CPU ms/req',
      '>raw',
      '>idle ms/s',
      '>bc-authorize p50 ms',
      '>p99 ms',
      '>heap',
      '>rss',
      '>write/req',
    ],
    r.levels.map((l) => [
      l.pending,
      l.requests,
      l.failed,
      fmt(l.cpuMsPerRequest, 2),
      fmt(l.rawCpuMsPerRequest, 2),
      fmt(l.idleCpuMsPerS, 1),
      fmt(l.bcAuthorizeP50),
      fmt(l.bcAuthorizeP99),
      bytes(l.heapBytes),
      bytes(l.rssBytes),
      bytes(Math.round(l.writeBytesPerRequest)),
    ]),
  );
  const tail = table(
    ['at pending', 'endpoint', '>n', '>failed', '>p50 ms', '>p99 ms', '>max ms'],
    [
      [
        r.finalPending,
        'POST /token (authorization_pending)',
        r.tokenPoll.n,
        r.tokenPoll.failed,
        fmt(r.tokenPoll.p50),
        fmt(r.tokenPoll.p99),
        fmt(r.tokenPoll.max),
      ],
      [
        r.finalPending,
        `GET /device/requests (${fmt(r.deviceList.requestsPerList, 1)} listed)`,
        r.deviceList.n,
        r.deviceList.failed,
        fmt(r.deviceList.p50),
        fmt(r.deviceList.p99),
        fmt(r.deviceList.max),
      ],
    ],
  );
  const lines = [
    head,
    levels,
    '',
    tail,
    '',
    `  heap per pending request: ${fmt(r.heapPerPendingBytes / 1024, 2)} KiB (rss ${fmt(r.rssPerPendingBytes / 1024, 2)} KiB); ` +
      `data dir ${bytes(r.dataDirBytes)} = ${bytes(Math.round(r.dataDirBytesPerRequest))} per request created; ` +
      `setup ${fmt(r.setupS)} s, filling ${fmt(r.fillS)} s`,
    ...r.levels.map(
      (l) =>
        `  by thread at ${l.pending} pending (raw CPU ms/req): ` +
        Object.entries(l.threadCpuMsPerRequest)
          .filter(([, ms]) => ms >= 0.005)
          .sort((a, b) => b[1] - a[1])
          .map(([name, ms]) => `${name} ${fmt(ms, 2)}`)
          .join(', '),
    ),
    ...r.errors.map((e) => `  error: ${e}`),
  ];
  return lines.join('\n');
}

async function standalone(): Promise<void> {
  const { values } = parseArgs({
    options: {
      pending: { type: 'string', default: '0,1000,10000' },
      requests: { type: 'string', default: '300' },
      users: { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '8' },
      polls: { type: 'string', default: '500' },
      lists: { type: 'string', default: '300' },
      json: { type: 'string' },
      'cpu-prof': { type: 'string' },
      warmup: { type: 'string' },
    },
  });
  const { cleanupAll, installCleanupHandlers, trackDir } = await import('./child.ts');
  installCleanupHandlers();
  const tmp = trackDir(await mkdtemp(join(tmpdir(), 'ciba-local-cost-')));
  try {
    const result = await runLocalCost({
      projectDir: fileURLToPath(new URL('../../', import.meta.url)),
      tmp,
      pendingLevels: values.pending.split(',').map(Number),
      requests: Number(values.requests),
      users: Number(values.users),
      concurrency: Number(values.concurrency),
      polls: Number(values.polls),
      lists: Number(values.lists),
      progress: (line) => process.stderr.write(`  … ${line}\n`),
      ...(values['cpu-prof'] ? { cpuProfDir: resolve(values['cpu-prof']) } : {}),
      ...(values.warmup !== undefined ? { warmup: Number(values.warmup) } : {}),
    });
    console.log(await formatLocalCost(result));
    if (values.json) await writeFile(values.json, JSON.stringify(result, null, 2));
  } finally {
    await cleanupAll();
  }
}
